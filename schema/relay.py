from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

from resolvers.paging import PageOf, PageRequest
from schema.context import Info

T = TypeVar("T")
R = TypeVar("R")


@strawberry.interface(description="An object with a global, opaque id.")
class Node:
    id: strawberry.ID


@strawberry.type(description="Where a page lies in its list (Relay's PageInfo).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether edges follow this page.")
    has_previous_page: bool = strawberry.field(description="Whether edges precede this page.")
    start_cursor: str | None = strawberry.field(description="The first edge's cursor; null on an empty page.")
    end_cursor: str | None = strawberry.field(description="The last edge's cursor; null on an empty page.")


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(
    name="Connection",
    description="A page of a list (a Relay connection): `first`/`after` read forward, `last`/`before` backward.",
)
class Page(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @classmethod
    def of(cls, page: PageOf[R], build: Callable[[R], T]) -> Page[T]:
        return cls(
            edges=[Edge(cursor=cursor, node=build(row)) for cursor, row in page.edges],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
        )


def connection_field(
    node: type[T],
    fetch: Callable[[Any, Info, PageRequest], Awaitable[PageOf[R]]],
    build: Callable[[R], T],
    *,
    description: str,
) -> Any:
    """A connection field with only the four paging arguments: `fetch(parent, info, request)` reads one
    page of rows, `build` makes each a `node`."""

    async def resolve(
        root: Any,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Page[T]:
        return Page.of(await fetch(root, info, page_request(info, first, after, last, before)), build)

    return strawberry.field(resolver=resolve, graphql_type=Page[node], description=description)  # type: ignore[valid-type]


def page_request(info: Info, first: int | None, after: str | None, last: int | None, before: str | None) -> PageRequest:
    """The connection arguments, and which pageInfo flags the client reads (one costs a query to know)."""
    asked = _page_info_fields(info)
    return PageRequest(
        first=first,
        after=after,
        last=last,
        before=before,
        wants_next="hasNextPage" in asked,
        wants_previous="hasPreviousPage" in asked,
    )


def _page_info_fields(info: Info) -> set[str]:
    raw: Any = info._raw_info
    fragments = raw.fragments
    found: set[str] = set()

    def visit(selection_set: SelectionSetNode | None, in_page_info: bool, depth: int) -> None:
        # Fragments may spread each other; a document that cycles was refused by validation, the depth
        # guards against one that was not validated here.
        if selection_set is None or depth > 32:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if in_page_info:
                    found.add(selection.name.value)
                elif selection.name.value == "pageInfo":
                    visit(selection.selection_set, True, depth + 1)
            elif isinstance(selection, InlineFragmentNode):
                visit(selection.selection_set, in_page_info, depth + 1)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
                visit(fragments[selection.name.value].selection_set, in_page_info, depth + 1)

    for node in raw.field_nodes:
        visit(node.selection_set, False, 0)
    return found


@strawberry.enum(description="Order of a list by the provider's modification time; ties broken by id.")
class RecordOrder(enum.Enum):
    UPDATED_AT_DESC = "desc"
    UPDATED_AT_ASC = "asc"
