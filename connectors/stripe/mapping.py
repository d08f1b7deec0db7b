"""Stripe objects as common models (API version 2024-06-20 shapes): customers, invoices with their lines,
payment intents as Payments, subscriptions with their items.

Amounts are integers in the currency's minor units and currencies lower-case codes; instants are Unix
seconds. Statuses keep Stripe's own word in `remoteStatus`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.kit.errors import BadInput
from connectors.kit.mapping import Computed, EachOf, ModelMapping, MoneyAt, Path
from connectors.kit.models import BILLING_SUBSCRIPTION, CUSTOMER, INVOICE, PAYMENT


def seconds(path: str) -> Computed:
    """An instant Stripe writes as Unix seconds, read-only."""

    def read(raw: dict[str, Any]) -> datetime | None:
        value = Path(path).read(raw, None)
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        return datetime.fromtimestamp(value, tz=UTC)

    return Computed(read)


def _upper_currency(raw: dict[str, Any]) -> str | None:
    code = raw.get("currency")
    return code.upper() if isinstance(code, str) and code else None


def _status(words: dict[str, str]) -> Computed:
    """An enum read from Stripe's `status` (read-only: Stripe moves statuses through actions)."""
    return Computed(lambda raw: words.get(str(raw.get("status"))))


def stripe_id(path: str, *, writable: bool = False) -> Computed:
    """A relation Stripe writes as an id, or as the object when expanded."""

    def read(raw: dict[str, Any]) -> str | None:
        value = Path(path).read(raw, None)
        if isinstance(value, dict):
            value = value.get("id")
        return value if isinstance(value, str) and value else None

    def write(value: Any) -> dict[str, Any]:
        if value is not None and not isinstance(value, str):
            raise BadInput(f"{path} takes a Stripe id")
        return {path: value}

    return Computed(read, write=write if writable else None)


def money(amount: str, currency: str = "currency", *, writable: bool = False) -> MoneyAt:
    return MoneyAt(amount, currency, minor_units=True, writable=writable)


METADATA = Path("metadata")
CURRENCY = Computed(_upper_currency)

CUSTOMER_MAPPING = ModelMapping(
    CUSTOMER,
    {
        "email": Path("email"),
        "name": Path("name"),
        "phone": Path("phone"),
        "description": Path("description"),
        "currency": CURRENCY,
        "balance": money("balance", writable=True),
        "delinquent": Path("delinquent", writable=False),
        "metadata": METADATA,
    },
)

INVOICE_STATUSES = {"draft": "DRAFT", "open": "OPEN", "paid": "PAID", "uncollectible": "UNCOLLECTIBLE", "void": "VOID"}

INVOICE_MAPPING = ModelMapping(
    INVOICE,
    {
        "number": Path("number", writable=False),
        "status": _status(INVOICE_STATUSES),
        "remote_status": Path("status", writable=False),
        "currency": CURRENCY,
        "subtotal": money("subtotal"),
        "total": money("total"),
        "amount_due": money("amount_due"),
        "amount_paid": money("amount_paid"),
        "amount_remaining": money("amount_remaining"),
        "due_at": seconds("due_date"),
        "paid_at": seconds("status_transitions.paid_at"),
        "period_start": seconds("period_start"),
        "period_end": seconds("period_end"),
        "hosted_url": Path("hosted_invoice_url", writable=False),
        "lines": EachOf(
            "lines.data",
            {
                "description": Path("description"),
                "quantity": Path("quantity"),
                "amount": money("amount"),
                "price_remote_id": Path("price.id"),
                "product_remote_id": Path("price.product"),
            },
        ),
        "metadata": METADATA,
        "customer": stripe_id("customer", writable=True),
        "subscription": stripe_id("subscription"),
    },
)

PAYMENT_STATUSES = {
    "requires_payment_method": "REQUIRES_ACTION",
    "requires_confirmation": "REQUIRES_ACTION",
    "requires_action": "REQUIRES_ACTION",
    "requires_capture": "REQUIRES_ACTION",
    "processing": "PROCESSING",
    "succeeded": "SUCCEEDED",
    "canceled": "CANCELED",
}


def _payment_status(raw: dict[str, Any]) -> str | None:
    # An intent back at requires_payment_method after an attempt is a failed payment, not a new one.
    if raw.get("status") == "requires_payment_method" and raw.get("last_payment_error"):
        return "FAILED"
    return PAYMENT_STATUSES.get(str(raw.get("status")))


def _payment_method(raw: dict[str, Any]) -> str | None:
    used = Path("latest_charge.payment_method_details.type").read(raw, None)
    if isinstance(used, str) and used:
        return used
    offered = raw.get("payment_method_types")
    return str(offered[0]) if isinstance(offered, list) and offered else None


PAYMENT_MAPPING = ModelMapping(
    PAYMENT,
    {
        "amount": money("amount"),
        "amount_received": money("amount_received"),
        # On the latest charge, which the listing expands (`expand[]=data.latest_charge`).
        "amount_refunded": money("latest_charge.amount_refunded"),
        "currency": CURRENCY,
        "status": Computed(_payment_status),
        "remote_status": Path("status", writable=False),
        "method": Computed(_payment_method),
        "description": Path("description"),
        "failure_message": Path("last_payment_error.message", writable=False),
        "metadata": METADATA,
        "customer": stripe_id("customer"),
        "invoice": stripe_id("invoice"),
    },
)

SUBSCRIPTION_STATUSES = {
    word: word.upper()
    for word in ("trialing", "active", "past_due", "canceled", "unpaid", "incomplete", "incomplete_expired", "paused")
}

SUBSCRIPTION_MAPPING = ModelMapping(
    BILLING_SUBSCRIPTION,
    {
        "status": _status(SUBSCRIPTION_STATUSES),
        "remote_status": Path("status", writable=False),
        "currency": CURRENCY,
        "current_period_start": seconds("current_period_start"),
        "current_period_end": seconds("current_period_end"),
        "cancel_at": seconds("cancel_at"),
        "canceled_at": seconds("canceled_at"),
        "cancel_at_period_end": Path("cancel_at_period_end"),
        "trial_end": seconds("trial_end"),
        "items": EachOf(
            "items.data",
            {
                "price_remote_id": Path("price.id"),
                "product_remote_id": Path("price.product"),
                "quantity": Path("quantity"),
                "unit_amount": money("price.unit_amount", "price.currency"),
                "interval": Path("price.recurring.interval"),
            },
        ),
        "metadata": METADATA,
        "customer": stripe_id("customer"),
    },
)
