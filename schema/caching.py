"""Validation results cached by query text.

strawberry's ValidationCache keys its LRU on the parsed document, and graphql-core hashes a document by
walking its whole tree on every request; the query text is the same key at the cost of one string hash.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

MAX_CACHED_QUERIES = 512

_validated: OrderedDict[str, list[GraphQLError]] = OrderedDict()


class ValidationByQueryText(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        key = context.query
        errors = _validated.get(key) if key is not None else None
        if errors is None:
            assert context.graphql_document is not None
            errors = validate_document(context.schema._schema, context.graphql_document, context.validation_rules)
            if key is not None:
                _validated[key] = errors
                if len(_validated) > MAX_CACHED_QUERIES:
                    _validated.popitem(last=False)
        else:
            _validated.move_to_end(key)  # type: ignore[arg-type]
        context.pre_execution_errors = errors
        yield
