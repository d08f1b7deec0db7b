"""Refusals outside GraphQL's own answers, in the same JSON shape as GraphQL errors (`extensions.code` and all),
and the refusals of an HTTP request to /graphql, each with the HTTP status (and headers) that say why."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from starlette.responses import Response

from connectors.kit.errors import XkitError

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def error_body(*errors: XkitError) -> dict[str, Any]:
    return {"errors": [{"message": e.message, "extensions": {"code": e.code, **e.extensions}} for e in errors]}


def error_response(
    status: int, error: XkitError, *, headers: dict[str, str] | None = None, media_type: str = JSON
) -> Response:
    """Every refusal outside GraphQL's own answers: the same JSON shape, `extensions.code` and all."""
    return json_response(error_body(error), status, media_type, headers)


def json_response(body: object, status: int, media_type: str, headers: dict[str, str] | None = None) -> Response:
    # Both GraphQL media types are JSON in UTF-8; saying so spares clients a guess.
    return Response(orjson.dumps(body), status_code=status, media_type=f"{media_type}; charset=utf-8", headers=headers)


class RequestRefused(XkitError):
    """An HTTP request refused before it is handled (before any GraphQL runs, on /graphql): malformed, too
    large, or asking for something this endpoint cannot answer the way it was asked."""

    status: ClassVar[int] = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(message, **extensions)
        self.headers = headers or {}


class BadRequest(RequestRefused):
    """The body or query string does not hold a GraphQL request: not JSON, or parameters of the wrong type."""


class NotAuthenticated(RequestRefused):
    status = 401
    code = "UNAUTHENTICATED"


class MethodNotAllowed(RequestRefused):
    status = 405
    code = "METHOD_NOT_ALLOWED"

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message, headers={"Allow": ", ".join(allowed)})


class NotAcceptable(RequestRefused):
    """The client accepts no media type this request can be answered in."""

    status = 406
    code = "NOT_ACCEPTABLE"


class SubscriptionNeedsStream(NotAcceptable):
    """A subscription asked for as one JSON response: its events need a stream (WebSocket or Server-Sent Events)."""

    code = "SUBSCRIPTION_NEEDS_STREAM"


class UnsupportedMediaType(RequestRefused):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class OperationNotDetermined(XkitError):
    """The document does not say which operation to run (GraphQL's GetOperation fails): a GraphQL request error,
    answered with the status the response's media type gives request errors."""

    code = "OPERATION_RESOLUTION_FAILURE"
