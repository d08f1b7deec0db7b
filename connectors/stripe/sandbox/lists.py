"""Stripe's list endpoints: `{"object": "list", "url", "has_more", "data"}` newest first, `limit` 1 to 100
(default 10), one of `starting_after`/`ending_before` (an unknown id is a 404 naming the parameter),
`created` bounds, and each endpoint's own filters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.stripe.sandbox import objects
from connectors.stripe.sandbox.errors import invalid, resource_missing
from connectors.stripe.sandbox.params import LIST, Reader, boolean, choice, required_text, strings
from connectors.stripe.sandbox.store import Window

if TYPE_CHECKING:
    from connectors.stripe.sandbox.account import Account

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_EVENT_TYPES = 20

Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Filter:
    """A list parameter: how its value is read, and which objects it keeps."""

    read: Reader
    keeps: Callable[[Any], Predicate]


def equals(field: str, read: Reader = required_text) -> Filter:
    return Filter(read, lambda wanted: lambda obj: obj.get(field) == wanted)


def _subscription_status(wanted: str) -> Predicate:
    # Without a status, or with any other than `canceled`, `ended` or `all`, canceled subscriptions are left out.
    if wanted == "all":
        return lambda obj: True
    if wanted == "ended":
        return lambda obj: obj["status"] in ("canceled", "incomplete_expired")
    return lambda obj: obj["status"] == wanted


def _event_types(wanted: str | list[str]) -> Predicate:
    patterns = [wanted] if isinstance(wanted, str) else wanted
    exact = {p for p in patterns if not p.endswith("*")}
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
    return lambda obj: obj["type"] in exact or (bool(prefixes) and obj["type"].startswith(prefixes))


def _types(name: str, value: Any) -> list[str]:
    read = strings(name, value)
    if len(read) > MAX_EVENT_TYPES:
        raise invalid(f"You may pass at most {MAX_EVENT_TYPES} types.", name)
    return read


SUBSCRIPTION_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)

# Collection -> its list endpoint's filters.
FILTERS: dict[str, dict[str, Filter]] = {
    "customers": {"email": equals("email")},
    "invoices": {
        "customer": equals("customer"),
        "subscription": equals("subscription"),
        "status": equals("status", choice("draft", "open", "paid", "uncollectible", "void")),
        "collection_method": equals("collection_method"),
    },
    "invoiceitems": {
        "customer": equals("customer"),
        "invoice": equals("invoice"),
        "pending": Filter(boolean, lambda pending: lambda obj: (obj["invoice"] is None) == pending),
    },
    "payment_intents": {"customer": equals("customer")},
    "charges": {"customer": equals("customer"), "payment_intent": equals("payment_intent")},
    "subscriptions": {
        "customer": equals("customer"),
        "price": Filter(required_text, lambda p: lambda obj: any(i["price"]["id"] == p for i in obj["items"]["data"])),
        "status": Filter(choice(*SUBSCRIPTION_STATUSES), _subscription_status),
    },
    "products": {"active": equals("active", boolean)},
    "prices": {
        "product": equals("product"),
        "active": equals("active", boolean),
        "currency": equals("currency"),
        "type": equals("type", choice("one_time", "recurring")),
    },
    "events": {"type": Filter(required_text, _event_types), "types": Filter(_types, _event_types)},
    "webhook_endpoints": {},
}


def list_spec(collection: str) -> Mapping[str, Reader]:
    return {**LIST, **{name: f.read for name, f in FILTERS[collection].items()}}


def list_page(account: Account, collection: str, url: str, params: dict[str, Any], oldest: int = 0) -> dict[str, Any]:
    """One page of a collection as the list endpoint answers it; `oldest` hides what came before that position
    (events past their retention), as if it never existed."""
    limit = params.get("limit", DEFAULT_LIMIT)
    if limit < 1:
        raise invalid("This value must be greater than or equal to 1.", "limit")
    if limit > MAX_LIMIT:
        raise invalid(f"This value must be less than or equal to {MAX_LIMIT} (it currently is '{limit}').", "limit")
    if "starting_after" in params and "ending_before" in params:
        raise invalid("You may only specify one of these parameters: ending_before, starting_after.", "ending_before")
    low, high = params.get("created", (None, None))
    window = Window(low, high, params.get("starting_after"), params.get("ending_before"))
    predicates = [FILTERS[collection][name].keeps(params[name]) for name in FILTERS[collection] if name in params]
    if collection == "subscriptions" and "status" not in params:
        predicates.append(lambda obj: obj["status"] not in ("canceled", "incomplete_expired"))
    store = account.collections[collection]
    try:
        ids, has_more = store.page(window, limit, _all(predicates), oldest)
    except KeyError as unknown:
        param = "ending_before" if window.ending_before is not None else "starting_after"
        raise resource_missing(store.kind, str(unknown.args[0]), param) from None
    return objects.list_object(url, [store.objects[i] for i in ids], has_more)


def _all(predicates: list[Predicate]) -> Predicate | None:
    if not predicates:
        return None
    if len(predicates) == 1:
        return predicates[0]
    return lambda obj: all(keep(obj) for keep in predicates)


def embedded_page(listed: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A page of a list embedded in an object (an invoice's lines), in its own order."""
    limit = params.get("limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"This value must be between 1 and {MAX_LIMIT}.", "limit")
    items = listed["data"]
    ids = [item["id"] for item in items]
    start, stop = 0, len(items)
    for param in ("starting_after", "ending_before"):
        if param in params:
            if params[param] not in ids:
                raise resource_missing("line item", params[param], param)
            if param == "starting_after":
                start = ids.index(params[param]) + 1
            else:
                stop = ids.index(params[param])
    if "ending_before" in params:
        chunk, has_more = items[max(start, stop - limit) : stop], stop - limit > start
    else:
        chunk, has_more = items[start : start + limit], start + limit < stop
    return {**objects.list_object(listed["url"], chunk, has_more), "total_count": len(items)}
