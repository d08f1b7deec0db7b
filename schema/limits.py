"""How big a GraphQL document is, measured once per query text, and the refusals of documents over the limits.

The measures: operations, aliases, the longest string literal and list literal (and NUL characters in
strings), nesting depth, and a cost estimate per operation: every field costs one, and a field that
returns a page (`first`/`last`) or a list multiplies the cost of what is selected inside it by its
size. Variable page sizes count at the largest page a connection serves; lists without a page size
count at UNPAGED_LIST_ESTIMATE items; introspection counts its fields only, since the schema is small.
"""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    get_named_type,
    parse,
)
from graphql.language import Node
from strawberry.extensions import SchemaExtension

from resolvers.limits import InputTooLarge, QueryTooComplex, RequestLimits, check_text
from resolvers.records import MAX_PAGE

UNPAGED_LIST_ESTIMATE = 10
PAGE_ARGUMENTS = ("first", "last")
MAX_MEASURED_DOCUMENTS = 512
MAX_PARSED_DOCUMENTS = 256


@dataclass
class DocumentShape:
    operations: int = 0
    aliases: int = 0
    depth: int = 0
    longest_list: int = 0
    strings: list[str] = field(default_factory=list)
    # Cost and depth through fragments, by operation name; computed once the plain measures pass.
    costs: dict[str | None, tuple[int, int]] | None = None


_shapes: OrderedDict[str, DocumentShape] = OrderedDict()


def shape_of(query: str, document: DocumentNode) -> DocumentShape:
    shape = _shapes.get(query)
    if shape is None:
        shape = _shapes[query] = _measure(document)
        if len(_shapes) > MAX_MEASURED_DOCUMENTS:
            _shapes.popitem(last=False)
    else:
        _shapes.move_to_end(query)
    return shape


def _measure(document: DocumentNode) -> DocumentShape:
    """One pass over the syntax tree, without recursion (a document may nest deeper than Python's stack)."""
    shape = DocumentShape()
    pending: list[tuple[Node, int]] = [(document, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, SelectionSetNode):
            depth += 1
            shape.depth = max(shape.depth, depth)
        elif isinstance(node, OperationDefinitionNode):
            shape.operations += 1
        elif isinstance(node, FieldNode) and node.alias is not None:
            shape.aliases += 1
        elif isinstance(node, StringValueNode):
            shape.strings.append(node.value)
        elif isinstance(node, ListValueNode):
            shape.longest_list = max(shape.longest_list, len(node.values))
        for key in node.keys:
            value = getattr(node, key, None)
            if isinstance(value, Node):
                pending.append((value, depth))
            elif isinstance(value, tuple | list):
                pending.extend((item, depth) for item in value if isinstance(item, Node))
    return shape


def check_document(
    shape: DocumentShape, document: DocumentNode, schema: GraphQLSchema, limits: RequestLimits, operation: str | None
) -> int:
    """Refuse a document over a limit; return the cost of the operation that will run."""
    _at_most(shape.operations, limits.max_operations, "operations", "operations in one document")
    _at_most(shape.aliases, limits.max_aliases, "aliases", "aliases")
    _at_most(shape.depth, limits.max_depth, "depth", "levels of nesting")
    if shape.longest_list > limits.max_list_length:
        check_input_list(shape.longest_list, limits)
    for text in shape.strings:
        check_text(text, limits, "a string argument")
    if shape.costs is None:
        try:
            shape.costs = _costs(document, schema)
        except RecursionError:
            raise QueryTooComplex(
                f"the document nests deeper than the {limits.max_depth} levels allowed",
                limit="depth",
                maximum=limits.max_depth,
            ) from None
    cost, depth = shape.costs.get(operation) or max(shape.costs.values(), default=(0, 0))
    _at_most(depth, limits.max_depth, "depth", "levels of nesting")
    _at_most(cost, limits.max_cost, "cost", "points of estimated cost")
    return cost


def check_input_list(length: int, limits: RequestLimits) -> None:
    raise InputTooLarge(
        f"a list argument has {length} items, more than the {limits.max_list_length} allowed",
        limit="listLength",
        maximum=limits.max_list_length,
    )


def _at_most(value: int, maximum: int, limit: str, what: str) -> None:
    if value > maximum:
        raise QueryTooComplex(
            f"the document has {value} {what}, more than the {maximum} allowed", limit=limit, maximum=maximum
        )


class _Costing:
    def __init__(self, document: DocumentNode, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.memo: dict[tuple[str, bool], tuple[int, int]] = {}
        self.expanding: set[str] = set()

    def selections(self, selection_set: SelectionSetNode, parent: Any, paged: bool) -> tuple[int, int]:
        cost = depth = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                more, deeper = self.field(selection, parent, paged)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                more, deeper = self.selections(selection.selection_set, target, paged)
            elif isinstance(selection, FragmentSpreadNode):
                more, deeper = self.spread(selection.name.value, paged)
            else:
                continue
            cost += more
            depth = max(depth, deeper)
        return cost, depth

    def spread(self, name: str, paged: bool) -> tuple[int, int]:
        known = self.memo.get((name, paged))
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.expanding:  # validation reports unknown and cyclic fragments
            return 0, 0
        self.expanding.add(name)
        measured = self.selections(
            fragment.selection_set, self.schema.get_type(fragment.type_condition.name.value), paged
        )
        self.expanding.discard(name)
        self.memo[(name, paged)] = measured
        return measured

    def field(self, node: FieldNode, parent: Any, paged: bool) -> tuple[int, int]:
        if node.selection_set is None:
            return 1, 1
        fields = parent.fields if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) else {}
        definition = fields.get(node.name.value)
        child = get_named_type(definition.type) if definition is not None else None
        page = _page_size(node, definition)
        inner, depth = self.selections(node.selection_set, child, page is not None)
        if child is not None and child.name.startswith("__"):
            multiplier = 1
        elif page is not None:
            multiplier = page
        elif definition is not None and _is_list(definition.type) and not paged:
            multiplier = _literal_list_length(node) or UNPAGED_LIST_ESTIMATE
        else:
            multiplier = 1
        return 1 + multiplier * inner, 1 + depth


def _costs(document: DocumentNode, schema: GraphQLSchema) -> dict[str | None, tuple[int, int]]:
    costing = _Costing(document, schema)
    costs: dict[str | None, tuple[int, int]] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            root = schema.get_root_type(definition.operation)
            name = definition.name.value if definition.name else None
            costs[name] = costing.selections(definition.selection_set, root, False)
    return costs


def _page_size(node: FieldNode, definition: Any) -> int | None:
    if definition is None or not any(name in definition.args for name in PAGE_ARGUMENTS):
        return None
    for argument in node.arguments or ():
        if argument.name.value in PAGE_ARGUMENTS:
            value = argument.value
            return max(int(value.value), 0) if isinstance(value, IntValueNode) else MAX_PAGE
    defaults = [definition.args[name].default_value for name in PAGE_ARGUMENTS if name in definition.args]
    return next((d for d in defaults if isinstance(d, int)), MAX_PAGE)


def _is_list(output_type: Any) -> bool:
    inner = output_type.of_type if isinstance(output_type, GraphQLNonNull) else output_type
    return isinstance(inner, GraphQLList)


def _literal_list_length(node: FieldNode) -> int:
    return max((len(a.value.values) for a in node.arguments or () if isinstance(a.value, ListValueNode)), default=0)


@lru_cache(maxsize=MAX_PARSED_DOCUMENTS)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


def parsed_document(query: str, max_tokens: int) -> DocumentNode:
    """`query` parsed within `max_tokens`, from the same cache the schema's parser uses (raises as `parse` does)."""
    return _parse(query, max_tokens)


class LimitedParserCache(SchemaExtension):
    """Parses each query text once (an LRU), stopping at `max_tokens` tokens before the document is built."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        limits = limits_of(context.context)
        if limits is not None and context.query is not None:
            context.parse_options["max_tokens"] = limits.max_tokens
            # A document that does not parse is left to strawberry, which parses it again (under the same
            # token limit) and reports the error the same way on every transport (see schema/errors.py).
            with contextlib.suppress(GraphQLError, RecursionError):
                context.graphql_document = _parse(context.query, limits.max_tokens)
        yield


TOKEN_LIMIT_MESSAGE = re.compile(r"Document contains more than (\d+) tokens")


def refusal_of_parse_error(message: str, cause: BaseException | None) -> QueryTooComplex | None:
    """The limit a failed parse ran into, if it was one: the token limit (graphql-core stops there and
    says so), or nesting deeper than the parser can follow."""
    if isinstance(cause, RecursionError):
        return QueryTooComplex("the document nests too deeply to be read", limit="depth", maximum=None)
    found = TOKEN_LIMIT_MESSAGE.search(message) if cause is None else None
    if found is None:
        return None
    maximum = int(found.group(1))
    return QueryTooComplex(f"the document has more than the {maximum} tokens allowed", limit="tokens", maximum=maximum)


def limits_of(context: object) -> RequestLimits | None:
    """The limits of the caller's gateway; None for internal callers without one."""
    services = getattr(context, "services", None)
    limits = getattr(services, "limits", None)
    return limits if isinstance(limits, RequestLimits) else None
