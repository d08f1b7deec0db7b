"""Building blocks shared by every provider sandbox.

A sandbox is a local emulator of a provider's API. The pieces here know nothing about any one
provider: fault knobs and the middleware that applies them, a rolling-window rate limiter, an
OAuth token store (expiring access tokens, refresh tokens, single-use authorization codes with
PKCE), request counters, and a helper that serves an ASGI app from a background thread.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import math
import random
import secrets
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, cast

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Clock = Callable[[], float]


class Knobs:
    """Base of a dataclass of mutable fault settings a test or `xkit dev` turns while a sandbox runs.

    A knob's default value fixes its kind: a float is a probability, an int a non-negative count,
    a bool a switch.
    """

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._names()}

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply `changes` all at once, or none of them when one is invalid (ValueError)."""
        kinds = {name: type(getattr(self, name)) for name in self._names()}
        validated: dict[str, Any] = {}
        for name, value in changes.items():
            kind = kinds.get(name)
            if kind is None:
                raise ValueError(f"unknown fault knob {name!r}; known: {', '.join(sorted(kinds))}")
            validated[name] = _coerce_knob(name, kind, value)
        for name, value in validated.items():
            setattr(self, name, value)

    def _names(self) -> list[str]:
        return [knob.name for knob in dataclasses.fields(cast(Any, self))]


@dataclass
class FaultKnobs(Knobs):
    """The knobs of a sandbox whose provider throttles with 429 and a rolling window."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    latency_ms: int = 0
    token_lifetime_s: int = 1800
    rate_limit_enabled: bool = True
    rate_limit_max: int = 100
    search_rate_per_s: int = 5
    retry_after_header: bool = False


def _coerce_knob(name: str, kind: type, value: Any) -> Any:
    # bool is a subclass of int, so it must be checked first and never accepted for numbers.
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be a boolean")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if kind is float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} is a probability between 0 and 1")
        return float(value)
    if value != int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return int(value)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    retry_after_s: float


class RollingWindowLimiter:
    """At most `limit` requests per key in any `window_s` seconds (a sliding log, not buckets)."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[Any, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: Any, limit: int, window_s: float) -> RateDecision:
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window_s:
                hits.popleft()
            if len(hits) >= limit:
                wait = hits[0] + window_s - now if hits else window_s
                return RateDecision(allowed=False, remaining=0, retry_after_s=max(wait, 0.0))
            hits.append(now)
            return RateDecision(allowed=True, remaining=limit - len(hits), retry_after_s=0.0)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


@dataclass(frozen=True)
class Grant:
    """What a token stands for: an app's access to one account on behalf of one user."""

    client_id: str
    scopes: tuple[str, ...]
    account_id: int
    user_id: int


@dataclass
class AccessToken:
    token: str
    grant: Grant
    expires_at: float


@dataclass
class IssuedTokens:
    access_token: str
    refresh_token: str | None  # None when the grant carries no offline access
    expires_in: int
    grant: Grant


class UnknownToken(Exception):
    """The presented token was never issued here (or was revoked)."""


class ExpiredToken(Exception):
    def __init__(self, token: AccessToken, expired_for_s: float) -> None:
        super().__init__(f"token expired {expired_for_s:.0f}s ago")
        self.token = token
        self.expired_for_s = expired_for_s


class CodeRejection(StrEnum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    CLIENT_MISMATCH = "client_mismatch"
    REDIRECT_MISMATCH = "redirect_mismatch"
    VERIFIER_MISSING = "verifier_missing"
    VERIFIER_MISMATCH = "verifier_mismatch"


class CodeRejected(Exception):
    """An authorization code exchange failed; `reason` says why, for the provider's own error."""

    def __init__(self, reason: CodeRejection) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass
class _AuthCode:
    grant: Grant
    redirect_uri: str
    code_challenge: str | None
    expires_at: float


def pkce_s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class TokenStore:
    """OAuth credentials issued by a sandbox: expiring access tokens, long-lived refresh tokens
    (rotated only through `rotate`), and single-use authorization codes with optional PKCE (S256)."""

    def __init__(
        self,
        clock: Clock = time.time,
        *,
        access_prefix: str = "",
        refresh_prefix: str = "",
        code_lifetime_s: float = 600.0,
    ) -> None:
        self._clock = clock
        self._access_prefix = access_prefix
        self._refresh_prefix = refresh_prefix
        self._code_lifetime_s = code_lifetime_s
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, Grant] = {}
        self._codes: dict[str, _AuthCode] = {}
        self._lock = threading.Lock()

    def issue(self, grant: Grant, lifetime_s: int, *, with_refresh: bool = True) -> IssuedTokens:
        refresh_token = self._new_refresh_token(grant) if with_refresh else None
        return self._issue_access(grant, refresh_token, lifetime_s)

    def refresh(self, refresh_token: str, client_id: str, lifetime_s: int) -> IssuedTokens:
        with self._lock:
            grant = self._refreshable(refresh_token, client_id)
        return self._issue_access(grant, refresh_token, lifetime_s)

    def rotate(self, refresh_token: str, client_id: str, lifetime_s: int) -> IssuedTokens:
        """Like `refresh`, but the refresh token is spent and a new one is issued in its place."""
        with self._lock:
            grant = self._refreshable(refresh_token, client_id)
            del self._refresh[refresh_token]
        return self._issue_access(grant, self._new_refresh_token(grant), lifetime_s)

    def _refreshable(self, refresh_token: str, client_id: str) -> Grant:
        """The grant behind a refresh token this client was given (the caller holds the lock)."""
        grant = self._refresh.get(refresh_token)
        if grant is None or grant.client_id != client_id:
            raise UnknownToken(refresh_token)
        return grant

    def revoke_all_refresh_tokens(self) -> int:
        """As when the user uninstalls the app: every refresh token stops working; returns how many."""
        with self._lock:
            count = len(self._refresh)
            self._refresh.clear()
        return count

    def _new_refresh_token(self, grant: Grant) -> str:
        refresh_token = self._refresh_prefix + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[refresh_token] = grant
        return refresh_token

    def _issue_access(self, grant: Grant, refresh_token: str | None, lifetime_s: int) -> IssuedTokens:
        access_token = self._access_prefix + secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._forget_long_expired(now)
            self._access[access_token] = AccessToken(access_token, grant, now + lifetime_s)
        return IssuedTokens(access_token, refresh_token, lifetime_s, grant)

    def _forget_long_expired(self, now: float) -> None:
        # Expired tokens are kept a day so a late caller still learns "expired", not "unknown".
        if len(self._access) < 10_000:
            return
        for token in [t for t, a in self._access.items() if a.expires_at < now - 86_400]:
            del self._access[token]

    def authenticate(self, access_token: str) -> AccessToken:
        with self._lock:
            token = self._access.get(access_token)
        if token is None:
            raise UnknownToken(access_token)
        now = self._clock()
        if token.expires_at <= now:
            raise ExpiredToken(token, now - token.expires_at)
        return token

    def lookup_refresh(self, refresh_token: str) -> Grant | None:
        with self._lock:
            return self._refresh.get(refresh_token)

    def revoke_refresh(self, refresh_token: str) -> bool:
        with self._lock:
            return self._refresh.pop(refresh_token, None) is not None

    def revoke_access(self, access_token: str) -> bool:
        with self._lock:
            return self._access.pop(access_token, None) is not None

    def expire_access_tokens(self) -> int:
        """Make every live access token expired as of now; returns how many were live."""
        now = self._clock()
        with self._lock:
            live = [token for token in self._access.values() if token.expires_at > now]
            for token in live:
                token.expires_at = now
        return len(live)

    def create_code(self, grant: Grant, redirect_uri: str, code_challenge: str | None = None) -> str:
        code = secrets.token_urlsafe(24)
        expires_at = self._clock() + self._code_lifetime_s
        with self._lock:
            self._codes[code] = _AuthCode(grant, redirect_uri, code_challenge, expires_at)
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str, code_verifier: str | None) -> Grant:
        # A code is spent by any exchange attempt, as RFC 6749 section 4.1.2 recommends:
        # a leaked code must not be retried until it works.
        with self._lock:
            issued = self._codes.pop(code, None)
        if issued is None:
            raise CodeRejected(CodeRejection.UNKNOWN)
        if issued.expires_at <= self._clock():
            raise CodeRejected(CodeRejection.EXPIRED)
        if issued.grant.client_id != client_id:
            raise CodeRejected(CodeRejection.CLIENT_MISMATCH)
        if issued.redirect_uri != redirect_uri:
            raise CodeRejected(CodeRejection.REDIRECT_MISMATCH)
        if issued.code_challenge is not None:
            if not code_verifier:
                raise CodeRejected(CodeRejection.VERIFIER_MISSING)
            if not hmac.compare_digest(pkce_s256_challenge(code_verifier), issued.code_challenge):
                raise CodeRejected(CodeRejection.VERIFIER_MISMATCH)
        return issued.grant


# What a sandbox's token endpoint grants (RFC 6749 sections 4.1.3 and 6).
GRANT_TYPES = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class RegisteredApp:
    """An OAuth client registered with a sandbox: a HubSpot app, a Salesforce connected app."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] | None  # None accepts any redirect URI (Salesforce: callback URL)

    def allows_redirect(self, redirect_uri: str) -> bool:
        return bool(redirect_uri) and (self.redirect_uris is None or redirect_uri in self.redirect_uris)


class TokenIssuer(ABC):
    """A sandbox's OAuth side as its token endpoint, tools and tests use it: the registered apps (the
    seeded one's client id), the token store, and how the provider shapes its grants and token answers."""

    client_id: str
    apps: dict[str, RegisteredApp]
    tokens: TokenStore
    # What `mint_tokens` grants when not told: what the connector asks for.
    default_scopes: tuple[str, ...] = ()

    @abstractmethod
    def grant(self, client_id: str, scopes: Sequence[str]) -> Grant: ...

    @abstractmethod
    def issue_tokens(self, grant: Grant) -> dict[str, Any]: ...

    @abstractmethod
    def refresh_tokens(self, refresh_token: str, client_id: str) -> dict[str, Any]:
        """Raises UnknownToken for a refresh token this client was never given (or revoked)."""

    def register_app(self, client_id: str, client_secret: str, redirect_uris: Sequence[str] | None = None) -> None:
        self.apps[client_id] = RegisteredApp(client_id, client_secret, tuple(redirect_uris) if redirect_uris else None)

    def token_grant(self, grant_type: str, client_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
        """The token endpoint's answer to one of GRANT_TYPES from an authenticated client: raises
        CodeRejected for a code it may not redeem, UnknownToken for a refresh token it may not use."""
        if grant_type == "authorization_code":
            grant = self.tokens.redeem_code(
                fields.get("code", ""), client_id, fields.get("redirect_uri", ""), fields.get("code_verifier")
            )
            return self.issue_tokens(grant)
        return self.refresh_tokens(fields.get("refresh_token", ""), client_id)

    def mint_tokens(self, scopes: Sequence[str] | None = None) -> dict[str, Any]:
        """Tokens for the seeded app, as if its OAuth flow had just completed."""
        return self.issue_tokens(self.grant(self.client_id, scopes or self.default_scopes))

    def revoke_refresh_token(self, token: str) -> None:
        self.tokens.revoke_refresh(token)


@dataclass
class RequestStats:
    """Counters a test reads to prove what a client did (e.g. refreshed a token exactly once)."""

    requests: Counter[str] = field(default_factory=Counter)
    responses_by_status: Counter[int] = field(default_factory=Counter)
    tokens_issued: int = 0
    token_refreshes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, route: str, status: int) -> None:
        with self._lock:
            self.requests[route] += 1
            self.responses_by_status[status] += 1

    def count_issue(self, *, refresh: bool) -> None:
        with self._lock:
            self.tokens_issued += 1
            if refresh:
                self.token_refreshes += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(sorted(self.requests.items())),
                "responses_by_status": {str(k): v for k, v in sorted(self.responses_by_status.items())},
                "tokens_issued": self.tokens_issued,
                "token_refreshes": self.token_refreshes,
            }

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.responses_by_status.clear()
            self.tokens_issued = 0
            self.token_refreshes = 0


class RequestStatsMiddleware:
    """Counts each request under "METHOD /route/{template}" and each response by status."""

    def __init__(self, app: ASGIApp, stats: RequestStats, ignore_prefix: str = "/_sandbox/") -> None:
        self.app = app
        self.stats = stats
        self.ignore_prefix = ignore_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.ignore_prefix):
            await self.app(scope, receive, send)
            return
        recorded = False

        def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            # The router leaves the matched route in the shared scope dict.
            template = getattr(scope.get("route"), "path", None) or "(unmatched)"
            self.stats.record(f"{scope['method']} {template}", status)

        async def send_counting(message: Message) -> None:
            # Counted before the response leaves, so a client that reads the stats right
            # after its response always sees its own request.
            if message["type"] == "http.response.start":
                record(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            if not recorded:
                record(500)


ResponseFactory = Callable[[], Response]


class InjectableFaults(Protocol):
    latency_ms: int
    rate_5xx: float


class FaultInjectionMiddleware:
    """Adds latency and random throttling or server errors to the requests `applies_to` selects.

    The throttling chance is the knob named `throttle_knob` (providers throttle with different
    statuses: HubSpot 429, Salesforce 403); server errors pick a status from `failure_statuses`.
    """

    def __init__(
        self,
        app: ASGIApp,
        knobs: InjectableFaults,
        *,
        applies_to: Callable[[str], bool],
        throttled: ResponseFactory,
        failed: Callable[[int], Response],
        rng: random.Random | None = None,
        throttle_knob: str = "rate_429",
        failure_statuses: tuple[int, ...] = (500, 502, 503),
    ) -> None:
        self.app = app
        self.knobs = knobs
        self.applies_to = applies_to
        self.throttled = throttled
        self.failed = failed
        self.rng = rng or random.Random()
        self.throttle_knob = throttle_knob
        self.failure_statuses = failure_statuses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self.knobs.latency_ms > 0:
            await asyncio.sleep(self.knobs.latency_ms / 1000)
        throttle_rate: float = getattr(self.knobs, self.throttle_knob)
        if throttle_rate and self.rng.random() < throttle_rate:
            await self.throttled()(scope, receive, send)
        elif self.knobs.rate_5xx and self.rng.random() < self.knobs.rate_5xx:
            await self.failed(self.rng.choice(self.failure_statuses))(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class ObservedSandbox(Protocol):
    """What the request counters and the fault middleware read from a sandbox."""

    @property
    def stats(self) -> RequestStats: ...

    @property
    def faults(self) -> InjectableFaults: ...

    @property
    def fault_rng(self) -> random.Random: ...

    def close(self) -> None: ...


def counted_and_faulted(
    sandbox: ObservedSandbox,
    *,
    applies_to: Callable[[str], bool],
    throttled: ResponseFactory,
    failed: Callable[[int], Response],
) -> list[Middleware]:
    """The outer middleware of a sandbox app: every request is counted, API requests may be faulted."""
    return [
        Middleware(RequestStatsMiddleware, stats=sandbox.stats),
        Middleware(
            FaultInjectionMiddleware,
            knobs=sandbox.faults,
            applies_to=applies_to,
            throttled=throttled,
            failed=failed,
            rng=sandbox.fault_rng,
        ),
    ]


def closing_lifespan(sandbox: ObservedSandbox) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Closes the sandbox (its delivery thread) when the server stops; runs only where the server runs
    lifespan events (uvicorn.run does, serve_in_thread does not: there sandbox.close() is the caller's)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        sandbox.close()

    return lifespan


def with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Callable[[Message], Awaitable[None]]:
    """Wrap an ASGI `send` so the response start carries extra headers."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *headers]}
        await send(message)

    return send_with_headers


def retry_after_seconds(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket; port 0 picks a free port."""
    # The explicit IPPROTO_TCP matters: asyncio only disables Nagle on accepted sockets whose
    # proto is TCP, and a keep-alive client otherwise waits ~40 ms on every response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` with uvicorn on a background thread and yield its base URL.

    Port 0 picks a free port; the socket is bound before the thread starts, so the URL is
    valid the moment it is yielded and two sandboxes never race for the same port.
    """
    with serve_apps_in_threads([(app, host, port)]) as urls:
        yield urls[0]


@contextmanager
def serve_apps_in_threads(apps: Sequence[tuple[ASGIApp, str, int]]) -> Iterator[list[str]]:
    """Serve several (app, host, port) at once, e.g. a provider's login and API hosts, and yield
    their base URLs. They stop together, so shutting down costs one server's grace, not the sum."""
    running: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []
    try:
        for app, host, port in apps:
            sock = bind_socket(host, port)
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
            running.append((server, thread, sock))
            thread.start()
        deadline = time.monotonic() + 10.0
        for server, thread, _ in running:
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("sandbox server failed to start")
                time.sleep(0.005)
        yield [
            f"http://{host}:{sock.getsockname()[1]}" for (_, host, _), (_, _, sock) in zip(apps, running, strict=True)
        ]
    finally:
        for server, _, _ in running:
            server.should_exit = True
        for _, thread, sock in running:
            thread.join(timeout=10.0)
            sock.close()
