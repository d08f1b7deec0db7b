"""Stripe's webhooks: `Stripe-Signature: t=<seconds>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 over
`{t}.{body}` keyed with the endpoint's secret, five minutes' tolerance; any `v1` may match (two are sent
while a secret is rotated). The body is one Event.

A Connect endpoint's events name the connected account (`account`); an account's own endpoint sends events
that name none, so its URL names it (`/webhooks/stripe?account=acct_...`, the connector's
`webhook_account_param`), the id a key connection learns from `GET /v1/account`. Each event names the object
it is about; the intake reads it again, so an event delivered late or twice never stores an old copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connectors.kit.signatures import HmacSignature, KeyedSignatures
from connectors.kit.webhooks import WebhookDelivery, WebhookEvent, json_delivery

SIGNATURE = HmacSignature(
    header="Stripe-Signature", signs="{timestamp}.{body}", keyed=KeyedSignatures("t", "v1"), max_age_seconds=300
)


@dataclass(frozen=True)
class StripeDeliveries:
    """Events by type to the stream holding their object; `subject_of` names the field holding the
    object's id where it is not the event object's own (an invoice item's invoice)."""

    streams: Mapping[str, str]
    deleted_types: frozenset[str]
    subject_of: Mapping[str, str]

    def parse(self, body: bytes) -> WebhookDelivery:
        event = json_delivery(body, dict, "a Stripe webhook body is one Event object")
        account = event.get("account")
        named = account if isinstance(account, str) else ""
        kind = str(event.get("type") or "")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        stream = self.streams.get(kind)
        if stream is None or not isinstance(obj, dict):
            return WebhookDelivery(frozenset({named}), [])
        subject = obj.get(self.subject_of.get(kind, "id"))
        if not isinstance(subject, str) or not subject:
            return WebhookDelivery(frozenset({named}), [])
        event_of = WebhookEvent(named, stream, subject, deleted=kind in self.deleted_types)
        return WebhookDelivery(frozenset({named}), [event_of])
