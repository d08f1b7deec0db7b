"""HubSpot webhook signatures (v3), as HubSpot documents and its Python SDK computes them."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from connectors.hubspot import HUBSPOT
from connectors.kit.webhooks import WebhookRejected, WebhookRequest

SECRET = "client-secret-123"
URL = "https://xkit.example.com/webhooks/hubspot?portal=62515"
BODY = b'[{"eventId":100,"subscriptionType":"contact.propertyChange","objectId":123}]'
NOW = 1_718_841_600.0


def signed(timestamp_ms: int, *, secret: str = SECRET, body: bytes = BODY) -> WebhookRequest:
    # Computed independently of the code under test, straight from the documented recipe.
    source = f"POST{URL}{body.decode()}{timestamp_ms}".encode()
    signature = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()
    headers = {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": str(timestamp_ms)}
    return WebhookRequest("POST", URL, headers, BODY)


def test_a_correctly_signed_fresh_webhook_passes() -> None:
    assert HUBSPOT.webhook is not None
    HUBSPOT.webhook.verify(signed(int(NOW * 1000) - 60_000), SECRET, now=NOW)


@pytest.mark.parametrize(
    "request_",
    [
        signed(int(NOW * 1000), secret="another-secret"),
        signed(int(NOW * 1000) - 301_000),
        WebhookRequest("POST", URL, {}, BODY),
        WebhookRequest("POST", URL, {**signed(int(NOW * 1000)).headers}, BODY + b" "),
    ],
    ids=["wrong-secret", "too-old", "unsigned", "tampered-body"],
)
def test_bad_webhooks_are_rejected(request_: WebhookRequest) -> None:
    assert HUBSPOT.webhook is not None
    with pytest.raises(WebhookRejected):
        HUBSPOT.webhook.verify(request_, SECRET, now=NOW)
