from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Optional

import strawberry

from connectors import CONNECTORS
from connectors.kit.models import COMMON_MODELS, CommonModel
from resolvers import connections as connection_resolvers
from resolvers.ids import from_global_id, parse_connection_id
from resolvers.records import RecordQuery, get_record, list_records
from schema.connection import Connection
from schema.context import Info
from schema.filters import FILTER_TYPES, ObjectFilter, record_query
from schema.objects import OBJECT_TYPES, CommonObject, Record
from schema.relay import Edge, Node, Page, PageInfo, RecordOrder

DEFAULT_PAGE = 50


@strawberry.type(description="A provider xkit can connect to.")
class Provider:
    name: str
    display_name: str
    streams: list[str]


ORDER = RecordOrder.UPDATED_AT_DESC


def _list_resolver(model: CommonModel, cls: type[CommonObject], filter_type: type[ObjectFilter]) -> Any:
    async def resolve(
        info: Info,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        filter: ObjectFilter | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Any:
        query = record_query(model, filter, order_by, include_deleted)
        page = await list_records(info.context, query, first, after)
        return Page(
            edges=[Edge(cursor=cursor, node=cls.build(row)) for cursor, row in page.edges],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    resolve.__annotations__ = {
        "info": Info,
        "first": int,
        "after": Optional[str],  # noqa: UP045 - built at run time from type objects
        "filter": Optional[filter_type],  # noqa: UP045
        "order_by": RecordOrder,
        "include_deleted": bool,
        "return": Page[cls],  # type: ignore[valid-type]
    }
    return resolve


def _words(snake: str) -> str:
    return snake.replace("_", " ").capitalize()


def derive_list_query(
    models: Iterable[CommonModel], object_types: Mapping[str, type[CommonObject]], filter_types: Mapping[str, Any]
) -> type:
    """`ListQuery`: a paged, filtered list field per model (`contacts`, `ticketComments`, ...)."""
    fields = {
        model.list_name: strawberry.field(
            resolver=_list_resolver(model, object_types[model.name], filter_types[model.name]),
            description=f"{_words(model.list_name)} of every connection, newest change first by default.",
        )
        for model in models
    }
    return strawberry.type(type("ListQuery", (), {"__module__": __name__, **fields}))


ListQuery = derive_list_query(COMMON_MODELS.values(), OBJECT_TYPES, FILTER_TYPES)


@strawberry.type
class Query:
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
