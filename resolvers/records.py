"""Reading the record cache: filtered, ordered, keyset-paginated lists and single lookups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from connectors.kit.errors import BadInput, NotFound
from resolvers.ids import Position
from sync.storage.tables import RECORD_COLUMNS, connections, end_users, records

if TYPE_CHECKING:
    from resolvers.context import Caller

T = TypeVar("T")

MAX_PAGE = 100


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


@dataclass(frozen=True)
class StringMatch:
    eq: str | None = None
    contains: str | None = None


@dataclass(frozen=True)
class RecordQuery:
    model: str | None = None
    stream: str | None = None
    connection_id: uuid.UUID | None = None
    external_user_id: str | None = None
    provider: str | None = None
    updated_after: datetime | None = None
    fields: dict[str, StringMatch] = field(default_factory=dict)
    include_deleted: bool = False
    order: Literal["asc", "desc"] = "desc"

    @property
    def cursor_scope(self) -> str:
        return f"{self.model or self.stream}:{self.order}"


@dataclass(frozen=True)
class PageOf(Generic[T]):
    edges: list[tuple[str, T]]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1][0] if self.edges else None


def check_page_size(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise BadInput(f"first must be between 1 and {MAX_PAGE}, got {first}", field="first")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def ensure_connection_owned(caller: Caller, connection_id: uuid.UUID) -> None:
    if await caller.loaders.connection.load(connection_id) is None:
        raise NotFound("no connection with that id", field="connectionId")


# The shape of a page query: which filters it has (not their values), its order, whether it continues
# after a cursor. Pages of one shape run one statement object with bound values, so a request neither
# builds the statement nor hashes it for SQLAlchemy's compiled cache: it only binds.
PageShape = tuple[bool, bool, bool, bool, bool, bool, bool, tuple[tuple[str, bool, bool], ...], str, bool]


def _shape(query: RecordQuery, *, after: bool) -> PageShape:
    return (
        query.model is not None,
        query.stream is not None,
        query.include_deleted,
        query.connection_id is not None,
        query.external_user_id is not None,
        query.provider is not None,
        query.updated_after is not None,
        tuple((name, match.eq is not None, match.contains is not None) for name, match in query.fields.items()),
        query.order,
        after,
    )


@lru_cache(maxsize=512)
def _page_statement(shape: PageShape) -> Select[Any]:
    model, stream, include_deleted, connection, external_user, provider, updated_after, fields, order, after = shape
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
    for name, eq, contains in fields:
        value = records.c.common[name].as_string()
        if eq:
            conditions.append(value == bindparam(f"{name}_eq"))
        if contains:
            conditions.append(value.ilike(bindparam(f"{name}_contains"), escape="\\"))
    updated, rid = records.c.remote_updated_at, records.c.id
    if after:
        at: BindParameter[datetime] = bindparam("after_updated_at")
        key: BindParameter[int] = bindparam("after_id")
        if order == "desc":
            conditions.append(or_(updated < at, and_(updated == at, rid < key)))
        else:
            conditions.append(or_(updated > at, and_(updated == at, rid > key)))
    ordering = (updated.desc(), rid.desc()) if order == "desc" else (updated.asc(), rid.asc())
    return select(*RECORD_COLUMNS).where(*conditions).order_by(*ordering).limit(bindparam("page_limit"))


def _page_values(caller: Caller, query: RecordQuery, first: int, position: Position | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "platform_id": caller.platform_id,
        "model": query.model,
        "stream": query.stream,
        "connection_id": query.connection_id,
        "external_user_id": query.external_user_id,
        "provider": query.provider,
        "updated_after": query.updated_after,
        "page_limit": first + 1,
    }
    for name, match in query.fields.items():
        values[f"{name}_eq"] = match.eq
        if match.contains is not None:
            values[f"{name}_contains"] = f"%{_escape_like(match.contains)}%"
    if position is not None:
        values["after_updated_at"], values["after_id"] = position.updated_at, position.key
    return values


async def list_records(caller: Caller, query: RecordQuery, first: int, after: str | None) -> PageOf[RecordRow]:
    check_page_size(first)
    codec = caller.services.cursors
    position = None
    if after is not None:
        position = codec.decode(query.cursor_scope, after)
        if not isinstance(position.key, int) or position.updated_at is None:
            raise BadInput("the cursor belongs to another list", field="after")
    if query.connection_id is not None:
        await ensure_connection_owned(caller, query.connection_id)
    stmt = _page_statement(_shape(query, after=position is not None))
    async with caller.store.reader.connect() as conn:
        result = await conn.execute(stmt, _page_values(caller, query, first, position))
        rows = [RecordRow._make(row) for row in result.all()]
    has_next = len(rows) > first
    rows = rows[:first]
    scope = query.cursor_scope
    edges = [(codec.encode(scope, Position(row.remote_updated_at, row.id)), row) for row in rows]
    return PageOf(edges, has_next)


async def get_record(caller: Caller, record_id: int, model: str | None) -> RecordRow | None:
    stmt = select(*RECORD_COLUMNS).where(records.c.platform_id == caller.platform_id, records.c.id == record_id)
    if model is not None:
        stmt = stmt.where(records.c.model == model)
    async with caller.store.reader.connect() as conn:
        row = (await conn.execute(stmt)).first()
    return RecordRow._make(row) if row else None
