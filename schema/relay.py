from __future__ import annotations

import enum
from typing import Generic, TypeVar

import strawberry

T = TypeVar("T")


@strawberry.interface(description="An object with a global, opaque id.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(name="Connection", description="A page of a list: Relay's connection shape.")
class Page(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


@strawberry.enum(description="Order of a list by the provider's modification time; ties broken by id.")
class RecordOrder(enum.Enum):
    UPDATED_AT_DESC = "desc"
    UPDATED_AT_ASC = "asc"
