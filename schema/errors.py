"""Every error leaves with `extensions.code`; unexpected ones are logged and masked."""

from __future__ import annotations

import logging
import re
from typing import Any

from graphql import GraphQLError, VariableDefinitionNode
from strawberry.types import ExecutionContext

from connectors.kit.errors import XkitError
from schema.limits import refusal_of_parse_error

log = logging.getLogger("xkit.graphql")

# graphql-core's wording for a variable whose value does not coerce to its type (reported on the variable's
# definition); no validation rule says "has invalid". tests/test_graphql_over_http.py pins it.
VARIABLE_COERCION = re.compile(r"Variable '\$\w+' has invalid (default )?value")


def classify(error: GraphQLError) -> None:
    if _is_variable_coercion_error(error):
        _classify_bad_variable(error)
        return
    original = error.original_error
    if isinstance(original, XkitError):
        error.message = original.message
        error.extensions = {"code": original.code, **original.extensions}
        return
    refusal = refusal_of_parse_error(error.message, original)
    if refusal is not None:
        error.message = refusal.message
        error.extensions = {"code": refusal.code, **refusal.extensions}
        return
    if original is None:
        # Raised by graphql-core itself: syntax, validation, variable coercion.
        code = "GRAPHQL_PARSE_FAILED" if error.message.startswith("Syntax Error") else "GRAPHQL_VALIDATION_FAILED"
        error.extensions = {"code": code, **(error.extensions or {})}
        return
    if isinstance(original, GraphQLError):
        classify(original)
        error.message, error.extensions = original.message, original.extensions
        return
    log.error("unexpected error in %s", error.path, exc_info=original)
    error.message = "Internal server error"
    error.extensions = {"code": "INTERNAL_SERVER_ERROR"}


def _is_variable_coercion_error(error: GraphQLError) -> bool:
    nodes = error.nodes or []
    return (
        error.path is None
        and len(nodes) == 1
        and isinstance(nodes[0], VariableDefinitionNode)
        and VARIABLE_COERCION.match(error.message) is not None
    )


def _classify_bad_variable(error: GraphQLError) -> None:
    """A variable value the caller sent that is not of its type: bad user input (as Apollo's clients expect), in
    graphql-core's words (which name the variable), or in ours when our own type refused the value."""
    cause: BaseException | None = error.original_error
    while isinstance(cause, GraphQLError) and cause.original_error is not None:
        cause = cause.original_error
    if isinstance(cause, XkitError):
        error.extensions = {"code": cause.code, **cause.extensions}
    else:
        # A scalar refusing a value (a ValueError from parsing a Decimal, say) is the caller's input, not our fault.
        error.extensions = {"code": "BAD_USER_INPUT"}


def process_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> Any:
    for error in errors:
        classify(error)
