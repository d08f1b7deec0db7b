"""Request bodies (and query strings) read within a size limit, refused as soon as they are known to exceed it."""

from __future__ import annotations

from starlette.requests import Request

from connectors.kit.bounds import collect_within
from connectors.kit.errors import BadInput
from gateway.errors import RequestRefused


class BodyTooLarge(RequestRefused):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class QueryStringTooLong(BodyTooLarge):
    status = 414


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to exceed `limit`: by its Content-Length before a byte is
    read, or while it streams in (chunked), never holding more than `limit` bytes of it."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise BadInput("the Content-Length header is not a number")
    return await collect_within(
        request.stream(), declared, limit, lambda: BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    )


def check_query_string(request: Request, limit: int) -> None:
    """A GET carries its GraphQL request in the query string, bounded like a body."""
    if len(request.scope.get("query_string", b"")) > limit:
        raise QueryStringTooLong(f"the query string is larger than the limit of {limit} bytes")
