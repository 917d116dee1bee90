// Drives Node's @slack/webhook IncomingWebhook the way integrations use it.
// Usage: node slack_webhook_client.js URL
// Prints one JSON line per send with the resolved result; any thrown error fails the run.
const { IncomingWebhook } = require('@slack/webhook');

async function main() {
  const hook = new IncomingWebhook(process.argv[2]);
  const sends = [
    ['text', 'plain string message'],
    ['attachments', {
      text: 'Hello from @slack/webhook',
      attachments: [{ color: 'good', title: 'Attachment', text: 'att _text_', fields: [{ title: 'k', value: 'v', short: true }] }],
    }],
    ['blocks', {
      text: 'fallback',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: 'Release 2.3' } },
        { type: 'section', text: { type: 'mrkdwn', text: '*Shipped* to prod' } },
      ],
    }],
  ];
  for (const [name, message] of sends) {
    const result = await hook.send(message);
    console.log(JSON.stringify({ call: name, result }));
  }
}

main().catch((error) => {
  console.error(JSON.stringify({ error: error.message, code: error.code }));
  process.exit(1);
});
