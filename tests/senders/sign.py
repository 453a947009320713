"""Deliveries signed by the providers' own Python libraries, one JSON object a line on
stdout, for tests/official_libraries.rs to receive (the shape sign.mjs prints).

Usage: python sign.py <standard|slack> <secret>
Nothing here is hookroute's: every signature comes from the library named in `signer`.
"""

import base64
import json
import sys
import time
import uuid
from datetime import datetime, timezone


def out(line):
    print(json.dumps(line), flush=True)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def standard(padded_secret):
    """`standardwebhooks` and `svix`, both header families, with and without `data`,
    the secret with and without its padding."""
    import standardwebhooks
    import svix.webhooks

    signers = {
        "standardwebhooks (python)": standardwebhooks.Webhook,
        "svix (python)": svix.webhooks.Webhook,
    }
    bodies = {
        "with_data": {"type": "invoice.paid", "timestamp": "2026-12-06T10:00:00Z", "data": {"id": "in_1", "amount": 2000}},
        "without_data": {"type": "invoice.paid", "timestamp": "2026-12-06T10:00:00Z", "id": "in_1", "amount": 2000},
    }
    for signer, make in signers.items():
        for secret_form, secret in (("padded", padded_secret), ("unpadded", padded_secret.rstrip("="))):
            for shape, payload in bodies.items():
                for family in ("webhook", "svix"):
                    msg_id = f"msg_{uuid.uuid4().hex}"
                    now = datetime.now(timezone.utc)
                    body = json.dumps(payload)
                    signature = make(secret).sign(msg_id, now, body)
                    headers = {
                        "content-type": "application/json",
                        f"{family}-id": msg_id,
                        f"{family}-timestamp": str(int(now.timestamp())),
                        f"{family}-signature": signature,
                    }
                    make(secret).verify(
                        body,
                        {"webhook-id": msg_id, "webhook-timestamp": headers[f"{family}-timestamp"], "webhook-signature": signature},
                    )
                    out({
                        "suite": "standard",
                        "signer": signer,
                        "case": f"{signer} {secret_form} {shape} {family}-*",
                        "type": "invoice.paid",
                        "id": msg_id,
                        "headers": headers,
                        "body_base64": b64(body),
                    })


# Slack's documented requests (api.slack.com/events/url_verification, /events/app_mention,
# /apis/events-api#rate_limiting), as the Events API sends them.
SLACK_REQUESTS = {
    "url_verification": {
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    },
    "app_mention": {
        "token": "ZZZZZZWSxiZZZ2yIvs3peJ",
        "team_id": "T123ABC456",
        "api_app_id": "A123ABC456",
        "event": {
            "type": "app_mention",
            "user": "U123ABC456",
            "text": "What is the hour of the pearl, <@U0LAN0Z89>?",
            "ts": "1515449522.000016",
            "channel": "C123ABC456",
            "event_ts": "1515449522000016",
        },
        "type": "event_callback",
        "event_id": "Ev123ABC456",
        "event_time": 1515449522000016,
        "authed_users": ["U0LAN0Z89"],
    },
    "message": {
        "token": "one-long-verification-token",
        "team_id": "T061EG9R6",
        "api_app_id": "A0PNCHHK2",
        "event": {
            "type": "message",
            "channel": "C024BE91L",
            "user": "U2147483697",
            "text": "Live long and prospect.",
            "ts": "1355517523.000005",
            "event_ts": "1355517523.000005",
            "channel_type": "channel",
        },
        "type": "event_callback",
        "authed_teams": ["T061EG9R6"],
        "event_id": "Ev0PV52K21",
        "event_time": 1355517523,
    },
    "app_rate_limited": {
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "type": "app_rate_limited",
        "team_id": "T123456",
        "minute_rate_limited": 1518467820,
        "api_app_id": "A123456",
    },
}


def slack(secret):
    """Slack's documented requests, signed by slack_sdk's `SignatureVerifier` and
    checked by its `is_valid`."""
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(signing_secret=secret)
    for case, payload in SLACK_REQUESTS.items():
        body = json.dumps(payload)
        timestamp = str(int(time.time()))
        signature = verifier.generate_signature(timestamp=timestamp, body=body)
        assert verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        out({
            "suite": "slack",
            "signer": "slack_sdk",
            "case": case,
            "type": payload["event"]["type"] if "event" in payload else payload["type"],
            "id": payload.get("event_id"),
            "challenge": payload.get("challenge"),
            "headers": {
                "content-type": "application/json",
                "x-slack-request-timestamp": timestamp,
                "x-slack-signature": signature,
            },
            "body_base64": b64(body),
        })


if __name__ == "__main__":
    suites = {"standard": standard, "slack": slack}
    if len(sys.argv) < 3 or sys.argv[1] not in suites:
        sys.exit(f"usage: python sign.py <{'|'.join(suites)}> <secret>")
    suites[sys.argv[1]](sys.argv[2])
