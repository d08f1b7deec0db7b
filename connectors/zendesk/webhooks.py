"""Zendesk's webhooks: base64 HMAC-SHA256 over the ISO 8601 timestamp and the body, keyed with the
webhook's signing secret; and the events of a delivery (one event-subscription event per delivery).

Zendesk offers no API that tells a connection its numeric account id, so deliveries are matched to
connections by the account's subdomain: the connection knows it from its connect inputs, and the delivery
names it in `subdomain` or in the host of its `url`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from connectors.kit.signatures import HmacSignature
from connectors.kit.webhooks import WebhookDelivery, WebhookEvent, WebhookMalformed

SIGNATURE = HmacSignature(
    header="X-Zendesk-Webhook-Signature",
    signs="{timestamp}{body}",
    timestamp_header="X-Zendesk-Webhook-Signature-Timestamp",
    encoding="base64",
    timestamp_format="iso8601",
)

# The object an event is about -> the streams holding it (a user is a Contact or a User, by role).
STREAMS: dict[str, tuple[str, ...]] = {
    "ticket": ("tickets",),
    "user": ("end_users", "agents"),
    "organization": ("organizations",),
}
GONE = frozenset({"deleted", "soft_deleted", "permanently_deleted"})
_HOST = re.compile(r"([a-z0-9][a-z0-9-]*)\.zendesk\.com")


@dataclass(frozen=True)
class ZendeskEvents:
    """`zen:event-type:ticket.status_changed` about `zen:ticket:123`: read ticket 123 again; a deletion
    (`ticket.soft_deleted`, `user.deleted`, ...) marks it gone."""

    def parse(self, body: bytes) -> WebhookDelivery:
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise WebhookMalformed("the webhook body is not JSON") from None
        if not isinstance(event, dict):
            raise WebhookMalformed("a Zendesk webhook body is one JSON event object")
        account = _subdomain(event)
        if account is None:
            return WebhookDelivery(frozenset(), [])
        kind, _, action = str(event.get("type", "")).removeprefix("zen:event-type:").partition(".")
        remote_id = _subject_id(event, kind)
        if kind not in STREAMS or remote_id is None:
            return WebhookDelivery(frozenset({account}), [])
        gone = action in GONE
        return WebhookDelivery(
            frozenset({account}), [WebhookEvent(account, stream, remote_id, deleted=gone) for stream in STREAMS[kind]]
        )


def _subdomain(event: dict[str, Any]) -> str | None:
    named = event.get("subdomain")
    if isinstance(named, str) and named:
        return named
    detail = event.get("detail")
    for url in (event.get("url"), detail.get("url") if isinstance(detail, dict) else None):
        if isinstance(url, str):
            match = _HOST.fullmatch(urlsplit(url).hostname or "")
            if match:
                return match.group(1)
    return None


def _subject_id(event: dict[str, Any], kind: str) -> str | None:
    subject = str(event.get("subject") or "")
    prefix = f"zen:{kind}:"
    if subject.startswith(prefix) and subject[len(prefix) :].isdigit():
        return subject[len(prefix) :]
    detail = event.get("detail")
    found = detail.get("id") if isinstance(detail, dict) else None
    return str(found) if found not in (None, "") and str(found).isdigit() else None
