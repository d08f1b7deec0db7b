"""A faster path through graphql-core for plain attribute fields.

A page of 100 objects has over a thousand leaf fields, and graphql-core builds a resolve-info object,
looks up middleware and dispatches through `complete_value` for each. A leaf field that is a plain
attribute (no resolver, no arguments, no directives) needs none of that: read the attribute, serialize
it. An object whose selection is only such fields is built in one loop. Everything else — resolvers,
nested objects, lists, and any None in a non-null field (so the spec's error is raised) — takes
graphql-core's own path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from graphql import GraphQLNonNull, GraphQLObjectType, GraphQLSchema, get_named_type, is_leaf_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField


class PlainLeaf(NamedTuple):
    attribute: str
    serialize: Callable[[Any], Any]
    non_null: bool


_PLAIN_LEAVES: dict[int, dict[tuple[str, str], PlainLeaf]] = {}


def plain_leaves(schema: GraphQLSchema) -> dict[tuple[str, str], PlainLeaf]:
    """(type name, field name) -> how to read it, for every plain-attribute leaf field of the schema."""
    cached = _PLAIN_LEAVES.get(id(schema))
    if cached is not None:
        return cached
    found: dict[tuple[str, str], PlainLeaf] = {}
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        for name, field in graphql_type.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            if not isinstance(definition, StrawberryField) or not definition.is_basic_field or field.args:
                continue
            named = get_named_type(field.type)
            if is_leaf_type(named):
                found[(graphql_type.name, name)] = PlainLeaf(
                    definition.python_name,
                    named.serialize,  # type: ignore[union-attr]
                    isinstance(field.type, GraphQLNonNull),
                )
    _PLAIN_LEAVES[id(schema)] = found
    return found


Plan = tuple[tuple[str, PlainLeaf], ...]


class FastLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain_leaves = plain_leaves(self.schema)
        # graphql-core memoizes grouped field sets, so the same object comes back for every list item.
        self._plans: dict[int, tuple[Any, Plan | None]] = {}

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Plan | None:
        key = id(grouped_field_set)
        cached = self._plans.get(key)
        if cached is not None and cached[0] is grouped_field_set:
            return cached[1]
        plan: list[tuple[str, PlainLeaf]] = []
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            leaf = self._plain_leaves.get((parent_type.name, node.name.value))
            if leaf is None or node.arguments or node.directives or len(field_details_list) > 1:
                self._plans[key] = (grouped_field_set, None)
                return None
            plan.append((response_name, leaf))
        self._plans[key] = (grouped_field_set, tuple(plan))
        return tuple(plan)

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
            results: dict[str, Any] = {}
            for response_name, (attribute, serialize, non_null) in plan:
                value = getattr(source_value, attribute, None)
                if value is None:
                    if non_null:
                        break
                    results[response_name] = None
                else:
                    results[response_name] = serialize(value)
            else:
                return results
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any = None,
    ) -> Any:
        node = field_details_list[0].node
        leaf = self._plain_leaves.get((parent_type.name, node.name.value))
        if leaf is not None and not node.arguments and not node.directives:
            value = getattr(source, leaf.attribute, None)
            if value is not None:
                return leaf.serialize(value)
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
