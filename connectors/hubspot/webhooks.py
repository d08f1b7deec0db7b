"""HubSpot's v3 webhook signature: base64 HMAC-SHA256 over method, URI, body and timestamp, keyed with
the app's client secret; requests older than five minutes are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from connectors.kit.webhooks import WebhookRejected, WebhookRequest

MAX_AGE_SECONDS = 300


def signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    source = method.encode() + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class HubSpotSignatureV3:
    def verify(self, request: WebhookRequest, secret: str, *, now: float) -> None:
        signature = request.headers.get("x-hubspot-signature-v3")
        timestamp = request.headers.get("x-hubspot-request-timestamp")
        if not signature or not timestamp or not timestamp.isdigit():
            raise WebhookRejected("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
        if abs(now - int(timestamp) / 1000) > MAX_AGE_SECONDS:
            raise WebhookRejected("the webhook timestamp is more than five minutes away from now")
        expected = signature_v3(secret, request.method.upper(), request.url, request.body, timestamp)
        if not hmac.compare_digest(expected, signature):
            raise WebhookRejected("the webhook signature does not match")
