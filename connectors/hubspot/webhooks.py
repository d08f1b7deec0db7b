"""HubSpot's webhooks: the v3 signature (base64 HMAC-SHA256 over method, URI, body and timestamp in
milliseconds, keyed with the app's client secret; five minutes either way) and the events of a delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.kit.signatures import HmacSignature
from connectors.kit.webhooks import WebhookDelivery, WebhookEvent, json_delivery

SIGNATURE_V3 = HmacSignature(
    header="X-HubSpot-Signature-v3",
    signs="{method}{url}{body}{timestamp}",
    timestamp_header="X-HubSpot-Request-Timestamp",
    encoding="base64",
    timestamp_format="milliseconds",
)


def signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    return SIGNATURE_V3.sign(secret, method=method, url=url, body=body, timestamp=timestamp)


# subscriptionType prefix -> the connector's stream
STREAMS = {"contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets"}
GONE = frozenset({"deletion", "privacyDeletion"})


@dataclass(frozen=True)
class HubSpotEvents:
    """A delivery is a JSON array of events. Deletions say the record is gone; anything else (creation,
    propertyChange, restore, associationChange, merge) means "read it again": events carry one property
    at a time, so the record itself is fetched rather than patched from them."""

    def parse(self, body: bytes) -> WebhookDelivery:
        events = json_delivery(body, list, "a HubSpot webhook body is a JSON array of events")
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
