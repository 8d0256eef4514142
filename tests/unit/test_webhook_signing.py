"""Standard Webhooks signatures: ours verify with the reference package, and theirs with ours."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tokenward.events import signing

BODY = json.dumps({"type": "connected_account.deleted", "data": {"id": "x"}}).encode()


def test_a_signed_delivery_verifies_with_the_standardwebhooks_package() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    headers = signing.headers(secret, "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)


def test_our_verify_accepts_the_packages_signatures_and_refuses_everything_else() -> None:
    secret = signing.new_secret()
    now = time.time()
    stamp = datetime.fromtimestamp(int(now), tz=UTC)
    theirs = Webhook(secret).sign("msg_2", stamp, BODY.decode())
    headers = {
        "Webhook-Id": "msg_2",
        "Webhook-Timestamp": str(int(now)),
        "Webhook-Signature": f"v1,AAAA {theirs}",  # several signatures: any may match
    }
    assert signing.verify(secret, BODY, headers, now=now) == json.loads(BODY)
    bad = [
        {**headers, "Webhook-Signature": "v1,AAAA"},
        {k: v for k, v in headers.items() if k != "Webhook-Id"},
        {**headers, "Webhook-Id": "msg_3"},
        {**headers, "Webhook-Timestamp": "soon"},
    ]
    for each in bad:
        with pytest.raises(signing.WebhookSignatureError):
            signing.verify(secret, BODY, each, now=now)
    with pytest.raises(signing.WebhookSignatureError, match="too old"):
        signing.verify(secret, BODY, headers, now=now + 301)
    with pytest.raises(signing.WebhookSignatureError):
        signing.verify("whsec_not*base64", BODY, headers, now=now)
