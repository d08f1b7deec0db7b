"""The sandbox's objects in the shapes of Stripe API version 2024-06-20 (stripe/openapi fixtures3.json):
customers, products and prices, invoices with their line items, invoice items, payment intents, charges,
subscriptions with their items, events and webhook endpoints. Amounts are integers in minor units and
currencies lower case, as Stripe sends them."""

from __future__ import annotations

import zlib
from typing import Any

API_VERSION = "2024-06-20"
ACCOUNT_COUNTRY = "US"

# Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal) and the three-decimal ones whose
# amounts must be a multiple of ten (…#three-decimal).
ZERO_DECIMAL = frozenset(
    ("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf")
)
THREE_DECIMAL = frozenset(("bhd", "jod", "kwd", "omr", "tnd"))
CURRENCIES = (
    frozenset(("usd", "eur", "gbp", "aud", "cad", "chf", "cny", "czk", "dkk", "hkd", "huf", "inr", "mxn", "nok", "nzd"))
    | frozenset(("pln", "sek", "sgd", "zar"))
    | ZERO_DECIMAL
    | THREE_DECIMAL
)


def list_object(url: str, data: list[dict[str, Any]], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def embedded_list(url: str) -> dict[str, Any]:
    """A list inside an object (an invoice's lines, a subscription's items): it says how many it holds."""
    return {**list_object(url, []), "total_count": 0}


def deleted_stub(object_id: str, kind: str) -> dict[str, Any]:
    return {"id": object_id, "object": kind, "deleted": True}


def account(object_id: str, created: int, name: str, email: str) -> dict[str, Any]:
    """A Standard account, fully onboarded, as `GET /v1/account` shows it to its own key."""
    return {
        "id": object_id,
        "object": "account",
        "business_profile": {
            "mcc": None,
            "name": name,
            "product_description": None,
            "support_address": None,
            "support_email": None,
            "support_phone": None,
            "support_url": None,
            "url": None,
        },
        "business_type": "company",
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "country": ACCOUNT_COUNTRY,
        "created": created,
        "default_currency": "usd",
        "details_submitted": True,
        "email": email,
        "metadata": {},
        "payouts_enabled": True,
        "settings": {
            "dashboard": {"display_name": name, "timezone": "Etc/UTC"},
            "payments": {"statement_descriptor": name.upper()[:22]},
        },
        "type": "standard",
    }


def customer(object_id: str, created: int, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": fields.get("currency"),
        "default_source": None,
        "delinquent": False,
        "description": fields.get("description"),
        "discount": None,
        "email": fields.get("email"),
        "invoice_prefix": f"{zlib.crc32(object_id.encode()):08X}",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": fields.get("metadata") or {},
        "name": fields.get("name"),
        "next_invoice_sequence": 1,
        "phone": fields.get("phone"),
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def product(object_id: str, created: int, name: str, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "product",
        "active": True,
        "created": created,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata or {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }


def price(
    object_id: str, created: int, product_id: str, currency: str, unit_amount: int, interval: str | None
) -> dict[str, Any]:
    recurring = None
    if interval is not None:
        recurring = {
            "aggregate_usage": None,
            "interval": interval,
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
    return {
        "id": object_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time" if interval is None else "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def line_item(
    object_id: str,
    invoice_id: str,
    price_obj: dict[str, Any],
    quantity: int,
    description: str | None,
    period: tuple[int, int],
    *,
    amount: int | None = None,
    invoice_item: str | None = None,
    subscription: str | None = None,
    subscription_item: str | None = None,
) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "line_item",
        "amount": price_obj["unit_amount"] * quantity if amount is None else amount,
        "amount_excluding_tax": price_obj["unit_amount"] * quantity if amount is None else amount,
        "currency": price_obj["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "invoice_item": invoice_item,
        "livemode": False,
        "metadata": {},
        "period": {"end": period[1], "start": period[0]},
        "plan": None,
        "price": price_obj,
        "proration": False,
        "proration_details": {"credited_items": None},
        "quantity": quantity,
        "subscription": subscription,
        "subscription_item": subscription_item,
        "tax_amounts": [],
        "tax_rates": [],
        "type": "subscription" if subscription_item else "invoiceitem",
        "unit_amount_excluding_tax": str(price_obj["unit_amount"]),
    }


def invoice_item(
    object_id: str, created: int, customer_id: str, invoice_id: str | None, line: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "invoiceitem",
        "amount": line["amount"],
        "currency": line["currency"],
        "customer": customer_id,
        "date": created,
        "description": line["description"],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "period": line["period"],
        "price": line["price"],
        "proration": False,
        "quantity": line["quantity"],
        "subscription": None,
        "tax_rates": [],
        "test_clock": None,
        "unit_amount": line["price"]["unit_amount"],
        "unit_amount_decimal": str(line["price"]["unit_amount"]),
    }


def invoice(
    object_id: str,
    created: int,
    customer_obj: dict[str, Any],
    currency: str,
    *,
    subscription: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    period: tuple[int, int] | None = None,
) -> dict[str, Any]:
    start, end = period or (created, created)
    return {
        "id": object_id,
        "object": "invoice",
        "account_country": ACCOUNT_COUNTRY,
        "account_name": "xkit sandbox",
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": False,
        "billing_reason": "subscription_cycle" if subscription else "manual",
        "charge": None,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer_obj["id"],
        "customer_email": customer_obj.get("email"),
        "customer_name": customer_obj.get("name"),
        "default_payment_method": None,
        "description": description,
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "lines": embedded_list(f"/v1/invoices/{object_id}/lines"),
        "livemode": False,
        "metadata": metadata or {},
        "number": None,
        "paid": False,
        "paid_out_of_band": False,
        "payment_intent": None,
        "period_end": end,
        "period_start": start,
        "starting_balance": 0,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subscription": subscription,
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "tax": None,
        "test_clock": None,
        "total": 0,
        "total_excluding_tax": 0,
        "webhooks_delivered_at": created,
    }


def total_lines(inv: dict[str, Any]) -> None:
    """Recompute an invoice's amounts from its lines (no tax, no discounts, no credit balance)."""
    total = sum(line["amount"] for line in inv["lines"]["data"])
    inv["lines"]["total_count"] = len(inv["lines"]["data"])
    paid = inv["amount_paid"]
    inv.update(
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
        amount_due=total,
        amount_remaining=0 if inv["status"] in ("paid", "void") else total - paid,
    )


def payment_intent(
    object_id: str,
    created: int,
    amount: int,
    currency: str,
    *,
    customer_id: str | None = None,
    invoice_id: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{object_id}_secret_{object_id[-10:]}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "description": description,
        "invoice": invoice_id,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata or {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def charge(object_id: str, created: int, intent: dict[str, Any], *, succeeded: bool) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if succeeded else 0,
        "amount_refunded": 0,
        "balance_transaction": None,
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "captured": succeeded,
        "created": created,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_code": None if succeeded else "card_declined",
        "failure_message": None if succeeded else "Your card was declined.",
        "invoice": intent["invoice"],
        "livemode": False,
        "metadata": {},
        "outcome": {
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": None if succeeded else "generic_decline",
            "risk_level": "normal",
            "seller_message": "Payment complete." if succeeded else "The bank did not return any further details.",
            "type": "authorized" if succeeded else "issuer_declined",
        },
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "receipt_url": None,
        "refunded": False,
        "status": "succeeded" if succeeded else "failed",
    }


def subscription(
    object_id: str, created: int, customer_id: str, currency: str, period: tuple[int, int]
) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "subscription",
        "application": None,
        "billing_cycle_anchor": period[0],
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": None,
        "description": None,
        "discount": None,
        "ended_at": None,
        "items": embedded_list(f"/v1/subscription_items?subscription={object_id}"),
        "latest_invoice": None,
        "livemode": False,
        "metadata": {},
        "pause_collection": None,
        "start_date": created,
        "status": "active",
        "test_clock": None,
        "trial_end": None,
        "trial_start": None,
    }


def subscription_item(
    object_id: str, created: int, subscription_id: str, price_obj: dict[str, Any], quantity: int
) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": created,
        "discounts": [],
        "metadata": {},
        "plan": None,
        "price": price_obj,
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def event(
    object_id: str,
    created: int,
    kind: str,
    snapshot: dict[str, Any],
    previous: dict[str, Any] | None,
    request: tuple[str | None, str | None],
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": snapshot}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": object_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request[0], "idempotency_key": request[1]},
        "type": kind,
    }


def webhook_endpoint(
    object_id: str, created: int, url: str, events: list[str], description: str | None, metadata: dict[str, str]
) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "webhook_endpoint",
        "api_version": API_VERSION,
        "application": None,
        "created": created,
        "description": description,
        "enabled_events": events,
        "livemode": False,
        "metadata": metadata,
        "status": "enabled",
        "url": url,
    }
