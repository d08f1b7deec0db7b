"""SOQL statements checked against the schema, compiled to predicates and run against a table.

Queries filtered or ordered by SystemModstamp (the incremental-sync shape) are served from the
table's (SystemModstamp, Id) index, so a page of an incremental sync never scans the table.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import itemgetter
from typing import Any

from connectors.salesforce.sandbox.errors import SalesforceError, bad_request
from connectors.salesforce.sandbox.ids import normalize_id
from connectors.salesforce.sandbox.schema import STANDARD_SCHEMA, FieldDef, FieldType, Schema, SObjectType
from connectors.salesforce.sandbox.soql import (
    Comparison,
    Condition,
    FieldRef,
    Junction,
    Literal,
    LiteralKind,
    Membership,
    SelectStatement,
    SoqlSyntaxError,
    error_message,
    parse,
)
from connectors.salesforce.sandbox.store import Bound, Row, SObjectTable

Predicate = Callable[[Row], bool]

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LITERAL_KINDS = {
    FieldType.DATETIME: LiteralKind.DATETIME,
    FieldType.DATE: LiteralKind.DATE,
    FieldType.BOOLEAN: LiteralKind.BOOLEAN,
    FieldType.DOUBLE: LiteralKind.NUMBER,
    FieldType.CURRENCY: LiteralKind.NUMBER,
    FieldType.PERCENT: LiteralKind.NUMBER,
    FieldType.INT: LiteralKind.NUMBER,
}
_TYPE_NAMES = {FieldType.DATETIME: "dateTime", FieldType.INT: "integer", FieldType.CURRENCY: "double"}


@dataclass(frozen=True)
class SortKey:
    position: int
    descending: bool
    nulls_last: bool = False
    case_insensitive: bool = False
    never_null: bool = False


class Index(StrEnum):
    ID = "id"
    MODSTAMP = "systemmodstamp"


@dataclass(frozen=True)
class CompiledQuery:
    sobject: SObjectType
    columns: tuple[tuple[str, int], ...]  # (field name as described, row position)
    index: Index  # where the candidate rows come from, in that index's order
    low: Bound | None  # bounds on the index's field
    high: Bound | None
    residual: Predicate | None  # what the index bounds do not already decide
    order_by: tuple[SortKey, ...]
    limit: int | None


# Salesforce's default limit on a SOQL statement's length (help article 000386440; the SOQL and SOSL
# limits cheat sheet). The message is the one Salesforce gave when the limit was 20,000 characters.
MAX_SOQL_CHARS = 100_000


def compile_query(text: str, schema: Schema = STANDARD_SCHEMA) -> CompiledQuery:
    """Raises SalesforceError: MALFORMED_QUERY, INVALID_TYPE or INVALID_FIELD, as Salesforce does."""
    if len(text) > MAX_SOQL_CHARS:
        raise bad_request("MALFORMED_QUERY", f"SOQL statements cannot be longer than {MAX_SOQL_CHARS} characters")
    try:
        statement = parse(text)
    except SoqlSyntaxError as problem:
        raise bad_request("MALFORMED_QUERY", error_message(text, problem.position, problem.detail)) from None
    return _Binder(text, statement, schema).compile()


class _Binder:
    def __init__(self, text: str, statement: SelectStatement, schema: Schema) -> None:
        self.text = text
        self.statement = statement
        sobject = schema.resolve(statement.sobject.name)
        if sobject is None:
            raise self.error(
                "INVALID_TYPE",
                statement.sobject.position,
                f"sObject type '{statement.sobject.name}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL or the "
                "describe call for the appropriate names.",
            )
        self.sobject = sobject

    def error(self, error_code: str, position: int, detail: str) -> SalesforceError:
        return bad_request(error_code, error_message(self.text, position, detail))

    def field(self, name: str, position: int) -> FieldDef:
        definition = self.sobject.field(name)
        if definition is None:
            raise self.error(
                "INVALID_FIELD",
                position,
                f"No such column '{name}' on entity '{self.sobject.name}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
                "describe call for the appropriate names.",
            )
        return definition

    def filterable_field(self, ref: FieldRef, use: str) -> FieldDef:
        """The field `ref` names, when it may be used to `use` ("sorted", "filtered") a query."""
        definition = self.field(ref.name, ref.position)
        if not definition.filterable:
            raise self.error(
                "INVALID_FIELD", ref.position, f"field '{definition.name}' can not be {use} in a query call"
            )
        return definition

    def compile(self) -> CompiledQuery:
        statement = self.statement
        columns: list[tuple[str, int]] = []
        for ref in statement.fields:
            definition = self.field(ref.name, ref.position)
            if any(name == definition.name for name, _ in columns):
                raise self.error("MALFORMED_QUERY", ref.position, f"duplicate field selected: {definition.name}")
            columns.append((definition.name, self.sobject.position(definition.name)))
        order_by = []
        for item in statement.order_by:
            definition = self.filterable_field(item.field, "sorted")
            order_by.append(
                SortKey(
                    self.sobject.position(definition.name),
                    item.descending,
                    item.nulls_last,
                    case_insensitive=_case_folded(definition),
                    never_null=definition.system,
                )
            )
        index, low, high, residual = self.where(statement.where, tuple(order_by))
        return CompiledQuery(self.sobject, tuple(columns), index, low, high, residual, tuple(order_by), statement.limit)

    def where(
        self, condition: Condition | None, order_by: tuple[SortKey, ...]
    ) -> tuple[Index, Bound | None, Bound | None, Predicate | None]:
        """Pick the index to read (SystemModstamp when the query bounds or orders by it, else Id),
        turn the conditions on its field into bounds, and compile the rest into a predicate."""
        conjuncts: tuple[Condition, ...] = ()
        if isinstance(condition, Junction) and condition.operator == "AND":
            conjuncts = condition.operands
        elif condition is not None:
            conjuncts = (condition,)
        compiled = [(part, self.condition(part)) for part in conjuncts]  # validates every part
        ordered_by_modstamp = bool(order_by) and order_by[0].position == self.sobject.modstamp_at
        if ordered_by_modstamp or any(_bounds(part, Index.MODSTAMP) for part, _ in compiled):
            index = Index.MODSTAMP
        else:
            index = Index.ID
        lows: list[Bound] = []
        highs: list[Bound] = []
        rest: list[Predicate] = []
        for part, predicate in compiled:
            if _bounds(part, index):
                assert isinstance(part, Comparison)
                value = self.literal(self.field(part.field.name, part.field.position), part.value)
                if part.operator in ("=", ">", ">="):
                    lows.append((value, part.operator != ">"))
                if part.operator in ("=", "<", "<="):
                    highs.append((value, part.operator != "<"))
            else:
                rest.append(predicate)
        # The strictest bound wins; at one value an exclusive bound is stricter than an inclusive one.
        low = max(lows, key=lambda bound: (bound[0], not bound[1])) if lows else None
        high = min(highs, key=lambda bound: (bound[0], bound[1])) if highs else None
        return index, low, high, _all_of(rest) if rest else None

    def condition(self, condition: Condition) -> Predicate:
        if isinstance(condition, Junction):
            parts = [self.condition(operand) for operand in condition.operands]
            return _all_of(parts) if condition.operator == "AND" else _any_of(parts)
        definition = self.filterable_field(condition.field, "filtered")
        position = self.sobject.position(definition.name)
        if isinstance(condition, Membership):
            values = [self.literal(definition, literal) for literal in condition.values]
            return _membership(position, definition, values, condition.negated)
        if condition.value.kind is LiteralKind.NULL:
            if condition.operator not in ("=", "!="):
                raise self.error("MALFORMED_QUERY", condition.value.position, "null can only be compared with = or !=")
            return _is_null(position) if condition.operator == "=" else _is_not_null(position)
        if definition.type is FieldType.BOOLEAN and condition.operator not in ("=", "!="):
            raise self.error(
                "INVALID_QUERY_FILTER_OPERATOR",
                condition.field.position,
                f"invalid operator on boolean field: {definition.name}",
            )
        value = self.literal(definition, condition.value)
        return _comparison(position, definition, condition.operator, value)

    def literal(self, definition: FieldDef, literal: Literal) -> Any:
        """The literal as the field stores it, or INVALID_FIELD when its type does not fit."""
        if literal.kind is LiteralKind.NULL:
            return None
        expected = _LITERAL_KINDS.get(definition.type, LiteralKind.STRING)
        if literal.kind is not expected:
            quoting = "be enclosed in quotes" if expected is LiteralKind.STRING else "not be enclosed in quotes"
            type_name = _TYPE_NAMES.get(definition.type, expected.value)
            raise self.error(
                "INVALID_FIELD",
                literal.position,
                f"value of filter criterion for field '{definition.name}' must be of type {type_name} "
                f"and should {quoting}",
            )
        if definition.type in (FieldType.ID, FieldType.REFERENCE):
            canonical = normalize_id(literal.value)
            if canonical is None:
                raise self.error(
                    "INVALID_QUERY_FILTER_OPERATOR", literal.position, f"invalid ID field: {literal.value}"
                )
            return canonical
        if definition.is_text:
            return literal.value.lower()
        return literal.value


def _bounds(condition: Condition, index: Index) -> bool:
    """Whether `condition` is a range condition an index on `index`'s field can serve."""
    return (
        isinstance(condition, Comparison)
        and condition.field.name.lower() == index.value
        and condition.operator != "!="
        and condition.value.kind is (LiteralKind.DATETIME if index is Index.MODSTAMP else LiteralKind.STRING)
    )


def _case_folded(definition: FieldDef) -> bool:
    # SOQL compares text case-insensitively; ids are canonicalized instead.
    return definition.is_text and definition.type not in (FieldType.ID, FieldType.REFERENCE)


def _comparison(position: int, definition: FieldDef, op: str, value: Any) -> Predicate:
    compare = _OPERATORS[op]
    # Unlike SQL, SOQL's != matches rows where the field is null.
    null_matches = op == "!="
    if _case_folded(definition):

        def folded(row: Row) -> bool:
            field = row[position]
            return null_matches if field is None else compare(field.lower(), value)

        return folded

    def exact(row: Row) -> bool:
        field = row[position]
        return null_matches if field is None else compare(field, value)

    return exact


def _membership(position: int, definition: FieldDef, values: list[Any], negated: bool) -> Predicate:
    wanted = {value for value in values if value is not None}
    null_result = (None in values) != negated
    fold = _case_folded(definition)

    def member(row: Row) -> bool:
        field = row[position]
        if field is None:
            return null_result
        return ((field.lower() if fold else field) in wanted) != negated

    return member


def _is_null(position: int) -> Predicate:
    return lambda row: row[position] is None


def _is_not_null(position: int) -> Predicate:
    return lambda row: row[position] is not None


def _all_of(parts: Sequence[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    return lambda row: all(part(row) for part in parts)


def _any_of(parts: Sequence[Predicate]) -> Predicate:
    return lambda row: any(part(row) for part in parts)


# ---- execution --------------------------------------------------------------------------------

_BY_ID = SortKey(0, descending=False, never_null=True)


def run(table: SObjectTable, query: CompiledQuery, *, include_deleted: bool) -> list[Row]:
    """Every row the query selects, in its order. `include_deleted` is queryAll."""
    sobject = query.sobject
    by_modstamp = SortKey(sobject.modstamp_at, descending=False, never_null=True)
    if query.index is Index.MODSTAMP:
        rows = table.modstamp_range(query.low, query.high)
        native: tuple[SortKey, ...] = (by_modstamp, _BY_ID)
    else:
        rows = table.id_range(query.low, query.high)
        native = (_BY_ID,)
    rows = _filtered(rows, query.residual, None if include_deleted else sobject.deleted_at)
    _sort(rows, query.order_by or (_BY_ID,), native)
    return rows if query.limit is None else rows[: query.limit]


def _filtered(rows: list[Row], predicate: Predicate | None, deleted_at: int | None) -> list[Row]:
    if deleted_at is not None and predicate is not None:
        return [row for row in rows if not row[deleted_at] and predicate(row)]
    if deleted_at is not None:
        return [row for row in rows if not row[deleted_at]]
    if predicate is not None:
        return [row for row in rows if predicate(row)]
    return rows


def _sort(rows: list[Row], order: tuple[SortKey, ...], native: tuple[SortKey, ...]) -> None:
    """Sort in place unless the rows already come in the wanted order (a prefix of `native`,
    or its exact reverse)."""
    if _same_keys(order, native[: len(order)], reverse=False):
        return
    if _same_keys(order, native[: len(order)], reverse=True):
        rows.reverse()
        return
    # Stable sorts from the last key to the first give a multi-key order with per-key directions.
    for key in reversed(order):
        rows.sort(key=_sort_key(key), reverse=key.descending)


def _same_keys(order: tuple[SortKey, ...], native: tuple[SortKey, ...], *, reverse: bool) -> bool:
    return len(order) == len(native) and all(
        wanted.position == have.position and wanted.descending == (have.descending != reverse)
        for wanted, have in zip(order, native, strict=True)
    )


def _sort_key(key: SortKey) -> Callable[[Row], Any]:
    position = key.position
    if key.never_null and not key.case_insensitive:
        return itemgetter(position)
    # Null rows get a rank below or above every value; `reverse` flips ranks too.
    null_rank = (2,) if key.nulls_last != key.descending else (0,)
    if key.case_insensitive:
        return lambda row: null_rank if row[position] is None else (1, row[position].lower())
    return lambda row: null_rank if row[position] is None else (1, row[position])


# ---- rendering --------------------------------------------------------------------------------


def record_renderer(
    sobject: SObjectType, columns: Sequence[tuple[str, int]], api_root: str
) -> Callable[[Row], dict[str, Any]]:
    """Renders a row as a query record: `attributes` first, then the selected fields in order."""
    names = tuple(name for name, _ in columns)
    positions = [position for _, position in columns]
    values = itemgetter(*positions) if len(positions) > 1 else (lambda row: (row[positions[0]],))
    url_prefix = f"{api_root}/sobjects/{sobject.name}/"
    type_name = sobject.name

    def render(row: Row) -> dict[str, Any]:
        record: dict[str, Any] = {"attributes": {"type": type_name, "url": url_prefix + row[0]}}
        record.update(zip(names, values(row), strict=True))
        return record

    return render
