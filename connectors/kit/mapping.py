"""Declarative mappings between a provider's raw record and a common model, both ways.

A mapping is a table: common member name -> where the value lives in the raw record.
Types come from the common model, so a mapping never restates them. Writing goes back through the
same table: a `Path` is written where it is read, a `Computed` only when it says how.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from connectors.kit.convert import iso_millis, parse_datetime, to_scalar
from connectors.kit.errors import BadInput
from connectors.kit.jsonpath import dig, path_parts
from connectors.kit.models import (
    CommonModel,
    CurrencyCode,
    Embedded,
    Money,
    ScalarType,
    Struct,
    currency_exponent,
    graphql_name,
    minor_to_common,
)

Encoder = Callable[[Any], Any]


def default_encode(value: Any) -> Any:
    """Common values as JSON providers take them: instants in ISO 8601 UTC with milliseconds."""
    if isinstance(value, datetime):
        return iso_millis(value if value.tzinfo else value.replace(tzinfo=UTC))
    return value


def date_only(value: Any) -> Any:
    """For provider fields that hold a calendar date (Salesforce CloseDate): the UTC date of the instant."""
    moment = parse_datetime(value) if value is not None else None
    return moment.astimezone(UTC).date().isoformat() if moment else None


@dataclass(frozen=True)
class Path:
    """A value at a dotted path in the raw record, e.g. `Path("properties.email")`; written back to the
    same path unless `writable` is False (system fields, derived lookups)."""

    path: str
    writable: bool = True
    encode: Encoder = default_encode

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        value: Any = raw
        for part in path_parts(self.path):
            if value.__class__ is not dict:
                return None
            value = value.get(part)
        return to_scalar(value, target) if target is not None else value


@dataclass(frozen=True)
class Computed:
    """A value computed from the whole raw record, for the rare field no path can express. `write`, when
    given, turns a common value back into provider fields ({path: value}); without it the member is read-only."""

    compute: Callable[[dict[str, Any]], Any]
    write: Callable[[Any], dict[str, Any]] | None = None

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        value = self.compute(raw)
        return to_scalar(value, target) if target is not None else value


@dataclass(frozen=True)
class Constant:
    """The same value for every record of a stream, e.g. `is_lead` on a stream of leads."""

    value: Any

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        return self.value


@dataclass(frozen=True)
class Ids:
    """Remote ids of related records: a list of objects holding an id under `key`, at `path`."""

    path: str
    key: str = "id"
    first: bool = False

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        items = dig(raw, self.path) or []
        # dict.fromkeys keeps order and drops repeats (HubSpot lists one id per association label).
        ids = list(dict.fromkeys(str(i[self.key]) for i in items if isinstance(i, dict) and i.get(self.key)))
        if self.first:
            return ids[0] if ids else None
        return ids


@dataclass(frozen=True)
class Label:
    """A provider code at `path` shown by its label, from a table the stream reads at run time (its
    `labels`, e.g. HubSpot deal stage ids -> stage names). A code the table lacks reads as None, never a
    guess; the code itself stays readable through a plain `Path` member on the same path.

    Written by label: `resolve_labels` turns a label into its code for the `Path` member on the same path."""

    path: str
    table: str

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        raise TypeError("a Label is read with its table: ModelMapping.to_common(raw, labels)")

    def read_labelled(self, raw: dict[str, Any], labels: LabelTables) -> Any:
        code = Path(self.path).read(raw, None)
        if code is None:
            return None
        return labels.get(self.table, {}).get(str(code))


# table name -> provider code -> label
LabelTables = Mapping[str, Mapping[str, str]]

# Keys of an account-facts table (a `Labels` the stream reads, e.g. "account"): the account's currency, for
# amounts whose record names none, and the currencies its records may be kept in, space-separated (HubSpot's
# company and additional currencies; a Salesforce org's active currencies, its one currency when it has one).
ACCOUNT_CURRENCY = "currency"
ACCOUNT_CURRENCIES = "currencies"


class KeptCurrency(str):
    """The currency code an amount of a record is kept in, with the codes the account lets a write move it to
    (`choices`; None when the account did not say, and the provider decides). A `str`, so that a plain code
    serves wherever the account's currencies are not known (`Draft.currencies`)."""

    choices: frozenset[str] | None

    def __new__(cls, code: str, choices: frozenset[str] | None = None) -> KeptCurrency:
        kept = super().__new__(cls, code)
        kept.choices = choices
        return kept


def exact_json_number(amount: Decimal) -> float:
    """An amount as a JSON number that reads back as exactly `amount` (a double's shortest form, as the JSON
    encoder writes it). An amount a double cannot hold (more than about 15 significant digits) is refused."""
    number = float(amount)
    if Decimal(repr(number)) != amount:
        raise ValueError(f"{format(amount, 'f')} has more digits than the provider keeps exactly")
    return number


def _padded(amount: Decimal, currency: str) -> Decimal:
    """An amount with fewer decimals than its currency has ("1234.5" USD) written with them all ("1234.50"),
    which changes no value; one with more is left exactly as the provider sent it."""
    try:
        padded = amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)))
    except InvalidOperation:  # more digits than the decimal context carries: left as it is
        return amount
    return padded if padded == amount else amount


@dataclass(frozen=True)
class MoneyAt:
    """An amount at `amount` with its currency code at `currency` (a path in the same record), as exact
    `Money`. `minor_units`: the provider sends integers in the currency's minor units (Stripe: 1050 USD is
    10.50); otherwise the amount is in major units, as a number or decimal text (HubSpot "1234.5"), and reads
    with at least its currency's decimals ("1234.50"). Where the record names no currency, the account's is
    taken from `currency_table` (a table of account facts the stream reads, key "currency"); with neither
    the amount reads as None: never a guessed currency.

    Written back as the provider takes it (`encode_amount` turns a Decimal in major units into the provider's
    value; minor units are integers). The currency is written to its path only when it differs from the one
    the record is in, the path is writable and the account allows that currency (`ACCOUNT_CURRENCIES`); a
    different currency that cannot be written is refused, naming the one the record is kept in."""

    amount: str
    currency: str | None = None
    minor_units: bool = False
    currency_table: str | None = None
    writable: bool = True
    currency_writable: bool = False
    encode_amount: Callable[[Decimal], Any] = lambda amount: format(amount, "f")

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        return self.read_labelled(raw, {})

    def currency_of(self, raw: dict[str, Any], labels: LabelTables) -> str | None:
        code = dig(raw, self.currency) if self.currency else None
        if not code and self.currency_table:
            code = labels.get(self.currency_table, {}).get(ACCOUNT_CURRENCY)
        return code.upper() if isinstance(code, str) and code else None

    def kept_currency(self, raw: dict[str, Any], labels: LabelTables) -> KeptCurrency | None:
        """The currency the record's amount is kept in, with the account's currencies a write may move it to."""
        code = self.currency_of(raw, labels)
        if code is None:
            return None
        listed = labels.get(self.currency_table, {}).get(ACCOUNT_CURRENCIES) if self.currency_table else None
        return KeptCurrency(code, frozenset(listed.upper().split()) if listed else None)

    def read_labelled(self, raw: dict[str, Any], labels: LabelTables) -> Any:
        value = dig(raw, self.amount)
        currency = self.currency_of(raw, labels)
        if value is None or value == "" or isinstance(value, bool) or currency is None:
            return None
        if self.minor_units:
            return minor_to_common(value, currency) if isinstance(value, int) else None
        try:
            amount = Decimal(value if isinstance(value, str) else repr(value))
            return Money(_padded(amount, currency), currency).to_common()
        except (InvalidOperation, ValueError):
            return None  # not an amount: `raw` keeps what the provider sent

    def write(self, value: Any, current_currency: str | None, field: str) -> dict[str, Any]:
        """The provider fields for a Money value (its common dict), given the currency the record is in
        (None when not known, e.g. a new record on an account whose currency was not read; a `KeptCurrency`
        also says which currencies the account allows)."""
        if not self.writable:
            raise BadInput(f"{field} is read-only at this provider", field=field)
        if value is None:
            return {self.amount: None}
        money = Money.from_common(value)
        if not money.is_precise_enough:
            raise BadInput(
                f"{field} {format(money.amount, 'f')} has more decimals than {money.currency} allows "
                f"({money.exponent})",
                field=field,
            )
        try:
            encoded = money.to_minor() if self.minor_units else self.encode_amount(money.amount)
        except ValueError as error:
            raise BadInput(f"{field} {error}", field=field) from error
        fields: dict[str, Any] = {self.amount: encoded}
        if current_currency is None or money.currency != current_currency:
            choices = current_currency.choices if isinstance(current_currency, KeptCurrency) else None
            if self.currency and self.currency_writable and (choices is None or money.currency in choices):
                fields[self.currency] = money.currency
            elif current_currency is not None:
                hint = (
                    f"this account's currencies are {', '.join(sorted(choices))}"
                    if self.currency_writable and choices and len(choices) > 1
                    else "convert it first"
                )
                raise BadInput(
                    f"{field} is kept in {current_currency} here; an amount in {money.currency} cannot be "
                    f"written to it ({hint})",
                    field=field,
                    currency=str(current_currency),
                )
        return fields


@dataclass(frozen=True)
class EachOf:
    """Embedded values (`Embedded` fields: an invoice's lines) read from the list at `path`, each item mapped
    through `members` (struct field name -> source read in the item). Items that are not objects are skipped.
    Written back the same way: each item's members through their sources, as the item's provider fields."""

    path: str
    members: Mapping[str, Path | Computed | Constant | MoneyAt]

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        raise TypeError("an EachOf is read with its struct: ModelMapping.to_common")

    def read_items(self, raw: dict[str, Any], struct: Struct, labels: LabelTables) -> list[dict[str, Any]]:
        items = Path(self.path).read(raw, None)
        if not isinstance(items, list):
            return []
        fields = tuple((f.name, self.members.get(f.name), f.scalar, f.type is CurrencyCode) for f in struct.fields)
        mapped = []
        for item in items:
            if item.__class__ is not dict:
                continue
            values: dict[str, Any] = {}
            for name, source, target, is_currency in fields:
                if source is None:
                    values[name] = None
                elif isinstance(source, MoneyAt):
                    values[name] = source.read_labelled(item, labels)
                else:
                    value = source.read(item, target)
                    values[name] = value.upper() if is_currency and isinstance(value, str) else value
            mapped.append(values)
        return mapped

    def write_items(self, items: list[dict[str, Any]] | None, field: str) -> list[dict[str, Any]] | None:
        """The provider's list for written embedded values (stored form: member -> value): per item, its
        provider fields. `field` names the list in errors (`lines`), an item's member as `lines[1].amount`."""
        if items is None:
            return None
        return [self._write_item(item, f"{field}[{n}]") for n, item in enumerate(items)]

    def _write_item(self, item: Mapping[str, Any], at: str) -> dict[str, Any]:
        provider: dict[str, Any] = {}
        for name, value in item.items():
            source = self.members.get(name)
            member = f"{at}.{graphql_name(name)}"
            if isinstance(source, Path) and source.writable:
                provider[source.path] = None if value is None else source.encode(value)
            elif isinstance(source, MoneyAt):
                # An item names its own currency (a line in JPY on a USD account is the provider's to refuse).
                provider.update(source.write(value, None, member))
            elif isinstance(source, Computed) and source.write is not None:
                provider.update(source.write(value))
            elif isinstance(source, Constant) and value in (None, source.value):
                continue
            else:
                raise BadInput(f"{member} cannot be written to this provider", field=member)
        return provider


Source = Path | Computed | Constant | Ids | Label | MoneyAt | EachOf


def remote_ids(value: Any) -> list[str]:
    """A relation's value (one remote id, a list of them or None) as a list."""
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


@dataclass(frozen=True)
class ModelMapping:
    model: CommonModel
    members: Mapping[str, Source]

    def __post_init__(self) -> None:
        unknown = set(self.members) - self.model.member_names
        if unknown:
            raise ValueError(f"mapping to {self.model.name} names unknown members {sorted(unknown)}")
        for field in self.model.fields:
            source = self.members.get(field.name)
            if isinstance(field.type, Embedded) != isinstance(source, EachOf) and source is not None:
                raise ValueError(f"{self.model.name}.{field.name}: embedded values are mapped with EachOf, only they")
            if isinstance(source, EachOf) and isinstance(field.type, Embedded):
                extra = set(source.members) - {f.name for f in field.type.struct.fields}
                if extra:
                    raise ValueError(f"{self.model.name}.{field.name} has no members {sorted(extra)}")
            if isinstance(source, MoneyAt) != (field.type is Money) and source is not None:
                raise ValueError(f"{self.model.name}.{field.name}: Money is mapped with MoneyAt, only Money is")

    @cached_property
    def _readers(self) -> tuple[tuple[str, Source | None, Any, Any], ...]:
        """(member, source, scalar type or embedded struct, value when absent), in the model's order."""
        fields = tuple(
            (f.name, self.members.get(f.name), f.type.struct if isinstance(f.type, Embedded) else f.scalar, f.absent)
            for f in self.model.fields
        )
        relations = tuple(
            (r.name, self.members.get(r.name), None, () if r.many else None) for r in self.model.relations
        )
        return fields + relations

    def to_common(self, raw: dict[str, Any], labels: LabelTables | None = None) -> dict[str, Any]:
        """`labels`: the stream's label tables, for `Label` members and account currencies (read as None
        without them)."""
        common: dict[str, Any] = {}
        for name, source, target, absent in self._readers:
            if source is None:
                value = None
            elif isinstance(source, Label | MoneyAt):
                value = source.read_labelled(raw, labels or {})
            elif isinstance(source, EachOf):
                value = source.read_items(raw, target, labels or {})
            else:
                value = source.read(raw, target)
            common[name] = (list(absent) if absent == () else absent) if value is None else value
        for name in self._currency_members:
            if isinstance(common[name], str):
                common[name] = common[name].upper()  # Stripe sends "usd"; the model keeps ISO 4217's case
        return common

    @cached_property
    def _currency_members(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.model.fields if f.type is CurrencyCode and f.name in self.members)

    @cached_property
    def label_tables(self) -> frozenset[str]:
        """The label tables this mapping reads (the stream must provide them): labels and account currencies."""
        tables = {s.table for s in self.members.values() if isinstance(s, Label)}
        tables |= {s.currency_table for s in self._money_sources().values() if s.currency_table}
        return frozenset(tables)

    def _money_sources(self) -> dict[str, MoneyAt]:
        return {name: source for name, source in self.members.items() if isinstance(source, MoneyAt)}

    def currencies(self, raw: dict[str, Any] | None, labels: LabelTables) -> dict[str, str]:
        """The currency each Money member of a record is kept in (its own, else the account's), as a
        `KeptCurrency` that also names the currencies the account allows: what a write of that member must
        match or change to. `raw` None: a record not made yet (the account's)."""
        found: dict[str, str] = {}
        for name, source in self._money_sources().items():
            kept = source.kept_currency(raw or {}, labels)
            if kept is not None:
                found[name] = kept
        return found

    def resolve_labels(self, values: Mapping[str, Any], labels: LabelTables) -> dict[str, Any]:
        """Values with each `Label` member written by label replaced by its code, set on the member that
        holds the code (the writable `Path` on the same path): `stage: "Closed Won"` -> `remote_stage:
        "closedwon"`. An unknown or ambiguous label, or one that contradicts the code set beside it, is refused."""
        resolved = dict(values)
        for name, source in self.members.items():
            if not isinstance(source, Label) or name not in values:
                continue
            label = resolved.pop(name)
            holder = self._code_member(source)
            if holder is None:
                raise BadInput(f"{self.field_name(name)} cannot be written to this provider's {self.model.name}")
            code = None if label is None else self._code_for(name, holder, source, str(label), labels)
            if holder in values and values[holder] != code:
                raise BadInput(
                    f"{self.field_name(name)} {label!r} contradicts {self.field_name(holder)} "
                    f"{values[holder]!r} set in the same input",
                    field=self.field_name(name),
                )
            resolved[holder] = code
        return resolved

    def _path_of(self, member: str) -> str | None:
        source = self.members.get(member)
        return source.path if isinstance(source, Path) else None

    def _code_member(self, label: Label) -> str | None:
        return next(
            (
                name
                for name, source in self.members.items()
                if isinstance(source, Path) and source.writable and source.path == label.path
            ),
            None,
        )

    def _code_for(self, name: str, holder: str, source: Label, label: str, labels: LabelTables) -> str:
        table = labels.get(source.table, {})
        codes = [code for code, text in table.items() if text == label]
        if len(codes) == 1:
            return codes[0]
        if codes:
            problem = f"{label!r} names several: {', '.join(sorted(codes))}"
        else:
            known = ", ".join(repr(text) for text in dict.fromkeys(table.values()))
            problem = f"{label!r} is not one of this account's: {known or '(none found)'}"
        raise BadInput(
            f"{self.field_name(name)} {problem}; or set {self.field_name(holder)} to the provider's own value",
            field=self.field_name(name),
        )

    def provider_values(
        self,
        values: Mapping[str, Any],
        *,
        handled: frozenset[str] = frozenset(),
        currencies: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The provider fields ({dotted path: value}) for the common members a caller set.

        None clears a field. Members in `handled` are written by the connector's writer itself (associations,
        polymorphic lookups). A member the mapping cannot write is refused, never silently dropped.
        `currencies`: the currency each Money member of the record is kept in (`Draft.currencies`).
        """
        provider: dict[str, Any] = {}
        if any(isinstance(self.members.get(name), Label) for name in values):
            # Callers with the stream's label tables resolve labels first; without them no label is known.
            values = self.resolve_labels(values, {})
        for name, value in values.items():
            if name in handled:
                continue
            source = self.members.get(name)
            if isinstance(source, Constant) and source.value is not None:
                if value is not None and value != source.value:
                    raise BadInput(
                        f"{self.field_name(name)} is always {source.value!r} for this kind of {self.model.name}",
                        field=self.field_name(name),
                    )
                continue
            if isinstance(source, Path) and source.writable:
                encoded = None if value is None else source.encode(value)
                if source.path in provider and provider[source.path] != encoded:
                    # Two members read from the same field (Salesforce stage and remoteStage): they must agree.
                    other = next(
                        m for m in values if m != name and getattr(self.members.get(m), "path", None) == source.path
                    )
                    raise BadInput(
                        f"{self.field_name(name)} contradicts {self.field_name(other)} set in the same input",
                        field=self.field_name(name),
                    )
                provider[source.path] = encoded
            elif isinstance(source, Computed) and source.write is not None:
                provider.update(source.write(value))
            elif isinstance(source, MoneyAt):
                provider.update(source.write(value, (currencies or {}).get(name), self.field_name(name)))
            elif isinstance(source, EachOf):
                provider[source.path] = source.write_items(value, self.field_name(name))
            else:
                raise BadInput(
                    f"{self.field_name(name)} cannot be written to this provider's {self.model.name}",
                    field=self.field_name(name),
                )
        return provider

    def accepts(self, values: Mapping[str, Any]) -> bool:
        """Whether a record with these values belongs to this mapping's stream: every constant agrees
        (a Salesforce Contact with isLead true is a Lead)."""
        return all(
            values.get(name) in (None, source.value)
            for name, source in self.members.items()
            # Constant(None) means "this stream has no such field", which says nothing about where a record goes.
            if isinstance(source, Constant) and source.value is not None
        )

    def field_name(self, member: str) -> str:
        """The input field a caller set a member through, as GraphQL spells it."""
        return graphql_name(self.model.input_name(member))

    def member_for(self, provider_field: str) -> str | None:
        """The common member read from a provider field, for naming the field in a provider's error."""
        for name, source in self.members.items():
            path = source.amount if isinstance(source, MoneyAt) else getattr(source, "path", None)
            if isinstance(source, Path | MoneyAt) and path and path.rsplit(".", 1)[-1] == provider_field:
                return name
        return None

    def merge_raw_fields(self, fields: dict[str, Any], raw_fields: Mapping[str, Any]) -> dict[str, Any]:
        """Provider-native fields over the mapped ones (keyed by the provider's field name); a raw field that
        contradicts a common value set in the same input is refused rather than silently winning."""
        for name, value in raw_fields.items():
            if name in fields and fields[name] != value:
                member = self.member_for(name)
                raise BadInput(
                    f"rawFields.{name} contradicts {self.field_name(member) if member else name} set in the input",
                    field=f"rawFields.{name}",
                )
            fields[name] = value
        return fields
