"""Drives Python's slack_sdk WebhookClient the way integrations use it.

Usage: slack_sdk_client.py SCENARIO URL
Prints one JSON object per call: what was sent, and the status, body and Retry-After seen.
With HOOKGATE_CA set, https:// URLs are verified against that CA file (a test CA) as well.
"""
import json
import os
import ssl
import sys

from slack_sdk.webhook import WebhookClient


def calls(scenario):
    if scenario == "send":
        yield "text", lambda c: c.send(text="Deploy finished *now* :tada:")
        yield "attachments", lambda c: c.send(
            text="Build",
            attachments=[{"color": "#36a64f", "title": "Build 42", "text": "All tests passed",
                          "fields": [{"title": "Env", "value": "prod", "short": True}]}],
        )
        yield "blocks", lambda c: c.send(
            text="fallback",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*hello* from blocks"}}],
        )
        yield "send_dict", lambda c: c.send_dict(
            {"text": "hi", "username": "ci-bot", "icon_emoji": ":robot_face:", "channel": "#builds"}
        )
    elif scenario == "one":
        yield "text", lambda c: c.send(text="one message")
    else:
        raise SystemExit(f"unknown scenario {scenario}")


def header(response, name):
    """A response header, whatever the case of its name; urllib may give a list."""
    for key, value in response.headers.items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return None


def main():
    scenario, url = sys.argv[1], sys.argv[2]
    ca = os.environ.get("HOOKGATE_CA")
    client = WebhookClient(url, ssl=ssl.create_default_context(cafile=ca) if ca else None)
    for name, call in calls(scenario):
        response = call(client)
        print(json.dumps({
            "call": name,
            "status": response.status_code,
            "body": response.body,
            "retry_after": header(response, "Retry-After"),
        }), flush=True)


main()
