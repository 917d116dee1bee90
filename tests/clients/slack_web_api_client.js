// Drives Node's @slack/web-api WebClient against hookgate's Web API (tests/it/webapi.rs).
// Usage: node slack_web_api_client.js BASE_URL TOKEN QUICK_TOKEN
// BASE_URL ends in /api/; QUICK_TOKEN is a hook allowed one call every two seconds, whose 429 the
// client's default retry waits out. One JSON line per call; anything unexpected fails the run.
const { WebClient, LogLevel } = require('@slack/web-api');

async function main() {
  const [base, token, quick] = process.argv.slice(2);
  const out = (result) => console.log(JSON.stringify(result));
  const client = new WebClient(token, { slackApiUrl: base, logLevel: LogLevel.ERROR });
  const root = await client.chat.postMessage({
    channel: '#alerts',
    text: 'fallback',
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '*Deploying* v2' } }],
    attachments: [{ color: 'good', text: 'stage 1' }],
  });
  out({ call: 'post', ok: root.ok, channel: root.channel });
  const reply = await client.chat.postMessage({ channel: 'alerts', text: 'step', thread_ts: root.ts });
  out({ call: 'reply', ok: reply.ok, in_thread: reply.message.thread_ts === root.ts });
  const updated = await client.chat.update({ channel: root.channel, ts: root.ts, text: 'deployed' });
  out({ call: 'update', ok: updated.ok, text: updated.text });
  const deleted = await client.chat.delete({ channel: root.channel, ts: reply.ts });
  out({ call: 'delete', ok: deleted.ok });
  const me = await client.auth.test();
  out({ call: 'auth_test', ok: me.ok, user: me.user });
  try {
    await new WebClient('xoxb-not-a-token', { slackApiUrl: base, logLevel: LogLevel.ERROR }).chat.postMessage({ channel: 'alerts', text: 'x' });
    out({ call: 'bad_token', error: null });
  } catch (error) {
    out({ call: 'bad_token', error: error.data && error.data.error });
  }
  const limited = new WebClient(quick, { slackApiUrl: base, logLevel: LogLevel.ERROR });
  const answers = [];
  for (const n of [0, 1]) {
    answers.push((await limited.chat.postMessage({ channel: 'alerts', text: `n${n}` })).ok);
  }
  out({ call: 'rate_limited', ok: answers.every(Boolean) });
}

main().catch((error) => {
  console.error(JSON.stringify({ error: error.message, code: error.code, data: error.data }));
  process.exit(1);
});
