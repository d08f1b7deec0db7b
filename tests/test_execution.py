"""The fast path for plain fields returns exactly what graphql-core's own execution returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry

from schema.execution import FastPlainFieldsExecutionContext


@strawberry.type
class Leafy:
    name: str
    nickname: str | None
    count: int
    when: datetime
    tags: list[str]


@strawberry.type
class Holder:
    leaf: Leafy
    maybe: Leafy | None
    many: list[Leafy]

    @strawberry.field
    def computed(self) -> str:
        return self.leaf.name.upper()


def sample(name: str = "a", nickname: str | None = "nick") -> Leafy:
    return Leafy(name=name, nickname=nickname, count=3, when=datetime(2026, 1, 2, tzinfo=UTC), tags=["x"])


@strawberry.type
class Query:
    @strawberry.field
    def holder(self) -> Holder:
        return Holder(leaf=sample(), maybe=None, many=[sample("b"), sample("c", None)])

    @strawberry.field
    def broken(self) -> Holder:
        # A None where the schema promises a value: the spec's error must still appear.
        return Holder(leaf=sample(name=None), maybe=None, many=[])  # type: ignore[arg-type]


fast = strawberry.Schema(query=Query, execution_context_class=FastPlainFieldsExecutionContext)
plain = strawberry.Schema(query=Query)

QUERIES = [
    "{ holder { leaf { name nickname count when tags } maybe { name } many { name nickname } } }",
    "{ holder { first: leaf { alias: name name } many { n: name, c: count } } }",
    "{ holder { computed leaf { name } many { name } } }",
    "{ holder { leaf { name @include(if: false) count } } }",
    "{ holder { ...F } } fragment F on Holder { leaf { name } many { count } }",
    "{ broken { leaf { name count } } }",
]


def outcome(schema: strawberry.Schema, query: str) -> tuple[Any, list[Any]]:
    result = schema.execute_sync(query)
    return result.data, [(e.message, e.path) for e in result.errors or []]


@pytest.mark.parametrize("query", QUERIES, ids=["leaves", "aliases", "resolver", "directive", "fragment", "null"])
def test_fast_path_matches_graphql_core(query: str) -> None:
    assert outcome(fast, query) == outcome(plain, query)


def test_a_null_in_a_non_null_field_is_reported() -> None:
    data, errors = outcome(fast, "{ broken { leaf { name } } }")
    assert data is None
    assert errors and errors[0][1] == ["broken", "leaf", "name"]


def test_a_plan_reused_across_requests_follows_each_requests_variables() -> None:
    """The same text runs again and again (plans are shared between requests by their nodes); a directive
    on a variable must still decide per request which fields appear."""
    query = "query($with: Boolean!) { holder { leaf { name nickname @include(if: $with) } many { name } } }"
    for flag in (True, False, True, False):
        fast_result = fast.execute_sync(query, variable_values={"with": flag})
        plain_result = plain.execute_sync(query, variable_values={"with": flag})
        assert fast_result.data == plain_result.data
        assert ("nickname" in fast_result.data["holder"]["leaf"]) is flag  # type: ignore[index]


def test_the_same_text_twice_gives_the_same_answer() -> None:
    query = QUERIES[0]
    assert outcome(fast, query) == outcome(fast, query) == outcome(plain, query)
