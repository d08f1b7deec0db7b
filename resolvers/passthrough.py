"""Passthrough: any request to a connection's provider, with its credentials, pacing and refresh."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

import orjson

from connectors.kit.errors import BadInput
from resolvers.connections import get_connection
from resolvers.context import Caller
from resolvers.limits import InputTooLarge
from sync.tenancy.connections import connection_access

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
# RFC 9110: a field name is a token; a value is visible ASCII with spaces or tabs inside, never around it.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?")


@dataclass(frozen=True)
class PassthroughLimits:
    """How large a passthrough request may be (from settings)."""

    max_url_bytes: int
    max_headers: int
    # One header's name and value together.
    max_header_bytes: int
    max_body_bytes: int


@dataclass(frozen=True)
class PassthroughResult:
    status: int
    headers: dict[str, str]
    text: str
    json_text: str | None  # the body when it is JSON, still as text (embedded into the response unparsed)


def _utf8(text: str, field: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise BadInput(f"{field} is not valid Unicode text (it holds a lone surrogate)", field=field) from None


def _too_large(what: str, size: int, maximum: int, limit: str) -> InputTooLarge:
    return InputTooLarge(f"{what} is {size} bytes, more than the {maximum} allowed", limit=limit, maximum=maximum)


def check_path(path: str) -> str:
    """Only paths on the connection's own host: no absolute or scheme-relative URLs, no dot segments,
    however they are encoded."""
    if not path.startswith("/") or path.startswith("//"):
        raise BadInput(
            "path must start with a single / (it is resolved against the connection's base URL)", field="path"
        )
    _utf8(path, "path")
    decoded = path
    for _ in range(3):  # %252e%252e decodes twice
        decoded = unquote(decoded)
    if "://" in decoded or decoded.startswith("//") or _CONTROL.search(decoded):
        raise BadInput("path must be a plain path on the connection's host", field="path")
    if any(segment in {".", ".."} for segment in decoded.split("?", 1)[0].split("/")):
        raise BadInput("path must not contain . or .. segments", field="path")
    return path


def _headers(given: dict[str, Any] | None, limits: PassthroughLimits) -> dict[str, str]:
    given = given or {}
    if len(given) > limits.max_headers:
        raise InputTooLarge(
            f"{len(given)} headers, more than the {limits.max_headers} allowed",
            limit="passthroughHeaders",
            maximum=limits.max_headers,
        )
    headers: dict[str, str] = {}
    for name, value in given.items():
        if not isinstance(value, str):
            raise BadInput(f"header {name[:64]!r} must be a string", field="headers")
        size = len(_utf8(name, "headers")) + len(_utf8(value, "headers"))
        if size > limits.max_header_bytes:
            raise _too_large(f"header {name[:64]!r}", size, limits.max_header_bytes, "passthroughHeaderBytes")
        if not _TOKEN.fullmatch(name):
            raise BadInput(
                f"header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)",
                field="headers",
            )
        if name.lower() in RESERVED_HEADERS:
            raise BadInput(f"header {name!r} is set by xkit and cannot be sent", field="headers")
        if not _FIELD_VALUE.fullmatch(value):
            raise BadInput(
                f"header {name!r} must be visible ASCII text, with spaces or tabs only between characters",
                field="headers",
            )
        headers[name] = value
    return headers


def _query(given: dict[str, Any] | None) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for name, value in (given or {}).items():
        if isinstance(value, list) and all(_is_query_value(v) for v in value):
            query[name] = [str(v) for v in value]
        elif _is_query_value(value):
            query[name] = str(value)
        else:
            raise BadInput(f"query parameter {name!r} must be a string, a number or a list of them", field="query")
        for text in (name, *(query[name] if isinstance(query[name], list) else [query[name]])):
            if "\x00" in text:
                raise BadInput(f"query parameter {name!r} contains a NUL character", field="query")
            _utf8(text, "query")
    return query


def _is_query_value(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _check_url_size(path: str, query: dict[str, str | list[str]], limits: PassthroughLimits) -> None:
    size = len(path.encode()) + len(urlencode(query, doseq=True))
    if size > limits.max_url_bytes:
        raise _too_large("the path with its query", size, limits.max_url_bytes, "passthroughUrlBytes")


def _body(json_body: Any, text_body: str | None, limits: PassthroughLimits) -> bytes | None:
    if json_body is not None:
        try:
            body = orjson.dumps(json_body)
        except orjson.JSONEncodeError as exc:
            raise BadInput(f"body cannot be sent as JSON: {exc}", field="body") from None
    elif text_body is not None:
        body = _utf8(text_body, "bodyText")
    else:
        return None
    if len(body) > limits.max_body_bytes:
        raise _too_large("the body", len(body), limits.max_body_bytes, "passthroughBodyBytes")
    return body


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
    limits = caller.services.passthrough_limits
    check_path(path)
    request_headers = _headers(headers, limits)
    params = _query(query)
    _check_url_size(path, params, limits)
    content = _body(json_body, text_body, limits)
    if json_body is not None and not any(name.lower() == "content-type" for name in request_headers):
        request_headers["Content-Type"] = "application/json"
    row = await get_connection(caller, connection_id)
    session = caller.services.kit.session(await connection_access(caller.store, row))
    response = await session.request(
        method,
        path,
        params=params,
        content=content,
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
