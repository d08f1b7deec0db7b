"""Passthrough: any request to a connection's provider, with its credentials, pacing and refresh."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from connectors.kit.errors import BadInput
from resolvers.connections import get_connection
from resolvers.context import Caller
from sync.connections import connection_access

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# Set by xkit: credentials, routing and framing are not the caller's to choose.
RESERVED_HEADERS = frozenset(
    {"authorization", "host", "cookie", "content-length", "transfer-encoding", "connection", "proxy-authorization"}
)
# Hop-by-hop and framing headers describe our connection to the provider, not the answer.
DROPPED_RESPONSE_HEADERS = frozenset(
    {"connection", "transfer-encoding", "content-encoding", "content-length", "set-cookie"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True)
class PassthroughResult:
    status: int
    headers: dict[str, str]
    text: str
    json_text: str | None  # the body when it is JSON, still as text (embedded into the response unparsed)


def check_path(path: str) -> str:
    """Only paths on the connection's own host: no absolute or scheme-relative URLs, no dot segments,
    however they are encoded."""
    if not path.startswith("/") or path.startswith("//"):
        raise BadInput(
            "path must start with a single / (it is resolved against the connection's base URL)", field="path"
        )
    decoded = path
    for _ in range(3):  # %252e%252e decodes twice
        decoded = unquote(decoded)
    if "://" in decoded or decoded.startswith("//") or _CONTROL.search(decoded):
        raise BadInput("path must be a plain path on the connection's host", field="path")
    if any(segment in {".", ".."} for segment in decoded.split("?", 1)[0].split("/")):
        raise BadInput("path must not contain . or .. segments", field="path")
    return path


def _headers(given: dict[str, Any] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in (given or {}).items():
        if not isinstance(value, str) or _CONTROL.search(name) or "\n" in value or "\r" in value:
            raise BadInput(f"header {name!r} must be a single-line string", field="headers")
        if name.lower() in RESERVED_HEADERS:
            raise BadInput(f"header {name!r} is set by xkit and cannot be sent", field="headers")
        headers[name] = value
    return headers


def _query(given: dict[str, Any] | None) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for name, value in (given or {}).items():
        if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            query[name] = [str(v) for v in value]
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            query[name] = str(value)
        else:
            raise BadInput(f"query parameter {name!r} must be a string, a number or a list of them", field="query")
    return query


async def passthrough(
    caller: Caller,
    connection_id: uuid.UUID,
    *,
    method: str,
    path: str,
    query: dict[str, Any] | None,
    headers: dict[str, Any] | None,
    json_body: Any,
    text_body: str | None,
) -> PassthroughResult:
    method = method.upper()
    if method not in METHODS:
        raise BadInput(f"method must be one of {', '.join(sorted(METHODS))}", field="method")
    if json_body is not None and text_body is not None:
        raise BadInput("send either body (JSON) or bodyText, not both", field="body")
    check_path(path)
    request_headers = _headers(headers)
    params = _query(query)
    row = await get_connection(caller, connection_id)
    session = caller.services.kit.session(await connection_access(caller.store, row))
    response = await session.request(
        method,
        path,
        params=params,
        json=json_body,
        content=text_body.encode() if text_body is not None else None,
        headers=request_headers,
        return_errors=True,
        # A POST or PATCH that timed out may have been applied: the caller decides whether to send it again.
        may_repeat=method in ("GET", "PUT", "DELETE"),
    )
    text = response.text
    json_text: str | None = None
    if text:
        try:
            orjson.loads(text)
            json_text = text
        except orjson.JSONDecodeError:
            json_text = None
    return PassthroughResult(
        status=response.status_code,
        headers={k: v for k, v in response.headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS},
        text=text,
        json_text=json_text,
    )
