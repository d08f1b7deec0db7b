"""Writes that follow a connection's field mappings: `customFields: {tier: "gold"}` in a create or update becomes
the provider field the connection maps `tier` to (`properties.tier` at HubSpot, `customer_tier__c` at
Salesforce, `metadata.plan` at Stripe), and a built-in member a mapping overrides (`Contact.phone <- mobilephone`)
is written to its mapped source instead of the connector's default path.

Everything here is checked before the provider is asked anything that writes: a key the platform never
defined, one this connection does not map, a value of the wrong type for its field, a source the provider keeps
read-only (its catalog says so) or a transform that cannot be reversed (a value table where two provider
values map to the one written) is refused with BAD_USER_INPUT naming `customFields.<key>` (or the member),
and nothing is sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.kit.convert import iso_millis, read_datetime
from connectors.kit.errors import BadInput
from connectors.kit.field_catalog import Catalog
from connectors.kit.field_mappings import MAX_TEXT, CustomFieldType, FieldSource, ModelOverlay
from connectors.kit.models import CommonModel, Money, graphql_name

CUSTOM_FIELDS = "customFields"
# Integers a custom INT field takes: what a JSON number carries exactly (and what the index keeps as a float).
MAX_SAFE_INT = 2**53 - 1
MAX_LIST_ITEMS = 100


@dataclass(frozen=True)
class MappedWrite:
    """The common members left to the connector's own mapping, and the provider fields ({dotted path: value})
    the connection's mappings write."""

    values: dict[str, Any]
    provider_fields: dict[str, Any]


def mapped_write(
    model: CommonModel,
    overlay: ModelOverlay | None,
    values: Mapping[str, Any],
    custom: Mapping[str, Any],
    *,
    catalog: Catalog | None,
    currency: str | None,
    currencies: Mapping[str, str] | None = None,
) -> MappedWrite:
    """What a write sends through the connection's mappings. `catalog`: the provider's fields as last read
    (None or unavailable: writability unknown, left to the provider); `currency`: the account's, which a MONEY
    custom field holds its bare amount in; `currencies`: each Money member's (`Draft.currencies`)."""
    fields: dict[str, Any] = {}
    written_by: dict[str, str] = {}

    def put(name: str, source: FieldSource, value: Any) -> None:
        for path, provider_value in _writable(source, catalog, name).write(value).items():
            if path in fields and fields[path] != provider_value:
                raise BadInput(f"{name} and {written_by[path]} both write {path}", field=name, providerField=path)
            fields[path] = provider_value
            written_by[path] = name

    for key, value in custom.items():
        name = f"{CUSTOM_FIELDS}.{key}"
        wanted, source = _custom_source(model, overlay, key)
        with _naming(name):
            put(name, source, written_value(value, wanted, name, currency))
    kept = dict(values)
    for member, source in (overlay.builtin if overlay else {}).items():
        if member not in kept:
            continue
        name = graphql_name(model.input_name(member))
        value = kept.pop(member)
        with _naming(name):
            put(name, source, _builtin_value(model, member, value, name, (currencies or {}).get(member) or currency))
    return MappedWrite(kept, fields)


def written_value(value: Any, wanted: CustomFieldType, name: str, currency: str | None) -> Any:
    """A value written to a custom field of type `wanted`, checked strictly (a write is never coerced the way a
    read is: "12" is not an INT) and put the way the provider field holds it; null clears the field."""
    if value is None:
        return None
    problem = f"{name} is {wanted.value}"
    if wanted is CustomFieldType.STRING:
        if not isinstance(value, str):
            raise _wrong(problem, value, name)
        if len(value) > MAX_TEXT:
            raise BadInput(f"{name} is at most {MAX_TEXT} characters", field=name)
        return value
    if wanted is CustomFieldType.INT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong(problem, value, name)
        if abs(value) > MAX_SAFE_INT:
            raise BadInput(f"{name} is an INT between -{MAX_SAFE_INT} and {MAX_SAFE_INT}", field=name)
        return value
    if wanted is CustomFieldType.FLOAT:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise _wrong(problem, value, name)
        return value
    if wanted is CustomFieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise _wrong(problem, value, name)
        return value
    if wanted is CustomFieldType.DATETIME:
        moment = read_datetime(value) if isinstance(value, str) else None
        if moment is None:
            raise BadInput(f"{problem}: an ISO 8601 instant, not {value!r}", field=name)
        return iso_millis(moment)
    if wanted is CustomFieldType.MONEY:
        return _money_amount(value, name, currency)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _wrong(f"{problem} (a list of text)", value, name)
    if len(value) > MAX_LIST_ITEMS or any(len(item) > MAX_TEXT for item in value):
        raise BadInput(f"{name} holds at most {MAX_LIST_ITEMS} items of at most {MAX_TEXT} characters", field=name)
    return list(value)


def custom_fields_given(given: Any) -> dict[str, Any]:
    """The `customFields` of a write input: a JSON object of custom field keys to values."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise BadInput(
            f"{CUSTOM_FIELDS} must be a JSON object of custom field keys to values, not {type(given).__name__}",
            field=CUSTOM_FIELDS,
        )
    return given


def _custom_source(model: CommonModel, overlay: ModelOverlay | None, key: str) -> tuple[CustomFieldType, FieldSource]:
    name = f"{CUSTOM_FIELDS}.{key}"
    defined = overlay.defined if overlay else ()
    if key not in defined:
        listed = ", ".join(defined) if defined else "none"
        raise BadInput(
            f"{name}: no custom field {key!r} is defined on {model.name} (defined: {listed})",
            field=name,
            defined=list(defined),
        )
    assert overlay is not None
    mapped = overlay.custom.get(key)
    if mapped is None:
        listed = ", ".join(overlay.custom) if overlay.custom else "none"
        raise BadInput(
            f"{name} is not mapped to a provider field on this connection, so nothing says where to write it "
            f"(mapped here: {listed}); set a mapping with setFieldMapping",
            field=name,
            mapped=list(overlay.custom),
        )
    return mapped


def _writable(source: FieldSource, catalog: Catalog | None, name: str) -> FieldSource:
    """The source as the provider's catalog describes it: a field the provider keeps read-only is refused."""
    found = catalog.find(source.path) if catalog is not None else None
    if found is not None and not found.writable:
        raise BadInput(
            f"{name} is mapped to {source.path}, which the provider keeps read-only",
            field=name,
            providerField=source.path,
        )
    return source if found is None else replace(source, writable=found.writable)


def _builtin_value(model: CommonModel, member: str, value: Any, name: str, currency: str | None) -> Any:
    """A built-in member's written value as its mapped source holds it: an instant as ISO text, Money as its bare
    amount (in the currency the source is read in), anything else as the input gave it."""
    if value is None:
        return None
    kind = model.field(member).type
    if isinstance(value, datetime):
        return iso_millis(value)
    if kind is Money:
        return _money_amount(value, name, currency)
    return value


def _money_amount(value: Any, name: str, currency: str | None) -> str:
    """The exact amount (as text) of a Money value written to a field that holds a bare amount; the field is read
    in `currency`, so another currency (or none known) is refused rather than mislabelled."""
    if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
        raise BadInput(f'{name} is MONEY: {{"amount": "12.50", "currency": "EUR"}}, not {value!r}', field=name)
    try:
        amount = Decimal(str(value["amount"])) if not isinstance(value["amount"], bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise BadInput(f"{name}: {value['amount']!r} is not an amount", field=name)
    if currency is None:
        raise BadInput(
            f"{name}: the mapped provider field holds a bare amount and this connection names no currency for it",
            field=name,
        )
    if value["currency"] != currency:
        raise BadInput(
            f"{name}: the mapped provider field holds amounts in {currency}, not {value['currency']!r}",
            field=name,
            currency=currency,
        )
    try:
        money = Money(amount, currency)
    except ValueError as error:
        raise BadInput(f"{name}: {error}", field=name) from error
    if not money.is_precise_enough:
        raise BadInput(f"{name}: {currency} has at most {money.exponent} decimals, and xkit never rounds", field=name)
    return format(amount, "f")


def _wrong(problem: str, value: Any, name: str) -> BadInput:
    return BadInput(f"{problem}, not {type(value).__name__} {value!r}"[:300], field=name)


@contextmanager
def _naming(name: str) -> Iterator[None]:
    """Name the written field in a refusal a mapping's own step raised (a value table with no single provider
    value for what was written), which knows only its value."""
    try:
        yield
    except BadInput as error:
        if "field" not in error.extensions:
            error.message = f"{name}: {error.message}"
            error.args = (error.message,)
            error.extensions["field"] = name
        raise
