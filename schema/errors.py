"""Every error leaves with `extensions.code`; unexpected ones are logged and masked."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from strawberry.types import ExecutionContext

from connectors.kit.errors import XkitError
from schema.limits import refusal_of_parse_error

log = logging.getLogger("xkit.graphql")


def classify(error: GraphQLError) -> None:
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


def process_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> Any:
    for error in errors:
        classify(error)
