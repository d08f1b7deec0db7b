"""A faster path through graphql-core for plain attribute fields.

A page of 100 objects has over a thousand fields, and graphql-core builds a resolve-info object, a path
and a dispatch through `complete_value` for each. Fields that are plain attributes (no resolver, no
arguments, no directives) need none of that. For a selection made only of such fields — leaves,
objects and lists of objects, nested — this module compiles a plan once per operation and builds the
result in a tight loop. Everything else (resolvers, abstract types, deferred fragments) takes
graphql-core's own path, and so does any object whose fast build meets a surprise (a None in a
non-null field, a serializer error), so errors are reported exactly as the spec says.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    get_named_type,
    is_leaf_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

# A plan step is a tuple (kind, response name, attribute, non-null, payload); tuples keep the loop tight.
TEXT, LEAF, CHILD, CHILDREN = range(4)
Step = tuple[int, str, str, bool, Any]
Plan = tuple[Step, ...]


class _Surprise(Exception):
    """The fast build cannot produce this object; graphql-core will, with proper errors."""


def _build(plan: Plan, source: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for kind, name, attribute, non_null, payload in plan:
        value = getattr(source, attribute, None)
        if value is None:
            if non_null:
                raise _Surprise
            result[name] = None
        elif kind == TEXT:
            # String and ID values are usually str already; their serializer would only check that.
            result[name] = value if value.__class__ is str else payload(value)
        elif kind == LEAF:
            result[name] = payload(value)
        elif kind == CHILD:
            result[name] = _build(payload, value)
        else:
            result[name] = [_build(payload, item) for item in value]
    return result


def _plain(field: Any) -> bool:
    definition = (field.extensions or {}).get("strawberry-definition")
    return isinstance(definition, StrawberryField) and definition.is_basic_field and not field.args


def _python_name(field: Any) -> str:
    return str(field.extensions["strawberry-definition"].python_name)


class FastPlainFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core memoizes grouped field sets, so the same object comes back for every list item;
        # the set itself is kept in the value so its id cannot be reused while cached.
        self._plans: dict[int, tuple[Any, Plan | None]] = {}

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Plan | None:
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None and cached[0] is grouped_field_set:
            return cached[1]
        plan = self._compile(parent_type, grouped_field_set)
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
        return plan

    def _compile(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Plan | None:
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
        return tuple(steps)

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
        plan = self._plan(parent_type, grouped_field_set)
        if plan is not None:
            try:
                return _build(plan, source_value)
            except Exception:  # noqa: S110 - the generic path below reports it properly
                pass
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
