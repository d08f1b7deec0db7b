"""HubSpot's v3 webhook signature: base64 HMAC-SHA256 over method, URI, body and timestamp, keyed with
the app's client secret; requests older than five minutes are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

from connectors.kit.webhooks import (
    WebhookDelivery,
    WebhookEvent,
    WebhookMalformed,
    WebhookRejected,
    WebhookRequest,
)

MAX_AGE_SECONDS = 300


def signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    source = method.encode() + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class HubSpotSignatureV3:
    max_age_seconds: float = MAX_AGE_SECONDS

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

    def signature(self, request: WebhookRequest) -> str:
        return request.headers.get("x-hubspot-signature-v3", "")


# subscriptionType prefix -> the connector's stream
STREAMS = {"contact": "contacts", "company": "companies", "deal": "deals"}
GONE = frozenset({"deletion", "privacyDeletion"})


@dataclass(frozen=True)
class HubSpotEvents:
    """A delivery is a JSON array of events. Deletions say the record is gone; anything else (creation,
    propertyChange, restore, associationChange, merge) means "read it again": events carry one property
    at a time, so the record itself is fetched rather than patched from them."""

    def parse(self, body: bytes) -> WebhookDelivery:
        try:
            events = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise WebhookMalformed("the webhook body is not JSON") from None
        if not isinstance(events, list):
            raise WebhookMalformed("a HubSpot webhook body is a JSON array of events")
        found: list[WebhookEvent] = []
        accounts: set[str] = set()
        for event in events:
            if isinstance(event, dict):
                if event.get("portalId") not in (None, ""):
                    accounts.add(str(event["portalId"]))
                found.extend(self._one(event))
        return WebhookDelivery(frozenset(accounts), found)

    @staticmethod
    def _one(event: dict[str, Any]) -> list[WebhookEvent]:
        kind, _, action = str(event.get("subscriptionType", "")).partition(".")
        stream, account = STREAMS.get(kind), str(event.get("portalId", ""))
        if stream is None or not account:
            return []
        ids = [event.get("objectId"), event.get("primaryObjectId")]
        if action == "associationChange":  # both ends of the link changed
            ids += [event.get("fromObjectId")]
            target = STREAMS.get(str(event.get("associationType", "")).split("_TO_")[-1].lower())
            to_id = event.get("toObjectId")
            extra = [WebhookEvent(account, target, str(to_id))] if target and to_id else []
        else:
            extra = []
        merged = [WebhookEvent(account, stream, str(i), deleted=True) for i in event.get("mergedObjectIds") or []]
        seen = [WebhookEvent(account, stream, str(i), deleted=action in GONE) for i in ids if i not in (None, "")]
        return seen + merged + extra
