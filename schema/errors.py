"""Every error leaves with `extensions.code`; unexpected ones are logged and masked."""

from __future__ import annotations

import logging
import re
from typing import Any

from graphql import ArgumentNode, GraphQLError, ObjectFieldNode, VariableDefinitionNode
from graphql.language import DocumentNode, Node
from strawberry.types import ExecutionContext
from strawberry.types.enum import StrawberryEnumDefinition

from connectors.kit.errors import XkitError
from schema.limits import refusal_of_parse_error

log = logging.getLogger("xkit.graphql")

# graphql-core's wording for a variable whose value does not coerce to its type (reported on the variable's
# definition); no validation rule says "has invalid". tests/test_graphql_over_http.py pins it.
VARIABLE_COERCION = re.compile(r"Variable '\$\w+' has invalid (default )?value")
# graphql-core's wording for a value an enum lacks, in a literal (a validation error) or in a variable.
UNKNOWN_ENUM_VALUE = (
    re.compile(r"Value (?P<value>'.*') does not exist in '(?P<enum>\w+)' enum\.(?: Did you mean .*)?$"),
    re.compile(r"Enum '(?P<enum>\w+)' cannot represent non-enum value: (?P<value>.*)\.(?: Did you mean .*)?$"),
)
IN_VARIABLE = re.compile(r"Variable '\$(?P<variable>\w+)' has invalid value(?: at (?P<path>\S+))?: (?P<reason>.*)$")
# graphql-core's wording for a literal in the document that its scalar refused ('10.5' for a Decimal).
BAD_LITERAL = re.compile(r"Expected value of type '(?P<type>[^']+)', but encountered error")


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
    in_variable = IN_VARIABLE.match(error.message)
    if in_variable and "field" not in error.extensions:
        error.extensions["field"] = f"${in_variable.group('variable')}{in_variable.group('path') or ''}"


def process_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> Any:
    for error in errors:
        if execution_context is None or not (
            _refuse_unknown_enum_value(error, execution_context) or _refuse_bad_literal(error, execution_context)
        ):
            classify(error)


def _refuse_bad_literal(error: GraphQLError, context: ExecutionContext) -> bool:
    """A literal written in the document that its scalar refused (`amount: 10.5` for a Decimal): bad user
    input naming where it sits, in the scalar's words."""
    refused = error.original_error
    if error.path is not None or not isinstance(refused, ValueError) or not BAD_LITERAL.match(error.message):
        return False
    field = _input_path(context.graphql_document, error.nodes[0]) if error.nodes else None
    error.message = f"{field}: {refused}" if field else str(refused)
    error.extensions = {"code": "BAD_USER_INPUT"}
    if field is not None:
        error.extensions["field"] = field
    return True


def _refuse_unknown_enum_value(error: GraphQLError, context: ExecutionContext) -> bool:
    """A value an enum lacks (`status: FOO`) is bad user input, whether written in the document or sent
    in a variable: refused naming the field and the values the enum has."""
    if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
        return False
    in_variable = IN_VARIABLE.match(error.message)
    reason = in_variable.group("reason") if in_variable else error.message
    found = next((m for pattern in UNKNOWN_ENUM_VALUE if (m := pattern.match(reason))), None)
    if found is None:
        return False
    enum = context.schema.get_type_by_name(found.group("enum"))
    if not isinstance(enum, StrawberryEnumDefinition):
        return False
    field: str | None = None
    if in_variable:
        field = f"${in_variable.group('variable')}{in_variable.group('path') or ''}"
    elif error.nodes:
        field = _input_path(context.graphql_document, error.nodes[0])
    allowed = [value.name for value in enum.values]
    where = f"{field}: " if field else ""
    error.message = f"{where}{found.group('value')} is not a {enum.name}; one of {', '.join(allowed)}"
    error.extensions = {"code": "BAD_USER_INPUT", "allowedValues": allowed}
    if field is not None:
        error.extensions["field"] = field
    return True


def _input_path(document: DocumentNode | None, value: Node) -> str | None:
    """Where a literal sits in the document, as `argument.field.field` (`input.status`)."""
    if document is None or value.loc is None:
        return None
    start = value.loc.start

    def search(node: Node, path: tuple[str, ...]) -> tuple[str, ...] | None:
        if isinstance(node, ArgumentNode | ObjectFieldNode):
            path = (*path, node.name.value)
            if node.value.loc is not None and node.value.loc.start == start and node.value.kind == value.kind:
                return path
        for child in _children(node):
            found = search(child, path)
            if found is not None:
                return found
        return None

    found = search(document, ())
    return ".".join(found) if found else None


def _children(node: Node) -> list[Node]:
    children: list[Node] = []
    for key in node.keys:
        member = getattr(node, key, None)
        for item in member if isinstance(member, tuple | list) else (member,):
            if isinstance(item, Node):
                children.append(item)
    return children
