"""What stands in front of every HubSpot API route: the URL length limit, bearer-token auth and the rate
limits, with HubSpot's headers and error bodies."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.hubspot.sandbox.errors import correlation_id, secondly_limit, ten_secondly_limit
from connectors.hubspot.sandbox.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox.timestamps import iso_ms
from connectors.kit.sandbox import ExpiredToken, UnknownToken, retry_after_seconds, with_headers
from connectors.kit.sandbox_support import json_response

# Paths that take a token and count against the rate limits: the CRM and the account details.
API_PREFIXES = ("/crm/", "/account-info/")
# HubSpot's front end refuses a longer request target (path and query) with a bare HTML 414, before
# auth. Integrators measured the limit at about 16.2k characters of URL (PostHog/posthog#31617); lists
# of 8,000 characters of property names already failed for others (dlt-hub/verified-sources#305), whose
# URLs carried more besides. The body is the one reported in airbytehq/airbyte#33976.
MAX_REQUEST_TARGET_BYTES = 16_384
URI_TOO_LONG_BODY = (
    b"<html>\r\n<head><title>414 Request-URI Too Large</title></head>\r\n<body>\r\n"
    b"<center><h1>414 Request-URI Too Large</h1></center>\r\n</body>\r\n</html>\r\n"
)
TEN_SECONDS = 10.0
CREDENTIALS_NOT_FOUND = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def is_search(scope: Scope) -> bool:
    path: str = scope["path"]
    return scope["method"] == "POST" and path.rstrip("/").endswith("/search")


class HubSpotApiGate:
    def __init__(self, app: ASGIApp, sandbox: HubSpotSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and request_target_bytes(scope) > MAX_REQUEST_TARGET_BYTES:
            await Response(URI_TOO_LONG_BODY, 414, media_type="text/html")(scope, receive, send)
            return
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            access = self.sandbox.tokens.authenticate(_bearer_token(scope))
        except UnknownToken:
            await _unauthorized("INVALID_AUTHENTICATION", CREDENTIALS_NOT_FOUND)(scope, receive, send)
            return
        except ExpiredToken as expired:
            context = {"expire time": [iso_ms(int(expired.token.expires_at * 1000))]}
            message = f"The OAuth token used to make this call expired {_ago(expired.expired_for_s)} ago."
            await _unauthorized("EXPIRED_AUTHENTICATION", message, context)(scope, receive, send)
            return
        account = (access.grant.client_id, access.grant.account_id)
        faults = self.sandbox.faults
        limiter = self.sandbox.rate_limiter
        if is_search(scope):
            # Search has its own per-second limit and sends no rate-limit headers.
            if faults.rate_limit_enabled:
                decision = limiter.acquire(("search", account), faults.search_rate_per_s, 1.0)
                if not decision.allowed:
                    headers = _retry_after(faults.retry_after_header, decision.retry_after_s)
                    await json_response(secondly_limit(), 429, headers)(scope, receive, send)
                    return
            await self.app(scope, receive, send)
            return
        limit = faults.rate_limit_max
        remaining = limit
        if faults.rate_limit_enabled:
            decision = limiter.acquire(("ten_secondly", account), limit, TEN_SECONDS)
            if not decision.allowed:
                headers = {**_rate_headers(limit, 0), **_retry_after(faults.retry_after_header, decision.retry_after_s)}
                await json_response(ten_secondly_limit(), 429, headers)(scope, receive, send)
                return
            remaining = decision.remaining
        extra = [(name.lower().encode(), value.encode()) for name, value in _rate_headers(limit, remaining).items()]
        await self.app(scope, receive, with_headers(send, extra))


def request_target_bytes(scope: Scope) -> int:
    """The length of the request line's target as the client sent it: path, `?` and query."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return len(raw_path) + (1 + len(query) if query else 0)


def _bearer_token(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    raise UnknownToken("")


def _unauthorized(category: str, message: str, context: dict[str, list[str]] | None = None) -> Response:
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": correlation_id()}
    if context:
        body["context"] = context
    body["category"] = category
    return json_response(body, 401)


def _ago(seconds: float) -> str:
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}(s)"
    return f"{int(seconds)} second(s)"


def _rate_headers(limit: int, remaining: int) -> dict[str, str]:
    # Daily headers are not sent on OAuth-authenticated calls.
    return {
        "X-HubSpot-RateLimit-Max": str(limit),
        "X-HubSpot-RateLimit-Remaining": str(remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(TEN_SECONDS * 1000)),
    }


def _retry_after(enabled: bool, wait_s: float) -> dict[str, str]:
    return {"Retry-After": retry_after_seconds(wait_s)} if enabled else {}
