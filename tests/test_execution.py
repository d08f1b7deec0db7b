"""The fast path for plain fields returns exactly what graphql-core's own execution returns; subscription
events are shared between like subscribers and leave nothing behind."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
import strawberry
from graphql import parse

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


# ---- subscription events -------------------------------------------------------------------------------


@strawberry.type
class Event:
    name: str
    shared_results: strawberry.Private[dict[Any, Any]]
    resolved: strawberry.Private[list[str]]

    @strawberry.field
    def shout(self, suffix: str = "!") -> str:
        self.resolved.append(suffix)
        return self.name.upper() + suffix


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def events(self) -> AsyncGenerator[Event, None]:  # pragma: no cover - events are fed by hand below
        yield Event(name="never", shared_results={}, resolved=[])


@dataclass
class Audience:
    audience: tuple[str, str]


events_schema = strawberry.Schema(
    query=Query, subscription=Subscription, execution_context_class=FastPlainFieldsExecutionContext
)
EVENTS = "subscription($s: String!) { events { name shout(suffix: $s) } }"


def deliver(executor: Any, event: Event) -> Any:
    return executor.build_per_event_executor(event).execute_operation(False)


def test_subscribers_with_the_same_operation_variables_and_audience_share_one_execution() -> None:
    document = parse(EVENTS)
    build = partial(FastPlainFieldsExecutionContext.build, events_schema._schema, document)
    first = build(raw_variable_values={"s": "!"}, context_value=Audience(("p", "k")))
    second = build(raw_variable_values={"s": "!"}, context_value=Audience(("p", "k")))
    other_variables = build(raw_variable_values={"s": "?"}, context_value=Audience(("p", "k")))
    other_key = build(raw_variable_values={"s": "!"}, context_value=Audience(("p", "other")))
    event = Event(name="hello", shared_results={}, resolved=[])
    results = [deliver(executor, event) for executor in (first, second, other_variables, other_key)]
    assert results[0] is results[1]  # executed once, for both
    assert [r.data["events"]["shout"] for r in results] == ["HELLO!", "HELLO!", "HELLO?", "HELLO!"]
    assert event.resolved == ["!", "?", "!"]


def test_a_long_subscription_keeps_no_state_per_event() -> None:
    executor = FastPlainFieldsExecutionContext.build(
        events_schema._schema, parse(EVENTS), raw_variable_values={"s": "!"}, context_value=Audience(("p", "k"))
    )
    deliver(executor, Event(name="warm", shared_results={}, resolved=[]))
    kept = (len(executor._plans), len(executor._relevant_sub_fields))
    for i in range(200):
        result = deliver(executor, Event(name=f"e{i}", shared_results={}, resolved=[]))
        assert result.data == {"events": {"name": f"e{i}", "shout": f"E{i}!"}}
    assert (len(executor._plans), len(executor._relevant_sub_fields)) == kept
