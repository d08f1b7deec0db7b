"""Reading the record cache: filtered, ordered, keyset-paginated lists and single lookups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from connectors.kit.errors import BadInput, NotFound
from resolvers.ids import Position
from sync.tables import RECORD_COLUMNS, connections, end_users, records

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


def _filtered(caller: Caller, query: RecordQuery) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = [records.c.platform_id == caller.platform_id]
    if query.model is not None:
        conditions.append(records.c.model == query.model)
    if query.stream is not None:
        conditions.append(records.c.stream == query.stream)
    if not query.include_deleted:
        conditions.append(records.c.deleted.is_(False))
    if query.connection_id is not None:
        conditions.append(records.c.connection_id == query.connection_id)
    if query.external_user_id is not None:
        conditions.append(
            records.c.end_user_id.in_(
                select(end_users.c.id).where(
                    end_users.c.platform_id == caller.platform_id, end_users.c.external_id == query.external_user_id
                )
            )
        )
    if query.provider is not None:
        conditions.append(
            records.c.connection_id.in_(
                select(connections.c.id).where(
                    connections.c.platform_id == caller.platform_id, connections.c.provider == query.provider
                )
            )
        )
    if query.updated_after is not None:
        conditions.append(records.c.remote_updated_at > query.updated_after)
    for name, match in query.fields.items():
        value = records.c.common[name].as_string()
        if match.eq is not None:
            conditions.append(value == match.eq)
        if match.contains is not None:
            conditions.append(value.ilike(f"%{_escape_like(match.contains)}%", escape="\\"))
    return select(*RECORD_COLUMNS).where(*conditions)


async def list_records(caller: Caller, query: RecordQuery, first: int, after: str | None) -> PageOf[RecordRow]:
    check_page_size(first)
    codec = caller.services.cursors
    stmt = _filtered(caller, query)
    updated, rid = records.c.remote_updated_at, records.c.id
    if after is not None:
        position = codec.decode(query.cursor_scope, after)
        if not isinstance(position.key, int) or position.updated_at is None:
            raise BadInput("the cursor belongs to another list", field="after")
        if query.order == "desc":
            stmt = stmt.where(
                or_(updated < position.updated_at, and_(updated == position.updated_at, rid < position.key))
            )
        else:
            stmt = stmt.where(
                or_(updated > position.updated_at, and_(updated == position.updated_at, rid > position.key))
            )
    if query.connection_id is not None:
        await ensure_connection_owned(caller, query.connection_id)
    ordering = (updated.desc(), rid.desc()) if query.order == "desc" else (updated.asc(), rid.asc())
    stmt = stmt.order_by(*ordering).limit(first + 1)
    async with caller.store.reader.connect() as conn:
        rows = [RecordRow._make(row) for row in (await conn.execute(stmt)).all()]
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
