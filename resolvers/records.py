"""Reading the record cache: filtered, ordered, keyset-paginated lists and single lookups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from sqlalchemy import Select, String, bindparam, cast, exists, func, literal, select
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from connectors.kit.convert import parse_datetime
from connectors.kit.errors import BadInput, NotFound
from connectors.kit.field_mappings import CustomFieldType
from resolvers.ids import Position
from resolvers.paging import (
    MAX_PAGE,
    Bounds,
    Keyset,
    PageOf,
    PageRequest,
    decode_bounds,
    page,
    probes,
    settle,
)
from sync.storage.tables import RECORD_COLUMNS, common_text, connections, end_users, record_custom_values, records
from sync.tenancy.field_mappings import list_definitions

if TYPE_CHECKING:
    from resolvers.context import Caller

__all__ = [
    "MAX_PAGE",
    "PageOf",
    "PageRequest",
    "RecordQuery",
    "RecordRow",
    "StringMatch",
    "check_page_size",
    "get_record",
    "get_records",
    "list_records",
]


class RecordRow(NamedTuple):
    """A cached record as read from the database (a named tuple: pages build a hundred of them)."""

    id: int
    connection_id: uuid.UUID
    stream: str
    model: str | None
    remote_id: str
    common: dict[str, Any] | None
    raw: str
    remote_created_at: datetime | None
    remote_updated_at: datetime | None
    deleted_at: datetime | None
    # Its custom field values ({key: value or null}); None when the platform defines none on its model.
    custom: dict[str, Any] | None = None


@dataclass(frozen=True)
class StringMatch:
    """How a filter matches a member of a record's common fields: text equal to `eq` (regardless of case
    when `ignore_case`) or containing `contains` (case-insensitive), a list holding `holds` exactly, a
    boolean equal to `flag`."""

    eq: str | None = None
    contains: str | None = None
    holds: str | None = None
    flag: bool | None = None
    ignore_case: bool = False


@dataclass(frozen=True)
class CustomMatch:
    """A custom field filter as the caller wrote it: text equal to `eq`, containing `contains`, or one of
    `among` (STRING, STRING_LIST, BOOLEAN as "true"/"false"); above `gt` or below `lt` (INT, FLOAT, MONEY's
    amount, DATETIME). Checked against the platform's definitions when the list is read."""

    key: str
    eq: str | None = None
    contains: str | None = None
    among: tuple[str, ...] | None = None
    gt: Any = None
    lt: Any = None


# Which column of `record_custom_values` a custom field type is filtered on.
_TEXT_TYPES = (CustomFieldType.STRING, CustomFieldType.STRING_LIST, CustomFieldType.BOOLEAN)
_NUMBER_TYPES = (CustomFieldType.INT, CustomFieldType.FLOAT, CustomFieldType.MONEY)
MAX_IN_VALUES = 100
# Each condition is a semi-join on the custom value index: a list of thousands would be as many subqueries.
MAX_CUSTOM_CONDITIONS = 10
# (operator, column, bound value) of one checked custom field condition.
CustomCondition = tuple[str, str, str, Any]


def check_custom_matches(
    model: str, matches: tuple[CustomMatch, ...], defined: dict[str, CustomFieldType]
) -> list[CustomCondition]:
    """The conditions `matches` stand for, as (key, operator, column, value); a key the platform did not
    define on the model, an operator its type has not or an operand of the wrong type is refused."""
    if len(matches) > MAX_CUSTOM_CONDITIONS:
        raise BadInput(
            f"filter.customFields takes at most {MAX_CUSTOM_CONDITIONS} conditions, got {len(matches)}",
            field="filter.customFields",
        )
    conditions: list[CustomCondition] = []
    for number, match in enumerate(matches):
        where = f"filter.customFields[{number}]"
        wanted = defined.get(match.key)
        if wanted is None:
            known = ", ".join(sorted(defined)) or "none"
            raise BadInput(
                f"{model} has no custom field {match.key!r} (defined: {known})",
                field=f"{where}.key",
                defined=sorted(defined),
            )
        text_ops = {"eq": match.eq, "contains": match.contains, "in": match.among}
        order_ops = {"gt": match.gt, "lt": match.lt}
        used = [op for op, value in (text_ops | order_ops).items() if value is not None]
        if not used:
            raise BadInput(f"a filter on {match.key} needs eq, contains, in, gt or lt", field=where)
        for op in used:
            conditions.append((match.key, *_condition(match.key, wanted, op, (text_ops | order_ops)[op], where)))
    return conditions


def _condition(key: str, wanted: CustomFieldType, op: str, operand: Any, where: str) -> tuple[str, str, Any]:
    if op in ("eq", "contains", "in"):
        if wanted not in _TEXT_TYPES:
            raise BadInput(f"{key} is {wanted.value}: filter it with gt or lt", field=f"{where}.{op}")
        if wanted is CustomFieldType.BOOLEAN:
            values = operand if op == "in" else (operand,)
            if op == "contains" or any(value not in ("true", "false") for value in values):
                raise BadInput(f'{key} is BOOLEAN: filter it with eq or in, "true" or "false"', field=f"{where}.{op}")
        if op == "in" and not 1 <= len(operand) <= MAX_IN_VALUES:
            raise BadInput(f"in takes 1 to {MAX_IN_VALUES} values", field=f"{where}.in")
        if op == "contains":
            return op, "text_value", f"%{_escape_like(operand)}%"
        return op, "text_value", list(operand) if op == "in" else operand
    if wanted in _NUMBER_TYPES:
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            raise BadInput(f"{key} is {wanted.value}: {op} takes a number, not {operand!r}", field=f"{where}.{op}")
        return op, "number_value", float(operand)
    if wanted is CustomFieldType.DATETIME:
        try:
            moment = parse_datetime(operand) if isinstance(operand, str) else None
        except ValueError:
            moment = None
        if moment is None:
            raise BadInput(f"{key} is DATETIME: {op} takes an ISO-8601 instant, not {operand!r}", field=f"{where}.{op}")
        return op, "time_value", moment
    raise BadInput(f"{key} is {wanted.value}: filter it with eq, contains or in", field=f"{where}.{op}")


@dataclass(frozen=True)
class RecordQuery:
    model: str | None = None
    stream: str | None = None
    connection_id: uuid.UUID | None = None
    external_user_id: str | None = None
    provider: str | None = None
    updated_after: datetime | None = None
    fields: dict[str, StringMatch] = field(default_factory=dict)
    custom: tuple[CustomMatch, ...] = ()
    # `custom` checked against the platform's definitions (`check_custom_matches`), when it has any.
    custom_conditions: tuple[CustomCondition, ...] = ()
    include_deleted: bool = False
    order: Literal["asc", "desc"] = "desc"

    @property
    def cursor_scope(self) -> str:
        return f"{self.model or self.stream}:{self.order}"


def check_page_size(first: int) -> None:
    """For the lists that are not connections yet: a page of 1 to MAX_PAGE."""
    if not 1 <= first <= MAX_PAGE:
        raise BadInput(f"first must be between 1 and {MAX_PAGE}, got {first}", field="first")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def ensure_connection_owned(caller: Caller, connection_id: uuid.UUID) -> None:
    if await caller.loaders.connection.load(connection_id) is None:
        raise NotFound("no connection with that id", field="connectionId")


# The shape of a page query: which filters it has (not their values), its order, which cursors bound it
# and which way it reads. Pages of one shape run one statement object with bound values, so a request
# neither builds the statement nor hashes it for SQLAlchemy's compiled cache: it only binds.
FilterShape = tuple[
    str,
    bool,
    bool,
    bool,
    bool,
    bool,
    bool,
    bool,
    tuple[tuple[str, bool, bool, bool, bool, bool], ...],
    tuple[tuple[str, str], ...],
]
# A page read (after?, before?, backward?) or a probe of one side: "next"/"previous".
Reading = tuple[bool, bool, bool] | Literal["next", "previous"]

_AFTER: tuple[BindParameter[Any], ...] = (bindparam("after_updated_at"), bindparam("after_id"))
_BEFORE: tuple[BindParameter[Any], ...] = (bindparam("before_updated_at"), bindparam("before_id"))


def _filter_shape(query: RecordQuery, dialect: str) -> FilterShape:
    return (
        dialect,
        query.model is not None,
        query.stream is not None,
        query.include_deleted,
        query.connection_id is not None,
        query.external_user_id is not None,
        query.provider is not None,
        query.updated_after is not None,
        tuple(
            (
                name,
                match.eq is not None,
                match.contains is not None,
                match.holds is not None,
                match.flag is not None,
                match.ignore_case,
            )
            for name, match in query.fields.items()
        ),
        tuple((op, column) for _, op, column, _ in query.custom_conditions),
    )


def _filters(shape: FilterShape) -> list[ColumnElement[bool]]:
    dialect, model, stream, include_deleted, connection, external_user, provider, updated_after, fields, custom = shape
    platform: BindParameter[uuid.UUID] = bindparam("platform_id")
    conditions: list[ColumnElement[bool]] = [records.c.platform_id == platform]
    if model:
        conditions.append(records.c.model == bindparam("model"))
    if stream:
        conditions.append(records.c.stream == bindparam("stream"))
    if not include_deleted:
        conditions.append(records.c.deleted.is_(False))
    if connection:
        conditions.append(records.c.connection_id == bindparam("connection_id"))
    if external_user:
        users = select(end_users.c.id).where(
            end_users.c.platform_id == platform, end_users.c.external_id == bindparam("external_user_id")
        )
        conditions.append(records.c.end_user_id.in_(users))
    if provider:
        of_provider = select(connections.c.id).where(
            connections.c.platform_id == platform, connections.c.provider == bindparam("provider")
        )
        conditions.append(records.c.connection_id.in_(of_provider))
    if updated_after:
        conditions.append(records.c.remote_updated_at > bindparam("updated_after"))
    for name, eq, contains, holds, flag, ignore_case in fields:
        value = common_text(name)
        if eq:
            # The bound value is upper-cased too (`_page_values`).
            conditions.append((func.upper(value) if ignore_case else value) == bindparam(f"{name}_eq"))
        if contains:
            conditions.append(value.ilike(bindparam(f"{name}_contains"), escape="\\"))
        if holds:
            conditions.append(_list_holds(dialect, name))
        if flag:
            conditions.append(records.c.common[name].as_boolean() == bindparam(f"{name}_flag"))
    for number, (op, column) in enumerate(custom):
        conditions.append(records.c.id.in_(_custom_values(number, op, column, platform)))
    return conditions


def _custom_values(number: int, op: str, column: str, platform: BindParameter[uuid.UUID]) -> Select[Any]:
    """The records with a custom value matching condition `number`: read from `record_custom_values` along
    its (platform, model, key, value) indexes, never from the records' JSON."""
    value: ColumnElement[Any] = record_custom_values.c[column]
    operand: BindParameter[Any] = bindparam(f"custom_{number}", expanding=op == "in")
    test: ColumnElement[bool]
    if op == "eq":
        test = value == operand
    elif op == "in":
        test = value.in_(operand)
    elif op == "contains":
        test = value.ilike(operand, escape="\\")
    else:
        test = value > operand if op == "gt" else value < operand
    return select(record_custom_values.c.record_id).where(
        record_custom_values.c.platform_id == platform,
        record_custom_values.c.model == bindparam("model"),
        record_custom_values.c.key == bindparam(f"custom_{number}_key"),
        test,
    )


def _list_holds(dialect: str, member: str) -> ColumnElement[bool]:
    """The JSON list `member` of the common fields holds the bound text value exactly."""
    wanted: BindParameter[str] = bindparam(f"{member}_holds")
    if dialect == "postgresql":
        # jsonb containment: a whole-list test, no unnesting.
        return records.c.common[member].op("@>")(func.jsonb_build_array(cast(wanted, String)))
    items = func.json_each(records.c.common, f'$."{member}"').table_valued("value", "type").alias("item")
    return exists(select(literal(1)).select_from(items).where(items.c.type == "text", items.c.value == wanted))


def _keyset(order: str) -> Keyset:
    return Keyset((records.c.remote_updated_at, records.c.id), descending=order == "desc")


@lru_cache(maxsize=1024)
def _page_statement(shape: FilterShape, order: str, reading: Reading) -> Select[Any]:
    conditions = _filters(shape)
    keyset = _keyset(order)
    if reading == "next":
        return select(records.c.id).where(*conditions, keyset.beyond(_BEFORE, inclusive=True)).limit(1)
    if reading == "previous":
        return select(records.c.id).where(*conditions, keyset.short_of(_AFTER, inclusive=True)).limit(1)
    after, before, backward = reading
    conditions += keyset.window(_AFTER if after else None, _BEFORE if before else None)
    ordering = keyset.order(backward=backward)
    return select(*RECORD_COLUMNS).where(*conditions).order_by(*ordering).limit(bindparam("page_limit"))


def _page_values(caller: Caller, query: RecordQuery, limit: int, bounds: Bounds) -> dict[str, Any]:
    values: dict[str, Any] = {
        "platform_id": caller.platform_id,
        "model": query.model,
        "stream": query.stream,
        "connection_id": query.connection_id,
        "external_user_id": query.external_user_id,
        "provider": query.provider,
        "updated_after": query.updated_after,
        "page_limit": limit,
    }
    for name, match in query.fields.items():
        values[f"{name}_eq"] = match.eq.upper() if match.ignore_case and match.eq is not None else match.eq
        if match.contains is not None:
            values[f"{name}_contains"] = f"%{_escape_like(match.contains)}%"
        if match.holds is not None:
            values[f"{name}_holds"] = match.holds
        if match.flag is not None:
            values[f"{name}_flag"] = match.flag
    for number, (key, _, _, operand) in enumerate(query.custom_conditions):
        values[f"custom_{number}_key"] = key
        values[f"custom_{number}"] = operand
    if bounds.after is not None:
        values["after_updated_at"], values["after_id"] = bounds.after.updated_at, bounds.after.key
    if bounds.before is not None:
        values["before_updated_at"], values["before_id"] = bounds.before.updated_at, bounds.before.key
    return values


def _record_position(position: Position) -> bool:
    return isinstance(position.key, int) and position.updated_at is not None


async def list_records(caller: Caller, query: RecordQuery, request: PageRequest) -> PageOf[RecordRow]:
    request.check()
    codec = caller.services.cursors
    scope = query.cursor_scope
    bounds = decode_bounds(codec, scope, request, _record_position)
    if query.connection_id is not None:
        await ensure_connection_owned(caller, query.connection_id)
    reading = (bounds.after is not None, bounds.before is not None, request.backward)
    async with caller.store.reader.connect() as conn:
        if query.custom:
            assert query.model is not None  # custom field filters exist on model lists only
            defined = {d.key: d.type for d in await list_definitions(conn, caller.platform_id, query.model)}
            query = replace(query, custom_conditions=tuple(check_custom_matches(query.model, query.custom, defined)))
        values = _page_values(caller, query, request.size + 1, bounds)
        shape = _filter_shape(query, conn.dialect.name)
        result = await conn.execute(_page_statement(shape, query.order, reading), values)
        rows = [RecordRow._make(row) for row in result.all()]
        edges, overflow = settle(
            request, rows, lambda row: codec.encode(scope, Position(row.remote_updated_at, row.id))
        )
        needed = probes(request, bounds, overflow)
        beyond_next = beyond_previous = False
        if needed.next_at is not None:
            beyond_next = (await conn.execute(_page_statement(shape, query.order, "next"), values)).first() is not None
        if needed.previous_at is not None:
            probe = _page_statement(shape, query.order, "previous")
            beyond_previous = (await conn.execute(probe, values)).first() is not None
    return page(request, edges, overflow, beyond_next, beyond_previous)


async def get_record(caller: Caller, record_id: int, model: str | None) -> RecordRow | None:
    stmt = select(*RECORD_COLUMNS).where(records.c.platform_id == caller.platform_id, records.c.id == record_id)
    if model is not None:
        stmt = stmt.where(records.c.model == model)
    async with caller.store.reader.connect() as conn:
        row = (await conn.execute(stmt)).first()
    return RecordRow._make(row) if row else None


async def get_records(caller: Caller, record_ids: list[int]) -> dict[int, RecordRow]:
    """The caller's platform's records among `record_ids`, by id (others are simply absent)."""
    if not record_ids:
        return {}
    stmt = select(*RECORD_COLUMNS).where(records.c.platform_id == caller.platform_id, records.c.id.in_(record_ids))
    async with caller.store.reader.connect() as conn:
        return {row.id: RecordRow._make(row) for row in (await conn.execute(stmt)).all()}
