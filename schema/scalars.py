from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, NewType

import orjson
import strawberry

from connectors.kit.models import MAX_AMOUNT_DIGITS, plain_digits

# The cached payload is JSON text already; embedding it as an orjson Fragment skips a parse and a dump.
RawJSON = NewType("RawJSON", object)


def _embed_json_text(value: Any) -> Any:
    return orjson.Fragment(value) if isinstance(value, str | bytes) else value


def _parse_decimal(value: Any) -> Decimal:
    """Decimals arrive as text ("1234.50"), so no float rounds them on the way; numbers are refused."""
    if not isinstance(value, str):
        raise ValueError(f'a Decimal is written as text, e.g. "1234.50", not {value!r}')
    try:
        parsed = Decimal(value)
    except InvalidOperation as error:
        raise ValueError(f"not a decimal number: {value!r}") from error
    if not parsed.is_finite():
        raise ValueError(f"not a finite decimal number: {value!r}")
    if plain_digits(parsed) > MAX_AMOUNT_DIGITS:
        raise ValueError(f"a Decimal has at most {MAX_AMOUNT_DIGITS} digits, got {value[:50]!r}")
    return parsed


SCALARS: dict[object, Any] = {
    Decimal: strawberry.scalar(
        name="Decimal",
        description='An exact decimal number as text in plain notation: "1234.50"; '
        f"at most {MAX_AMOUNT_DIGITS} digits.",
        serialize=lambda value: format(value, "f"),
        parse_value=_parse_decimal,
    ),
    RawJSON: strawberry.scalar(
        name="JSON",
        description="A JSON value: the provider's payload exactly as xkit received it.",
        serialize=_embed_json_text,
        parse_value=lambda value: value,
    ),
}
