from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Optional

import strawberry

from connectors import CONNECTORS
from connectors.kit.models import COMMON_MODELS, CommonModel
from resolvers import connections as connection_resolvers
from resolvers.ids import parse_connection_id
from resolvers.records import RecordQuery, list_records
from schema.connection import LinkedAccount
from schema.context import Info
from schema.field_mappings import FieldMappingQuery
from schema.filters import FILTER_TYPES, ObjectFilter, record_query
from schema.nodes import MAX_NODES, find_nodes
from schema.objects import OBJECT_TYPES, CommonObject, Record
from schema.relay import Node, Page, RecordOrder, page_request


@strawberry.type(description="A provider xkit can connect to.")
class Provider:
    name: str
    display_name: str
    streams: list[str]


ORDER = RecordOrder.UPDATED_AT_DESC


def _list_resolver(model: CommonModel, cls: type[CommonObject], filter_type: type[ObjectFilter]) -> Any:
    async def resolve(
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: ObjectFilter | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Any:
        query = record_query(model, filter, order_by, include_deleted)
        page = await list_records(info.context, query, page_request(info, first, after, last, before))
        return Page.of(page, cls.build)

    resolve.__annotations__ = {
        "info": Info,
        "first": Optional[int],  # noqa: UP045 - built at run time from type objects
        "after": Optional[str],  # noqa: UP045
        "last": Optional[int],  # noqa: UP045
        "before": Optional[str],  # noqa: UP045
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
class Query(FieldMappingQuery):
    @strawberry.field(description="Raw cached objects of any stream of a connection, common model or not.")
    async def records(
        self,
        info: Info,
        connection_id: strawberry.ID,
        stream: str,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        order_by: RecordOrder = ORDER,
        include_deleted: bool = False,
    ) -> Page[Record]:
        query = RecordQuery(
            stream=stream,
            connection_id=parse_connection_id(connection_id),
            order=order_by.value,
            include_deleted=include_deleted,
        )
        page = await list_records(info.context, query, page_request(info, first, after, last, before))
        return Page.of(page, Record.build)

    @strawberry.field(
        description="Any object by its global id: every type that implements Node. Null when it does not exist "
        "or is not your platform's."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        [found] = await find_nodes(info.context, [id])
        return found

    @strawberry.field(
        description=f"Objects by their global ids (at most {MAX_NODES}), in the order given; null for each id "
        "that does not exist or is not your platform's."
    )
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        return await find_nodes(info.context, ids)

    @strawberry.field(description="Your linked accounts, oldest first.")
    async def connections(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        provider: str | None = None,
        external_user_id: str | None = None,
    ) -> Page[LinkedAccount]:
        request = page_request(info, first, after, last, before)
        page = await connection_resolvers.list_connections(info.context, request, provider, external_user_id)
        return Page.of(page, LinkedAccount.build)

    @strawberry.field
    async def connection(self, info: Info, id: strawberry.ID) -> LinkedAccount:
        connection_id: uuid.UUID = parse_connection_id(id, field="id")
        return LinkedAccount.build(await connection_resolvers.get_connection(info.context, connection_id))

    @strawberry.field
    def providers(self) -> list[Provider]:
        return [
            Provider(name=c.name, display_name=c.display_name, streams=list(c.stream_names))
            for c in CONNECTORS.values()
        ]
