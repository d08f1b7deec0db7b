"""A faster path through graphql-core for plain attribute fields.

A page of 100 objects has over a thousand fields, and graphql-core builds a resolve-info object, a path
and a dispatch through `complete_value` for each. Fields that are plain attributes (no resolver, no
arguments, no directives) need none of that. For a selection made only of such fields — leaves,
lists of leaves, objects and lists of objects, nested — this module compiles a plan once per operation and builds the
result in a tight loop. Everything else (resolvers, abstract types, deferred fragments) takes
graphql-core's own path, and so does any object whose fast build meets a surprise (a None in a
non-null field, a serializer error), so errors are reported exactly as the spec says.

Subscription events get the same plans, and one more saving: subscribers that receive the same change
through the same operation, variables and audience share one execution of it (see `execute_operation`).

Every execution — an operation, and each event of a subscription — resolves with its own copy of the
caller (`Caller.for_execution`): its dataloaders start empty, so an event shows related objects and
connections as they are when it is executed, not as they were when the WebSocket first read them.
"""

from __future__ import annotations

import asyncio
import keyword
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from graphql import (
    DirectiveNode,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    get_named_type,
    is_leaf_type,
)
from graphql.language import Node
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from resolvers.context import Caller

# A plan step is (kind, response name, attribute, non-null, payload); a plan compiles to one function.
TEXT, LEAF, CHILD, CHILDREN = range(4)
Step = tuple[int, str, str, bool, Any]
Builder = Callable[[Any], dict[str, Any]]

_BUILDERS: dict[tuple[Step, ...], Builder] = {}
_PLANS: dict[tuple[str, tuple[str, ...], tuple[int, ...]], tuple[tuple[Any, ...], Builder | None]] = {}
_DIRECTIVE_FREE: dict[int, tuple[Any, bool]] = {}


def _walk(node: Any) -> Iterator[Any]:
    """Every AST node below `node` (selection sets, fields, fragments, their directives)."""
    yield node
    for key in node.keys:
        value = getattr(node, key, None)
        if isinstance(value, Node):
            yield from _walk(value)
        elif isinstance(value, tuple | list):
            for item in value:
                if isinstance(item, Node):
                    yield from _walk(item)


MAX_BUILDERS = 2048
_UNSET = object()


class _Surprise(Exception):
    """The fast build cannot produce this object; graphql-core will, with proper errors."""


def builder_for(steps: list[Step]) -> Builder:
    """Compiled builders are shared by every request with the same selection (nested ones included)."""
    key = tuple(steps)
    build = _BUILDERS.get(key)
    if build is None:
        if len(_BUILDERS) >= MAX_BUILDERS:
            _BUILDERS.clear()
        build = _BUILDERS[key] = _compile_builder(key)
    return build


def _compile_builder(steps: tuple[Step, ...]) -> Builder:
    """Turn a plan into straight-line Python: one attribute read and one check per field, no dispatch.

    Only attribute names (identifiers from our own schema) enter the generated code; response names
    (client aliases), serializers and nested builders are passed in through the namespace.
    """
    namespace: dict[str, Any] = {"_Surprise": _Surprise, "str": str}
    lines = ["def build(source):"]
    for i, (kind, name, attribute, non_null, payload) in enumerate(steps):
        if not attribute.isidentifier() or keyword.iskeyword(attribute):
            raise ValueError(f"not an attribute name: {attribute!r}")
        namespace[f"K{i}"], namespace[f"P{i}"] = name, payload
        lines.append(f"    v{i} = source.{attribute}")
        if non_null:
            lines.append(f"    if v{i} is None: raise _Surprise")
        if kind == TEXT:
            # String and ID values are usually str already; their serializer would only check that.
            lines.append(f"    if v{i} is not None and v{i}.__class__ is not str: v{i} = P{i}(v{i})")
        elif kind in (LEAF, CHILD):
            lines.append(f"    if v{i} is not None: v{i} = P{i}(v{i})")
        else:
            lines.append(f"    if v{i} is not None: v{i} = [P{i}(item) for item in v{i}]")
    lines.append("    return {" + ", ".join(f"K{i}: v{i}" for i in range(len(steps))) + "}")
    exec(compile("\n".join(lines), "<graphql plan>", "exec"), namespace)  # noqa: S102 - no client text in code
    return namespace["build"]  # type: ignore[no-any-return]


def _plain(field: Any) -> bool:
    definition = (field.extensions or {}).get("strawberry-definition")
    return isinstance(definition, StrawberryField) and definition.is_basic_field and not field.args


def _python_name(field: Any) -> str:
    return str(field.extensions["strawberry-definition"].python_name)


class FastPlainFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A WebSocket hands every operation the same Caller: each operation gets its own loaders.
        if isinstance(self.context_value, Caller):
            self.context_value = self.context_value.for_execution()
        # graphql-core memoizes grouped field sets, so the same object comes back for every list item;
        # the set itself is kept in the value so its id cannot be reused while cached.
        self._plans: dict[int, tuple[Any, Builder | None]] = {}
        self._share_key: object = _UNSET
        self._share_into: tuple[dict[Any, Any], Any] | None = None

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Builder | None:
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None and cached[0] is grouped_field_set:
            return cached[1]
        # Across requests: the parser cache hands every request with the same text the same field nodes,
        # so a selection is recognised by its nodes (held in the entry, so their ids cannot be reused).
        if not self._reusable():
            plan = self._compile(parent_type, grouped_field_set)
            self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
            return plan
        nodes = tuple(details[0].node for details in grouped_field_set.values())
        key = (parent_type.name, tuple(grouped_field_set), tuple(map(id, nodes)))
        shared = _PLANS.get(key)
        if shared is not None and all(a is b for a, b in zip(shared[0], nodes, strict=True)):
            plan = shared[1]
        else:
            plan = self._compile(parent_type, grouped_field_set)
            if len(_PLANS) >= MAX_BUILDERS:
                _PLANS.clear()
            _PLANS[key] = (nodes, plan)
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
        return plan

    def _reusable(self) -> bool:
        """Whether plans may serve other requests: not when a directive (@include(if: $v), ...) could make
        the same nodes collect different fields under other variables."""
        operation = self.operation
        cached = _DIRECTIVE_FREE.get(id(operation))
        if cached is not None and cached[0] is operation:
            return cached[1]
        free = not any(
            isinstance(node, DirectiveNode)
            for root in (operation, *(getattr(f, "definition", f) for f in self.fragments.values()))
            for node in _walk(root)
        )
        if len(_DIRECTIVE_FREE) >= MAX_BUILDERS:
            _DIRECTIVE_FREE.clear()
        _DIRECTIVE_FREE[id(operation)] = (operation, free)
        return free

    def _compile(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Builder | None:
        steps: list[Step] = []
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            field = parent_type.fields.get(node.name.value)
            if field is None or not _plain(field) or node.arguments or node.directives:
                return None
            step = self._compile_field(response_name, field.type, field_details_list, _python_name(field))
            if step is None:
                return None
            steps.append(step)
        return builder_for(steps)

    def _compile_field(
        self, response_name: str, field_type: GraphQLOutputType, field_details_list: Any, attribute: str
    ) -> Step | None:
        non_null = isinstance(field_type, GraphQLNonNull)
        inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        if is_leaf_type(inner):
            kind = TEXT if inner in (GraphQLString, GraphQLID) else LEAF
            return (kind, response_name, attribute, non_null, inner.serialize)
        many = isinstance(inner, GraphQLList)
        if many:
            item = inner.of_type  # type: ignore[union-attr]
            if not isinstance(item, GraphQLNonNull):
                return None  # nullable items keep graphql-core's per-item null handling
            inner = item.of_type
            if is_leaf_type(inner):  # a list of text (tags): each item through its serializer
                return (CHILDREN, response_name, attribute, non_null, inner.serialize)
        if not isinstance(inner, GraphQLObjectType) or get_named_type(inner) is not inner:
            return None
        grouped, new_defer_usages, _ = self.collect_subfields(inner, field_details_list)
        if new_defer_usages:
            return None
        nested = self._plan(inner, grouped)
        if nested is None:
            return None
        return (CHILDREN if many else CHILD, response_name, attribute, non_null, nested)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any = None,
    ) -> Any:
        build = self._plan(parent_type, grouped_field_set)
        if build is not None:
            try:
                return build(source_value)
            except Exception:  # noqa: S110 - the generic path below reports it properly
                pass
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)

    # Subscription events. A change delivered to a thousand subscribers of the same subscription is one
    # event object (see schema/subscription.py): it carries `shared_results`, and the first subscriber to
    # execute it leaves the result there for the others with the same operation, variables and audience.

    def build_per_event_executor(self, payload: Any) -> Any:
        shared: dict[Any, Any] | None = getattr(payload, "shared_results", None)
        key = self._sharing_key() if shared is not None else None
        if shared is not None and key is not None:
            hit = shared.get(key)
            if hit is not None and hit[0] is self.operation:  # the entry holds the operation: its id is not reused
                return _Executed(hit[1])
        executor = super().build_per_event_executor(payload)
        assert isinstance(executor, FastPlainFieldsExecutionContext)
        # Each event is executed (once per audience) with loaders of its own: nothing read for an earlier
        # event is shown again, and nothing is remembered once the event is sent.
        if isinstance(self.context_value, Caller):
            executor.context_value = self.context_value.for_execution(getattr(payload, "read_together", None))
        # Every event collects its fields afresh, so caches keyed by their identity would only grow for
        # as long as the subscription lives; each event gets its own.
        executor._plans = {}
        executor._relevant_sub_fields = {}
        executor._share_into = (shared, key) if shared is not None and key is not None else None
        return executor

    def _sharing_key(self) -> tuple[Any, ...] | None:
        """Who may share this subscription's results: same operation, variables and audience. Computed once."""
        if self._share_key is _UNSET:
            audience = getattr(self.context_value, "audience", None)
            self._share_key = (
                None if audience is None else (id(self.operation), repr(self.variable_values.coerced), audience)
            )
        return self._share_key  # type: ignore[return-value]

    def execute_operation(self, serially: bool | None = None) -> Any:
        result = super().execute_operation(serially)
        if self._share_into is None:
            return result
        shared, key = self._share_into
        if self.is_awaitable(result):
            result = asyncio.ensure_future(result)
        shared[key] = (self.operation, result)
        return _Executed(result).execute_operation()


class _Executed:
    """An event already executed for another subscriber: its result, as a per-event executor would give it."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> Any:
        # One subscriber going away must not cancel the execution the others are waiting for.
        return _shielded(self.result) if isinstance(self.result, asyncio.Future) else self.result


async def _shielded(result: Awaitable[Any]) -> Any:
    return await asyncio.shield(result)
