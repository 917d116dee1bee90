"""slack_sdk told no address but Slack's own (tests/it/slack_hosts.rs): a WebhookClient on
https://hooks.slack.com/services/T2/B2/X2 and a WebClient with its default base URL
(https://slack.com/api/), run where both names lead to hookgate and its CA is trusted
(SSL_CERT_FILE). One JSON line per call.

Usage: slack_default_hosts.py TOKEN
"""
import json
import sys

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

token = sys.argv[1]


def out(result):
    print(json.dumps(result), flush=True)


hook = WebhookClient("https://hooks.slack.com/services/T2/B2/X2")
sent = hook.send(text="Deploy of *api* finished")
out({"call": "webhook", "status": sent.status_code, "body": sent.body})

client = WebClient(token=token)
assert client.base_url == "https://slack.com/api/", client.base_url
posted = client.chat_postMessage(channel="#deploys", text="deploying *api*")
out({"call": "post", "ok": posted["ok"], "channel": posted["channel"]})
updated = client.chat_update(channel=posted["channel"], ts=posted["ts"], text="deployed *api*")
out({"call": "update", "ok": updated["ok"], "same_ts": updated["ts"] == posted["ts"]})
me = client.auth_test()
out({"call": "auth_test", "ok": me["ok"], "url": me["url"], "user": me["user"]})
