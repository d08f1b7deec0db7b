"""`expand[]`: ids in a response replaced by the objects they name, along dotted paths (`customer`,
`data.customer` in a list, `lines.data.price.product`). A path through anything that is not an expandable id
or an embedded object is refused as Stripe refuses it: 400 naming param `expand`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.stripe.sandbox.errors import invalid

if TYPE_CHECKING:
    from connectors.stripe.sandbox.account import Account

# Object type -> its fields that hold an id Stripe can expand, and the collection the id is in.
EXPANDABLE: dict[str, dict[str, str]] = {
    "invoice": {
        "customer": "customers",
        "subscription": "subscriptions",
        "payment_intent": "payment_intents",
        "charge": "charges",
    },
    "line_item": {"invoice_item": "invoiceitems", "subscription": "subscriptions"},
    "invoiceitem": {"customer": "customers", "invoice": "invoices", "subscription": "subscriptions"},
    "payment_intent": {"customer": "customers", "invoice": "invoices", "latest_charge": "charges"},
    "charge": {"customer": "customers", "invoice": "invoices", "payment_intent": "payment_intents"},
    "subscription": {"customer": "customers", "latest_invoice": "invoices"},
    "price": {"product": "products"},
}


def expanded(account: Account, value: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """`value` with every path expanded; the stored objects are left as they are (changed parts are copies)."""
    for path in paths:
        value = _expand(account, value, path.split("."), path)
    return value


def _expand(account: Account, value: Any, parts: list[str], path: str) -> Any:
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict) and value.get("object") == "list" and head == "data":
        return {**value, "data": [_expand(account, item, rest, path) for item in value["data"]]}
    if not isinstance(value, dict) or head not in value:
        raise cannot_expand(head)
    field = value[head]
    target = EXPANDABLE.get(str(value.get("object")), {}).get(head)
    if isinstance(field, str) and target is not None:
        field = account.expand_target(target, field)
    elif field is None and target is not None:
        return value
    elif not isinstance(field, dict):
        raise cannot_expand(head)
    return {**value, head: _expand(account, field, rest, path)}


def cannot_expand(name: str) -> Exception:
    return invalid(f"This property cannot be expanded ({name}).", "expand")
