"""Reading a request's parameters as Stripe does: every parameter must be known to the endpoint, values are
coerced from their form strings by kind, and an empty value unsets (`description=`, `metadata[k]=`).

A parameter table maps each name to a reader; a reader raises the 400 Stripe answers for a bad value."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from connectors.stripe.sandbox.errors import invalid, missing_parameter, unknown_parameter
from connectors.stripe.sandbox.objects import CURRENCIES, THREE_DECIMAL

Reader = Callable[[str, Any], Any]
Spec = Mapping[str, Reader]

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
EXPAND_MAX_DEPTH = 4
CLEAR = object()  # `metadata=`: every key goes


def text(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {_shown(value)}", name)
    return value or None


def required_text(name: str, value: Any) -> str:
    found = text(name, value)
    if found is None:
        raise invalid(
            f"You passed an empty string for '{name}'. We assume empty values are an attempt to unset a "
            f"parameter; however '{name}' cannot be unset. You should remove '{name}' from your request "
            "or supply a non-empty value.",
            name,
            "parameter_invalid_empty",
        )
    return found


def integer(name: str, value: Any) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d{1,18}", value):
        raise invalid(f"Invalid integer: {_shown(value)}", name, "parameter_invalid_integer")
    return int(value)


def positive(name: str, value: Any) -> int:
    number = integer(name, value)
    if number < 1:
        raise invalid("This value must be greater than or equal to 1.", name)
    return number


def boolean(name: str, value: Any) -> bool:
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {_shown(value)}", name)
    return bool(value == "true")


def currency(name: str, value: Any) -> str:
    code = required_text(name, value).lower()
    if code not in CURRENCIES:
        raise invalid(
            f"Invalid currency: {code}. Stripe currently supports these currencies: {', '.join(sorted(CURRENCIES))}",
            name,
        )
    return code


def strings(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise invalid(f"Invalid array: {name} must be a list of strings", name)
    return list(value)


def expand(name: str, value: Any) -> list[str]:
    paths = strings(name, value)
    for path in paths:
        if len(path.split(".")) > EXPAND_MAX_DEPTH:
            raise invalid(
                f"You cannot expand more than {EXPAND_MAX_DEPTH} levels of a property. Property: {path}", name
            )
    return paths


def metadata(name: str, value: Any) -> dict[str, str | None] | object:
    """Keys to set, with None for a key to remove (`metadata[k]=`); CLEAR for `metadata=`."""
    if value == "":
        return CLEAR
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid("Invalid metadata: metadata must be a set of string keys and string values", name)
    if len(value) > METADATA_MAX_KEYS:
        raise invalid(f"Invalid metadata: metadata can have at most {METADATA_MAX_KEYS} keys", name)
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX or not key:
            raise invalid(f"Metadata keys can be at most {METADATA_KEY_MAX} characters long: {key[:60]}", name)
        if len(item) > METADATA_VALUE_MAX:
            raise invalid(
                f"Metadata values can have up to {METADATA_VALUE_MAX} characters, but you passed in a "
                f"value that is {len(item)} characters. Invalid value: {item[:40]}...",
                name,
            )
    return {key: item or None for key, item in value.items()}


def merged_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    if update is CLEAR:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > METADATA_MAX_KEYS:
        raise invalid(f"Invalid metadata: metadata can have at most {METADATA_MAX_KEYS} keys", "metadata")
    return merged


def created(name: str, value: Any) -> tuple[int | None, int | None]:
    """`created=<t>` or `created[gt|gte|lt|lte]=<t>`, as inclusive (from, to) bounds."""
    if isinstance(value, str):
        exact = integer(name, value)
        return exact, exact
    if not isinstance(value, dict):
        raise invalid(f"Invalid {name}: send a timestamp or a hash of gt, gte, lt, lte", name)
    low: int | None = None
    high: int | None = None
    for op, bound in value.items():
        if op not in ("gt", "gte", "lt", "lte"):
            raise unknown_parameter(f"{name}[{op}]")
        at = integer(f"{name}[{op}]", bound)
        if op in ("gt", "gte"):
            at += op == "gt"
            low = at if low is None else max(low, at)
        else:
            at -= op == "lt"
            high = at if high is None else min(high, at)
    return low, high


def choice(*options: str) -> Reader:
    def read(name: str, value: Any) -> str:
        if value not in options:
            raise invalid(f"Invalid {name}: must be one of {', '.join(options)}", name)
        return str(value)

    return read


def each(spec: Spec, required: tuple[str, ...] = ()) -> Reader:
    """A list of hashes, each read by `spec` (`lines[0][amount]=...`)."""

    def read(name: str, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise invalid(f"Invalid array: {name} must be a list of hashes", name)
        return [read_params(item, spec, required, prefix=f"{name}[{index}]") for index, item in enumerate(value)]

    return read


def read_params(
    fields: Mapping[str, Any], spec: Spec, required: tuple[str, ...] = (), *, prefix: str = ""
) -> dict[str, Any]:
    """`fields` read by `spec`: unknown names and missing required ones are refused, as Stripe does."""
    read: dict[str, Any] = {}
    for name, value in fields.items():
        shown = f"{prefix}[{name}]" if prefix else name
        reader = spec.get(name)
        if reader is None:
            raise unknown_parameter(shown)
        read[name] = reader(shown, value)
    for name in required:
        if read.get(name) is None:
            raise missing_parameter(f"{prefix}[{name}]" if prefix else name)
    return read


def check_amount(name: str, amount: int, currency_code: str) -> int:
    if amount < 0:
        raise invalid("This value must be greater than or equal to 0.", name)
    if currency_code in THREE_DECIMAL and amount % 10:
        raise invalid(
            f"Amounts in {currency_code} must be a multiple of 10: its smallest unit is a thousandth, and Stripe "
            "charges it in hundredths.",
            name,
        )
    return amount


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else type(value).__name__


LIST = {
    "limit": integer,
    "starting_after": required_text,
    "ending_before": required_text,
    "created": created,
    "expand": expand,
}
