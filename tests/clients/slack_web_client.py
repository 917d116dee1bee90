"""Drives slack_sdk's WebClient against hookgate's Web API (tests/it/webapi.rs).

Usage: slack_web_client.py BASE_URL TOKEN QUICK_TOKEN
BASE_URL ends in /api/; QUICK_TOKEN is a hook allowed one call every two seconds.
One JSON line per call.
"""
import json
import sys

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

base, token, quick = sys.argv[1:4]


def out(result):
    print(json.dumps(result), flush=True)


client = WebClient(token=token, base_url=base)
root = client.chat_postMessage(channel="#alerts", text="deploying")
out({"call": "post", "ok": root["ok"], "ts": root["ts"], "channel": root["channel"]})
reply = client.chat_postMessage(channel="alerts", text="step 1", thread_ts=root["ts"])
out({"call": "reply", "ok": reply["ok"], "thread_ts": reply["message"]["thread_ts"]})
updated = client.chat_update(channel=root["channel"], ts=root["ts"], text="done")
out({"call": "update", "ok": updated["ok"], "text": updated["text"]})
deleted = client.chat_delete(channel=root["channel"], ts=reply["ts"])
out({"call": "delete", "ok": deleted["ok"]})
me = client.auth_test()
out({"call": "auth_test", "ok": me["ok"], "user": me["user"], "team": me["team"]})
try:
    WebClient(token="xoxb-not-a-token", base_url=base).chat_postMessage(channel="alerts", text="x")
    out({"call": "bad_token", "error": None})
except SlackApiError as e:
    out({"call": "bad_token", "error": e.response["error"]})
limited = WebClient(token=quick, base_url=base, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
answers = [limited.chat_postMessage(channel="alerts", text=f"n{n}")["ok"] for n in range(2)]
out({"call": "rate_limited", "ok": all(answers)})
