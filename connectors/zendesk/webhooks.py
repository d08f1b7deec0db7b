"""Zendesk's webhooks: base64 HMAC-SHA256 over the ISO 8601 timestamp and the body, keyed with the
webhook's signing secret; and the events of a delivery (one event-subscription event per delivery).

A delivery names its account by a number (`account_id`) that no API tells a connection, so deliveries are
matched to connections by subdomain: the URL the platform registered names it
(`/webhooks/zendesk?subdomain=acme`, the connector's `webhook_account_param`), or else a trigger's body does
(`"subdomain": "acme"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.kit.signatures import HmacSignature
from connectors.kit.webhooks import WebhookDelivery, WebhookEvent, json_delivery

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


@dataclass(frozen=True)
class ZendeskEvents:
    """`zen:event-type:ticket.status_changed` about `zen:ticket:123`: read ticket 123 again; a deletion
    (`ticket.soft_deleted`, `user.deleted`, ...) marks it gone. A user is read again in both user streams:
    the one whose role it no longer has drops it."""

    def parse(self, body: bytes) -> WebhookDelivery:
        event = json_delivery(body, dict, "a Zendesk webhook body is one JSON event object")
        # A trigger webhook's body, as xkit's setup writes it, names the subdomain; an event subscription's
        # only the account number, and the URL the platform registered names the subdomain instead.
        named = event.get("subdomain")
        account = named if isinstance(named, str) and named else str(event.get("account_id") or "")
        kind, _, action = str(event.get("type", "")).removeprefix("zen:event-type:").partition(".")
        remote_id = _subject_id(event, kind)
        if kind not in STREAMS or remote_id is None:
            return WebhookDelivery(frozenset({account}), [])
        gone = action in GONE
        return WebhookDelivery(
            frozenset({account}), [WebhookEvent(account, stream, remote_id, deleted=gone) for stream in STREAMS[kind]]
        )


def _subject_id(event: dict[str, Any], kind: str) -> str | None:
    subject = str(event.get("subject") or "")
    prefix = f"zen:{kind}:"
    if subject.startswith(prefix) and subject[len(prefix) :].isdigit():
        return subject[len(prefix) :]
    detail = event.get("detail")
    found = detail.get("id") if isinstance(detail, dict) else None
    return str(found) if found not in (None, "") and str(found).isdigit() else None
