from __future__ import annotations

import uuid
from typing import TypeVar

import strawberry

from connectors import CONNECTORS
from resolvers import connections as connection_resolvers
from resolvers.ids import from_global_id, parse_connection_id
from resolvers.records import RecordQuery, get_record, list_records
from schema.connection import Connection
from schema.context import Info
from schema.filters import (
    CompanyFilter,
    ContactFilter,
    DealFilter,
    NoteFilter,
    ObjectFilter,
    TaskFilter,
    UserFilter,
    record_query,
)
from schema.objects import OBJECT_TYPES, CommonObject, Company, Contact, Deal, Note, Record, Task, User
from schema.relay import Edge, Node, Page, PageInfo, RecordOrder

C = TypeVar("C", bound=CommonObject)

DEFAULT_PAGE = 50


@strawberry.type(description="A provider xkit can connect to.")
class Provider:
    name: str
    display_name: str
    streams: list[str]


async def _list(
    info: Info,
    cls: type[C],
    first: int,
    after: str | None,
    where: ObjectFilter | None,
    order_by: RecordOrder,
    include_deleted: bool,
) -> Page[C]:
    query = record_query(cls.MODEL, where, order_by, include_deleted)
    page = await list_records(info.context, query, first, after)
    return Page(
        edges=[Edge(cursor=cursor, node=cls.build(row)) for cursor, row in page.edges],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )


ORDER = RecordOrder.UPDATED_AT_DESC


@strawberry.type
class Query:
    @strawberry.field(description="Contacts of every connection, newest change first by default.")
    async def contacts(
        self,
        info: Info,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        filter: ContactFilter | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Page[Contact]:
        return await _list(info, Contact, first, after, filter, order_by, include_deleted)

    @strawberry.field
    async def companies(
        self,
        info: Info,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        filter: CompanyFilter | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Page[Company]:
        return await _list(info, Company, first, after, filter, order_by, include_deleted)

    @strawberry.field
    async def deals(
        self,
        info: Info,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        filter: DealFilter | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Page[Deal]:
        return await _list(info, Deal, first, after, filter, order_by, include_deleted)

    @strawberry.field
    async def users(
        self,
        info: Info,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        filter: UserFilter | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Page[User]:
        return await _list(info, User, first, after, filter, order_by, include_deleted)

    @strawberry.field
    async def notes(
        self,
        info: Info,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        filter: NoteFilter | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Page[Note]:
        return await _list(info, Note, first, after, filter, order_by, include_deleted)

    @strawberry.field
    async def tasks(
        self,
        info: Info,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        filter: TaskFilter | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Page[Task]:
        return await _list(info, Task, first, after, filter, order_by, include_deleted)

    @strawberry.field(description="Raw cached objects of any stream of a connection, common model or not.")
    async def records(
        self,
        info: Info,
        connection_id: strawberry.ID,
        stream: str,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Page[Record]:
        query = RecordQuery(
            stream=stream,
            connection_id=parse_connection_id(connection_id),
            order=order_by.value,
            include_deleted=include_deleted,
        )
        page = await list_records(info.context, query, first, after)
        return Page(
            edges=[Edge(cursor=cursor, node=Record.build(row)) for cursor, row in page.edges],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(description="Look up any object by its global id; null when it does not exist.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, local_id = from_global_id(id)
        if type_name == "Connection":
            row = await info.context.loaders.connection.load(parse_connection_id(id, field="id"))
            return Connection.build(row) if row else None
        if (cls := OBJECT_TYPES.get(type_name)) is not None or type_name == "Record":
            if not local_id.isdigit():
                return None
            record = await get_record(info.context, int(local_id), cls.MODEL.name if cls else None)
            if record is None:
                return None
            return cls.build(record) if cls else Record.build(record)
        return None

    @strawberry.field
    async def connections(
        self,
        info: Info,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        provider: str | None = None,
        external_user_id: str | None = None,
    ) -> Page[Connection]:
        page = await connection_resolvers.list_connections(info.context, first, after, provider, external_user_id)
        return Page(
            edges=[Edge(cursor=cursor, node=Connection.build(row)) for cursor, row in page.edges],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field
    async def connection(self, info: Info, id: strawberry.ID) -> Connection:
        connection_id: uuid.UUID = parse_connection_id(id, field="id")
        return Connection.build(await connection_resolvers.get_connection(info.context, connection_id))

    @strawberry.field
    def providers(self) -> list[Provider]:
        return [
            Provider(name=c.name, display_name=c.display_name, streams=list(c.stream_names))
            for c in CONNECTORS.values()
        ]
