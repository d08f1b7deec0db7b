"""What stands in front of every account's API: the subdomain, authentication (API token Basic auth or an
OAuth bearer token issued on that account), scopes, the account's rate limit per minute and the incremental
exports' own, with Zendesk's headers and error bodies. It also answers `.json` paths like bare ones."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.kit.sandbox import ExpiredToken, UnknownToken, retry_after_seconds, with_headers
from connectors.kit.sandbox_support import json_response
from connectors.zendesk.sandbox.account import Account
from connectors.zendesk.sandbox.errors import forbidden, invalid_token, rate_limited, unauthenticated
from connectors.zendesk.sandbox.sandbox import ZendeskSandbox

MINUTE = 60.0
EXPORT_PREFIX = "incremental/"


@dataclass(frozen=True)
class Caller:
    """Who a request authenticated as, on which account, with which scopes."""

    account: Account
    user_id: int
    scopes: tuple[str, ...]


def api_parts(path: str) -> tuple[str, str] | None:
    """(subdomain, path after /api/v2/) of an API path, or None for any other path."""
    subdomain, _, rest = path.lstrip("/").partition("/")
    if not rest.startswith("api/v2/") or not subdomain:
        return None
    return subdomain, rest[len("api/v2/") :]


def is_api_path(path: str) -> bool:
    return api_parts(path) is not None


def allows(scopes: tuple[str, ...], method: str, resource: str) -> bool:
    access = "read" if method in ("GET", "HEAD") else "write"
    return access in scopes or f"{resource}:{access}" in scopes or (access == "read" and f"{resource}:write" in scopes)


def resource_of(rest: str) -> str:
    """The scope resource a path belongs to ("tickets", "users", "organizations", ...)."""
    first, _, remainder = rest.partition("/")
    if first == "incremental":
        first = remainder.partition("/")[0]
    if first in ("ticket_events", "deleted_tickets", "ticket_fields", "satisfaction_ratings"):
        return "tickets"
    if first in ("deleted_users", "user_fields", "groups"):
        return "users"
    return first


class ZendeskApiGate:
    def __init__(self, app: ASGIApp, sandbox: ZendeskSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.endswith(".json"):
            path = path[: -len(".json")]
            # Changed in place: the stats middleware outside reads the matched route from this same dict.
            scope["path"], scope["raw_path"] = path, path.encode()
        parts = api_parts(path)
        if parts is None:
            await self.app(scope, receive, send)
            return
        subdomain, rest = parts
        account = self.sandbox.accounts.get(subdomain)
        if account is None:
            await no_account()(scope, receive, send)
            return
        caller = self._authenticate(scope, account)
        if isinstance(caller, Response):
            await caller(scope, receive, send)
            return
        if not allows(caller.scopes, scope["method"], resource_of(rest)):
            await json_response(forbidden(), 403)(scope, receive, send)
            return
        limited = self._rate_limit(account, rest)
        if isinstance(limited, Response):
            await limited(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, with_headers(send, limited))

    def _authenticate(self, scope: Scope, account: Account) -> Caller | Response:
        scheme, _, credential = _authorization(scope).partition(" ")
        credential = credential.strip()
        if scheme.lower() == "bearer" and credential:
            try:
                access = self.sandbox.tokens.authenticate(credential)
            except (UnknownToken, ExpiredToken):
                return json_response(invalid_token(), 401)
            # OAuth tokens are per account: another account's token is as good as none.
            if access.grant.account_id != account.id:
                return json_response(invalid_token(), 401)
            return Caller(account, access.grant.user_id, access.grant.scopes)
        if scheme.lower() == "basic" and credential:
            try:
                username, _, password = base64.b64decode(credential, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return json_response(unauthenticated(), 401)
            email, _, kind = username.rpartition("/")
            owner = self.sandbox.api_tokens.get(password) if kind == "token" else None
            user = account.user_by_email(email) if owner and owner[0] == account.subdomain else None
            if user is not None and user["id"] == owner[1] and user["role"] in ("agent", "admin"):  # type: ignore[index]
                return Caller(account, user["id"], ("read", "write"))
        return json_response(unauthenticated(), 401)

    def _rate_limit(self, account: Account, rest: str) -> Response | list[tuple[bytes, bytes]]:
        faults = self.sandbox.faults
        limit = faults.rate_limit_max
        if not faults.rate_limit_enabled:
            return _headers(limit, limit)
        limiter = self.sandbox.rate_limiter
        if rest.startswith(EXPORT_PREFIX):
            export = limiter.acquire(("export", account.id), faults.export_rate_per_min, MINUTE)
            if not export.allowed:
                return _throttled(limit, export.retry_after_s)
        decision = limiter.acquire(("account", account.id), limit, MINUTE)
        if not decision.allowed:
            return _throttled(limit, decision.retry_after_s)
        return _headers(limit, decision.remaining)


def _headers(limit: int, remaining: int) -> list[tuple[bytes, bytes]]:
    return [(b"x-rate-limit", str(limit).encode()), (b"x-rate-limit-remaining", str(remaining).encode())]


def _throttled(limit: int, wait_s: float) -> Response:
    headers = {"Retry-After": retry_after_seconds(wait_s), "X-Rate-Limit": str(limit), "X-Rate-Limit-Remaining": "0"}
    return json_response(rate_limited(), 429, headers)


def no_account() -> Response:
    # Zendesk answers an unknown subdomain with a web page, not the API's JSON.
    return Response("<h1>Oops! This help center no longer exists</h1>", 404, media_type="text/html")


def _authorization(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            return value.decode("latin-1")
    return ""
