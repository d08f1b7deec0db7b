"""Field mappings an end user or a platform sets: where a custom field (or a built-in common field, to override
the connector's default) comes from in a provider's record, with an optional chain of transforms.

A mapping is data, never code: a dotted path into the record's raw payload and steps from a fixed set
(lowercase, split, join, parse a number, parse a date, map values through a table). Each step says what kind
of value it takes and gives, so a chain that cannot fit a field's type is refused when it is set, not when a
record is read. Applying the connection's mappings to a raw record (`FieldOverlay.apply`) is pure, so the
cache can re-derive every record from its stored payload without asking the provider; writing goes back
through the same chain reversed (`FieldSource.write`), refused where a step cannot be reversed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from connectors.kit.convert import iso_millis, read_datetime
from connectors.kit.errors import BadInput
from connectors.kit.jsonpath import path_parts
from connectors.kit.models import CommonModel, EnumType, ListOf, Money

# A custom field's key: what clients name it by in `customFields` (`tier`, `renewal_date`).
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")
# A provider field path: dotted names as the provider spells them (`properties.tier`, `customer_tier__c`,
# `metadata.plan`); no wildcards, no indexing, nothing to evaluate.
PATH_PATTERN = re.compile(r"[A-Za-z0-9_$-]{1,255}(\.[A-Za-z0-9_$-]{1,255}){0,7}")
MAX_TABLE_ENTRIES = 500
MAX_TEXT = 1000


class CustomFieldType(enum.Enum):
    STRING = "STRING"
    INT = "INT"
    FLOAT = "FLOAT"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"
    MONEY = "MONEY"
    STRING_LIST = "STRING_LIST"


# What a value is between steps: the kinds transforms take and give, and provider fields have.
Kind = Literal["text", "number", "boolean", "datetime", "list", "any"]

# The kinds a custom field type is filled from without a transform.
_ACCEPTS: dict[CustomFieldType, frozenset[str]] = {
    CustomFieldType.STRING: frozenset({"text", "number", "boolean", "any"}),
    CustomFieldType.INT: frozenset({"number", "text", "any"}),
    CustomFieldType.FLOAT: frozenset({"number", "text", "any"}),
    CustomFieldType.BOOLEAN: frozenset({"boolean", "text", "any"}),
    CustomFieldType.DATETIME: frozenset({"datetime", "text", "number", "any"}),
    CustomFieldType.MONEY: frozenset({"number", "text", "any"}),
    CustomFieldType.STRING_LIST: frozenset({"list", "text", "any"}),
}

TransformKind = Literal["lowercase", "split", "join", "parse_number", "parse_date", "map_values"]


@dataclass(frozen=True)
class Transform:
    """One step of a chain. `separator` for split and join; `table` (provider value as text -> value) and
    `default` (for a value the table lacks; None reads as null) for map_values."""

    kind: TransformKind
    separator: str | None = None
    table: Mapping[str, Any] | None = None
    default: Any = None

    def __post_init__(self) -> None:
        if self.kind in ("split", "join"):
            if not self.separator or len(self.separator) > 10:
                raise BadInput(f"{self.kind} needs a separator of 1 to 10 characters", field="transform.separator")
        elif self.separator is not None:
            raise BadInput(f"{self.kind} takes no separator", field="transform.separator")
        if self.kind == "map_values":
            if not self.table or len(self.table) > MAX_TABLE_ENTRIES:
                raise BadInput(f"map_values needs a table of 1 to {MAX_TABLE_ENTRIES} entries", field="transform.table")
            for key, value in self.table.items():
                if not isinstance(key, str) or len(key) > MAX_TEXT:
                    raise BadInput("map_values table keys are text", field="transform.table")
                if not _is_plain(value):
                    raise BadInput(
                        f"map_values table values are text, numbers or booleans, not {value!r}",
                        field="transform.table",
                    )
            if not _is_plain(self.default):
                raise BadInput("map_values default is text, a number, a boolean or null", field="transform.default")
        elif self.table is not None or self.default is not None:
            raise BadInput(f"{self.kind} takes no table", field="transform.table")

    def gives(self, takes: Kind) -> Kind:
        """The kind this step gives for the kind it is given; a step that does not take it is refused."""
        wanted, given = _STEP_KINDS[self.kind]
        if takes != "any" and takes not in wanted:
            raise BadInput(
                f"{self.kind} takes {' or '.join(sorted(wanted))}, not {takes}", field="transform", takes=takes
            )
        if self.kind == "map_values":
            kinds = {_kind_of(v) for v in self.table.values() if v is not None} if self.table else set()
            return kinds.pop() if len(kinds) == 1 else "any"
        return given

    def apply(self, value: Any) -> Any:
        if value is None:
            return self.default if self.kind == "map_values" else None
        if self.kind == "lowercase":
            return value.lower() if isinstance(value, str) else None
        if self.kind == "split":
            if not isinstance(value, str):
                return None
            assert self.separator is not None
            return [part.strip() for part in value.split(self.separator) if part.strip()]
        if self.kind == "join":
            assert self.separator is not None
            return self.separator.join(str(v) for v in value) if isinstance(value, list) else None
        if self.kind == "parse_number":
            return _number(value)
        if self.kind == "parse_date":
            moment = _instant(value)
            return iso_millis(moment) if moment else None
        assert self.table is not None
        return self.table.get(_table_key(value), self.default)

    def reverse(self, value: Any) -> Any:
        """The provider's value for a written one; a step that loses what it was given is refused."""
        if value is None:
            return None
        if self.kind == "lowercase":
            return value  # what is written is taken as the provider's spelling
        if self.kind == "split":
            assert self.separator is not None
            return self.separator.join(str(v) for v in value) if isinstance(value, list) else value
        if self.kind == "join":
            assert self.separator is not None
            return [p.strip() for p in value.split(self.separator)] if isinstance(value, str) else value
        if self.kind in ("parse_number", "parse_date"):
            return value
        assert self.table is not None
        sources = [key for key, mapped in self.table.items() if mapped == value]
        if len(sources) != 1:
            problem = "no provider value maps to it" if not sources else f"several do: {', '.join(sorted(sources))}"
            raise BadInput(f"{value!r} cannot be written through this mapping's value table: {problem}")
        return sources[0]


_STEP_KINDS: dict[str, tuple[frozenset[str], Kind]] = {
    "lowercase": (frozenset({"text"}), "text"),
    "split": (frozenset({"text"}), "list"),
    "join": (frozenset({"list"}), "text"),
    "parse_number": (frozenset({"text", "number"}), "number"),
    "parse_date": (frozenset({"text", "number", "datetime"}), "datetime"),
    "map_values": (frozenset({"text", "number", "boolean"}), "any"),
}


@dataclass(frozen=True)
class FieldSource:
    """Where a value comes from in a raw record: a dotted path and the steps applied to what is there."""

    path: str
    transforms: tuple[Transform, ...] = ()
    # The provider field's kind as discovery tells it ("any" when not known), and whether it can be written.
    provider_kind: Kind = "any"
    writable: bool = True

    def __post_init__(self) -> None:
        if not PATH_PATTERN.fullmatch(self.path):
            raise BadInput(
                "a source path is dotted provider field names (letters, digits, _ $ -), at most 8 deep",
                field="source",
            )
        if len(self.transforms) > 5:
            raise BadInput("at most 5 transforms in a chain", field="transform")

    def output_kind(self) -> Kind:
        kind: Kind = self.provider_kind
        for step in self.transforms:
            kind = step.gives(kind)
        return kind

    def read(self, raw: Mapping[str, Any]) -> Any:
        value: Any = raw
        for part in path_parts(self.path):
            if value.__class__ is not dict:
                return None
            value = value.get(part)
        if value == "":
            value = None
        for step in self.transforms:
            value = step.apply(value)
        return value

    def write(self, value: Any) -> dict[str, Any]:
        """The provider field ({path: value}) for a value written through this mapping."""
        if not self.writable:
            raise BadInput(f"{self.path} is read-only at the provider", providerField=self.path)
        for step in reversed(self.transforms):
            value = step.reverse(value)
        return {self.path: value}


def check_fits(source: FieldSource, wanted: CustomFieldType, *, field_name: str) -> None:
    """Refuse a source whose value (after its steps) cannot fill a field of type `wanted`."""
    kind = source.output_kind()
    if kind not in _ACCEPTS[wanted]:
        raise BadInput(
            f"{field_name} is {wanted.value}, and {source.path}"
            f"{' after its transforms' if source.transforms else ''} gives {kind}",
            field="transform" if source.transforms else "source",
            gives=kind,
        )


def coerce(value: Any, wanted: CustomFieldType, currency: str | None = None) -> Any:
    """A value as a custom field of type `wanted` holds it (JSON); None when it does not fit (`raw` keeps it)."""
    if value is None or value == "" or value == []:
        return None
    if wanted is CustomFieldType.STRING:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)[:MAX_TEXT] if isinstance(value, str | int | float | Decimal) else None
    if wanted in (CustomFieldType.INT, CustomFieldType.FLOAT):
        number = _number(value)
        if number is None:
            return None
        if wanted is CustomFieldType.INT:
            return int(number) if number == int(number) else None
        return float(number)
    if wanted is CustomFieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return True if text in ("true", "yes", "1") else False if text in ("false", "no", "0") else None
    if wanted is CustomFieldType.DATETIME:
        moment = _instant(value)
        return iso_millis(moment) if moment else None
    if wanted is CustomFieldType.MONEY:
        amount = _decimal(value)
        if amount is None or currency is None:
            return None  # never a guessed currency
        try:
            return Money(amount, currency).to_common()
        except ValueError:
            return None
    items = value if isinstance(value, list) else [value]
    return [str(item) for item in items if item is not None and item != ""] or None


def sortable(value: Any, wanted: CustomFieldType) -> tuple[str | None, float | None, str | None]:
    """A coerced value as the index keeps it: (text, number, instant). Money is indexed by its amount."""
    if value is None:
        return None, None, None
    if wanted in (CustomFieldType.INT, CustomFieldType.FLOAT):
        return None, float(value), None
    if wanted is CustomFieldType.MONEY:
        return value["currency"], float(Decimal(value["amount"])), None
    if wanted is CustomFieldType.DATETIME:
        return None, None, value
    if wanted is CustomFieldType.BOOLEAN:
        return ("true" if value else "false"), None, None
    return str(value), None, None


@dataclass(frozen=True)
class CustomField:
    """A field a platform defined on a model (`Contact.tier`)."""

    model: str
    key: str
    type: CustomFieldType
    label: str = ""
    description: str = ""


@dataclass(frozen=True)
class ModelOverlay:
    """One model's mappings on one connection: custom fields by key, built-in members overridden by name."""

    custom: Mapping[str, tuple[CustomFieldType, FieldSource]] = field(default_factory=dict)
    builtin: Mapping[str, FieldSource] = field(default_factory=dict)
    # Every custom field the platform defined on the model (keys unmapped here read as null).
    defined: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldOverlay:
    """A connection's effective mappings, all models; `revision` changes whenever any of them does."""

    models: Mapping[str, ModelOverlay] = field(default_factory=dict)
    revision: int = 0

    def apply(
        self, model: CommonModel, raw: Mapping[str, Any], common: dict[str, Any], currency: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The record's common fields with overridden members read from their mapped source, and its custom
        values (None when the platform defines no custom field on the model). `currency`: the account's,
        for MONEY fields and overridden Money members whose source holds a bare amount."""
        overlay = self.models.get(model.name)
        if overlay is None:
            return common, None
        if overlay.builtin:
            common = dict(common)
            for member, source in overlay.builtin.items():
                common[member] = common_value(model, member, source.read(raw), currency)
        if not overlay.defined:
            return common, None
        custom: dict[str, Any] = dict.fromkeys(overlay.defined)
        for key, (wanted, source) in overlay.custom.items():
            if key in custom:
                custom[key] = coerce(source.read(raw), wanted, currency)
        return common, custom


def common_value(model: CommonModel, member: str, value: Any, currency: str | None) -> Any:
    """A mapped value as a built-in member of `model` holds it; None when it does not fit."""
    kind = model.field(member).type
    if isinstance(kind, EnumType):
        text = str(value).upper() if value is not None else None
        return text if text in kind.members else None
    if isinstance(kind, ListOf):
        return coerce(value, CustomFieldType.STRING_LIST) or []
    if kind is Money:
        if isinstance(value, dict):
            try:
                return Money.from_common(value).to_common()
            except ValueError:
                return None
        return coerce(value, CustomFieldType.MONEY, currency)
    wanted = _BUILTIN_TYPES.get(kind)
    return coerce(value, wanted) if wanted is not None else None


_BUILTIN_TYPES: dict[object, CustomFieldType] = {
    str: CustomFieldType.STRING,
    int: CustomFieldType.INT,
    float: CustomFieldType.FLOAT,
    bool: CustomFieldType.BOOLEAN,
    datetime: CustomFieldType.DATETIME,
    Money: CustomFieldType.MONEY,
}


def builtin_type(model: CommonModel, member: str) -> CustomFieldType:
    """The custom-field type a built-in member is checked as when a mapping overrides it; relations,
    embedded values and objects cannot be overridden."""
    try:
        kind = model.field(member).type
    except KeyError:
        raise BadInput(f"{model.name} has no field {member!r} a mapping can override", field="field") from None
    if isinstance(kind, EnumType):
        return CustomFieldType.STRING
    if isinstance(kind, ListOf) and kind.item is str:
        return CustomFieldType.STRING_LIST
    found = _BUILTIN_TYPES.get(kind)
    if found is None:
        raise BadInput(f"{model.name}.{member} cannot be mapped (it is not a plain value)", field="field")
    return found


def _is_plain(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float | bool) and len(str(value)) <= MAX_TEXT)


def _kind_of(value: Any) -> Kind:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "text"


def _table_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        amount = Decimal(value if isinstance(value, str) else repr(value)) if value is not None else None
    except (InvalidOperation, ValueError):
        return None
    return amount if amount is not None and amount.is_finite() else None


def _number(value: Any) -> float | None:
    amount = _decimal(value.strip().replace(",", "") if isinstance(value, str) else value)
    return float(amount) if amount is not None else None


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
    return read_datetime(value)
