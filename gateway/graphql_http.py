"""GraphQL over HTTP (graphql.github.io/graphql-over-http): the media type an answer is encoded in, the GraphQL
request read from a GET's query string or a POST's JSON body, the operation a document runs, and the status
a GraphQL response is sent with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import DocumentNode, OperationDefinitionNode
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from gateway.errors import GRAPHQL_RESPONSE_JSON, JSON, BadRequest, OperationNotDetermined, UnsupportedMediaType

# How much of a document's operations a refusal lists, and of a name the client sent it repeats.
NAMES_LISTED = 10
NAME_ECHOED = 100


@dataclass(frozen=True)
class MediaRange:
    name: str  # "application/json", "application/*" or "*/*"
    quality: float
    parameters: frozenset[str] = frozenset()  # the names of its other parameters, lowercase

    def matches(self, media_type: str) -> bool:
        if self.name == "*/*":
            return True
        kind, _, subtype = self.name.partition("/")
        return self.name == media_type or (subtype == "*" and media_type.startswith(f"{kind}/"))

    @property
    def specificity(self) -> int:
        return 0 if self.name == "*/*" else 1 if self.name.endswith("/*") else 2


def media_ranges(accept: str) -> list[MediaRange]:
    """The media ranges of an Accept header with their quality; a range with a malformed quality accepts nothing."""
    ranges = []
    for item in accept.split(","):
        name, *parameters = (part.strip() for part in item.split(";"))
        if "/" not in name:
            continue
        quality = 1.0
        names = set()
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            key = key.strip().lower()
            if key != "q":
                names.add(key)
                continue
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
            quality = quality if 0.0 <= quality <= 1.0 else 0.0
        ranges.append(MediaRange(name.lower(), quality, frozenset(names)))
    return ranges


def _quality(media_type: str, ranges: list[MediaRange]) -> tuple[float, bool]:
    """How much the client wants `media_type` (by the most specific range naming it), and whether it named it."""
    matching = [r for r in ranges if r.matches(media_type)]
    if not matching:
        return 0.0, False
    best = max(matching, key=lambda r: r.specificity)
    return best.quality, best.specificity == 2


def response_media_type(accept: str | None) -> str | None:
    """The media type to answer in: the one the client prefers, application/graphql-response+json on a tie when
    the client names it; application/json without an Accept header or for wildcards (what legacy clients
    understand); None when the client accepts neither."""
    if accept is None or not accept.strip():
        return JSON
    ranges = media_ranges(accept)
    graphql_response, named = _quality(GRAPHQL_RESPONSE_JSON, ranges)
    json, _ = _quality(JSON, ranges)
    if graphql_response == json == 0.0:
        return None
    if graphql_response > json or (graphql_response == json and named):
        return GRAPHQL_RESPONSE_JSON
    return JSON


def wants_event_stream(accept: str | None) -> bool:
    """Whether the client asks for a subscription's events as a stream over HTTP: Server-Sent Events, or Apollo's
    multipart subscriptions (`multipart/mixed;subscriptionSpec=1.0`). A bare multipart/mixed (GraphiQL's
    incremental delivery) is not one: its queries get one JSON answer."""
    if accept is None:
        return False
    return any(
        r.quality > 0
        and (r.name == "text/event-stream" or (r.name == "multipart/mixed" and "subscriptionspec" in r.parameters))
        for r in media_ranges(accept)
    )


def parameters_from_query_string(query: Mapping[str, list[str]]) -> dict[str, Any]:
    """A GET's GraphQL request parameters: `variables` and `extensions` are JSON text, the others plain text; an
    empty one is as good as absent (as the spec says of operationName)."""
    parameters: dict[str, Any] = {}
    for name, values in query.items():
        if len(values) > 1:
            raise BadRequest(f"the query string gives `{name}` {len(values)} times; give it once")
        value = values[0] or None
        if value is not None and name in ("variables", "extensions"):
            value = _json(value, f"the `{name}` parameter")
        parameters[name] = value
    return parameters


def parameters_from_body(content_type: str | None, body: bytes) -> dict[str, Any]:
    """A POST's GraphQL request parameters: a JSON object in UTF-8, the only encoding the spec requires."""
    if content_type is None:
        raise UnsupportedMediaType("send the GraphQL request as JSON, with Content-Type: application/json")
    media_type, *parameters = (part.strip().lower() for part in content_type.split(";"))
    charset = next((p.partition("=")[2].strip('"') for p in parameters if p.startswith("charset=")), "utf-8")
    if media_type != JSON or charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(
            f"a GraphQL request is sent as application/json in UTF-8, not {content_type}", contentType=content_type
        )
    if not body.strip():
        raise BadRequest('the body is empty: send the GraphQL request as a JSON object, {"query": "..."}')
    parameters_found = _json(body, "the body")
    if isinstance(parameters_found, list):
        raise BadRequest("a batch of operations (a JSON array) is not supported: send one operation per request")
    if not isinstance(parameters_found, dict):
        raise BadRequest('the body must be a JSON object, {"query": "...", "variables": {...}}')
    return parameters_found


def _json(text: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"{what} is not valid JSON: {error}") from None


def graphql_request(parameters: Mapping[str, Any]) -> GraphQLRequestData:
    """The GraphQL request in these parameters, each of its type (null is as good as absent); the query may still
    be missing (a persisted query names its document another way)."""
    query = _typed(parameters, "query", str, "a string holding the GraphQL document")
    operation_name = _typed(parameters, "operationName", str, "a string naming one operation of the document")
    variables = _typed(parameters, "variables", dict, "a JSON object of variable values by name")
    extensions = _typed(parameters, "extensions", dict, "a JSON object")
    return GraphQLRequestData(
        query=query,
        # The spec makes an empty operationName the same as none (GET has no other way to say none).
        operation_name=operation_name or None,
        variables=variables,
        extensions=extensions,
    )


def _typed(parameters: Mapping[str, Any], name: str, kind: type, described: str) -> Any:
    value = parameters.get(name)
    if value is not None and not isinstance(value, kind):
        raise BadRequest(f"`{name}` must be {described}, not {orjson.dumps(value).decode()[:100]}")
    return value


def operation_to_run(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode:
    """GraphQL's GetOperation: the operation named, or the only one; a document with several operations runs
    none of them unless `operationName` says which."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    names = ", ".join(o.name.value if o.name else "(anonymous)" for o in operations[:NAMES_LISTED])
    names += ", ..." if len(operations) > NAMES_LISTED else ""
    if operation_name is not None:
        named = next((o for o in operations if o.name and o.name.value == operation_name), None)
        if named is None:
            raise OperationNotDetermined(
                f"the document has no operation named {operation_name[:NAME_ECHOED]!r}"
                + (f"; it has {names}" if operations else "")
            )
        return named
    if len(operations) == 1:
        return operations[0]
    if not operations:
        raise OperationNotDetermined("the document has no operation to run (a query, mutation or subscription)")
    raise OperationNotDetermined(
        f"the document has {len(operations)} operations ({names}); say which to run in `operationName`"
    )


def is_request_error(result: ExecutionResult) -> bool:
    """Whether GraphQL refused the request before executing it (parse, validation, limits, variables): no field
    ran, so no error has a path. A field error that nulls the whole `data` has one."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(error.path is None for error in errors)


def request_error_status(body: Mapping[str, Any], media_type: str) -> int:
    """application/json answers every well-formed request with 200 (a proxy's 4xx could not be told from ours);
    application/graphql-response+json says a request error with 400, or 500 when the gateway itself failed."""
    if media_type == JSON:
        return 200
    errors = [error for error in body.get("errors") or () if isinstance(error, dict)]
    codes = {(error.get("extensions") or {}).get("code") for error in errors}
    return 500 if codes == {"INTERNAL_SERVER_ERROR"} else 400
