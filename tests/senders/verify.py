"""The other direction: deliveries hookroute signed (`hookroute sign --json`), checked by
the providers' own Python verifiers. Reads one JSON object a line on stdin,
  {"provider", "secret", "headers": {..}, "body"}
and prints one a line: {"provider", "library", "valid", "error"}.
"""

import json
import sys


def standardwebhooks_verify(d):
    import standardwebhooks

    standardwebhooks.Webhook(d["secret"]).verify(d["body"], d["headers"])


def svix_verify(d):
    import svix.webhooks

    svix.webhooks.Webhook(d["secret"]).verify(d["body"], d["headers"])


def slack_verify(d):
    from slack_sdk.signature import SignatureVerifier

    headers = d["headers"]
    valid = SignatureVerifier(signing_secret=d["secret"]).is_valid(
        body=d["body"], timestamp=headers["x-slack-request-timestamp"], signature=headers["x-slack-signature"]
    )
    if not valid:
        raise ValueError("signature does not match")


VERIFIERS = {
    "standard": [("standardwebhooks (python)", standardwebhooks_verify), ("svix (python)", svix_verify)],
    "slack": [("slack_sdk", slack_verify)],
}

for line in sys.stdin:
    if not line.strip():
        continue
    delivery = json.loads(line)
    for library, verify in VERIFIERS.get(delivery["provider"], []):
        try:
            verify(delivery)
            print(json.dumps({"provider": delivery["provider"], "library": library, "valid": True}), flush=True)
        except Exception as error:  # noqa: BLE001: any refusal is the answer
            print(json.dumps({"provider": delivery["provider"], "library": library, "valid": False, "error": str(error)}), flush=True)
