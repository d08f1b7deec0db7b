"""The connector kit's shared machinery: pacing, retries, credentials, conversions, secrets."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.kit.convert import parse_datetime, to_scalar
from connectors.kit.credentials import Credentials
from connectors.kit.errors import ProviderUnavailable, RateLimited
from connectors.kit.http import HttpKit, retry_after_seconds
from connectors.kit.pagination import chained_pages
from connectors.kit.ratelimit import PathLimit, RateLimit, RateLimiter, when_header_exhausted
from connectors.kit.sandbox import serve_in_thread
from tests.connectors.kit_sessions import api_key_access
from tests.support import sandbox_egress


async def test_rate_limiter_holds_requests_beyond_the_window() -> None:
    limiter = RateLimiter(RateLimit(requests=3, per_seconds=0.3))
    started = time.monotonic()
    for _ in range(4):
        await limiter.acquire()
    assert time.monotonic() - started >= 0.25


async def test_an_exhausted_window_header_pauses_the_connection() -> None:
    limiter = RateLimiter(
        RateLimit(requests=100, per_seconds=0.3, pause_when=when_header_exhausted("X-Remaining", 0.3))
    )
    limiter.observe(httpx2.Headers({"X-Remaining": "0"}))
    started = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - started >= 0.25


EXPORT = "/acme/api/v2/incremental/tickets/cursor.json"
TICKET = "/acme/api/v2/tickets/7.json"


def exports_limited(requests: int) -> RateLimiter:
    return RateLimiter(RateLimit(requests=100, per_seconds=60, narrower=(PathLimit("/incremental/", requests, 60),)))


async def test_a_narrower_window_holds_only_the_requests_of_its_paths() -> None:
    limiter = exports_limited(requests=2)
    await limiter.acquire(EXPORT)
    await limiter.acquire(EXPORT)
    with pytest.raises(TimeoutError):  # the third export of the minute waits for the window
        await asyncio.wait_for(limiter.acquire(EXPORT), 0.05)
    await asyncio.wait_for(limiter.acquire(TICKET), 5)  # a lookup or a write still goes at once


async def test_a_429_from_a_narrower_path_pauses_only_those_requests() -> None:
    limiter = exports_limited(requests=10)
    limiter.pause(30, EXPORT)
    assert limiter.paused_for(EXPORT) > 25
    assert limiter.paused_for(TICKET) == 0
    limiter.pause(30, TICKET)  # a 429 elsewhere holds the whole connection, exports included
    assert limiter.paused_for(TICKET) > 25 and limiter.paused_for(EXPORT) > 25


def test_retry_after_reads_seconds_and_dates() -> None:
    def response(value: str) -> httpx2.Response:
        return httpx2.Response(429, headers={"Retry-After": value})

    assert retry_after_seconds(response("3")) == 3.0
    later = datetime.fromtimestamp(time.time() + 30, tz=UTC)
    assert 25 <= (retry_after_seconds(response(format_datetime(later, usegmt=True))) or 0) <= 31
    assert retry_after_seconds(response("soon")) is None
    assert retry_after_seconds(httpx2.Response(429)) is None


def _flaky_app(script: list[tuple[int, dict[str, str]]]) -> tuple[Starlette, list[float]]:
    seen: list[float] = []

    async def endpoint(request: Request) -> Response:
        seen.append(time.monotonic())
        status, headers = script[min(len(seen), len(script)) - 1]
        assert request.headers["authorization"] == "Bearer key-123"
        return JSONResponse({"ok": status < 400}, status_code=status, headers=headers)

    return Starlette(routes=[Route("/thing", endpoint)]), seen


_access = api_key_access


async def test_a_429_is_retried_after_the_time_the_provider_asks() -> None:
    app, seen = _flaky_app([(429, {"Retry-After": "1"}), (200, {})])
    kit = HttpKit(egress=sandbox_egress(), backoff_base=0.01, backoff_max=0.02)
    try:
        with serve_in_thread(app) as url:
            body = await kit.session(_access(url)).get_json("/thing")
    finally:
        await kit.aclose()
    assert body == {"ok": True}
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.9


async def test_retries_give_up_with_a_typed_error() -> None:
    app, seen = _flaky_app([(503, {})])
    kit = HttpKit(egress=sandbox_egress(), max_retries=2, backoff_base=0.01, backoff_max=0.02)
    try:
        with serve_in_thread(app) as url:
            with pytest.raises(ProviderUnavailable):
                await kit.session(_access(url)).get_json("/thing")
            app429, _ = _flaky_app([(429, {})])
            with serve_in_thread(app429) as url429, pytest.raises(RateLimited):
                await kit.session(_access(url429)).get_json("/thing")
    finally:
        await kit.aclose()
    assert len(seen) == 3


async def test_credentials_are_never_sent_to_another_host() -> None:
    kit = HttpKit(egress=sandbox_egress())
    try:
        session = kit.session(_access("https://api.example.com"))
        with pytest.raises(ValueError, match="another host"):
            await session.get_json("https://evil.example.org/steal")
    finally:
        await kit.aclose()


def test_refresh_keeps_the_old_refresh_token_when_none_comes_back() -> None:
    before = Credentials(access_token="a1", refresh_token="r1", scopes=["x"])
    after = Credentials.from_token_response({"access_token": "a2", "expires_in": 1800}, previous=before)
    assert (after.access_token, after.refresh_token, after.scopes) == ("a2", "r1", ["x"])
    assert after.expires_at is not None and after.expires_at > datetime.now(UTC)
    assert Credentials.from_dict(after.to_dict()) == after


@pytest.mark.parametrize(
    ("raw", "target", "expected"),
    [
        ("42", int, 42),
        ("42.5", float, 42.5),
        ("17.0", int, 17),
        ("true", bool, True),
        ("", str, None),
        (None, str, None),
        (7, str, "7"),
        ("1718841600000", datetime, datetime(2024, 6, 20, tzinfo=UTC)),
        ("2024-06-20T00:57:37.690Z", datetime, datetime(2024, 6, 20, 0, 57, 37, 690000, tzinfo=UTC)),
    ],
)
def test_provider_values_convert_to_common_types(raw: object, target: type, expected: object) -> None:
    assert to_scalar(raw, target) == expected  # type: ignore[arg-type]


def test_naive_timestamps_are_read_as_utc() -> None:
    assert parse_datetime("2024-01-01T10:00:00") == datetime(2024, 1, 1, 10, tzinfo=UTC)


async def test_concurrent_requests_share_one_limiter() -> None:
    app, seen = _flaky_app([(200, {})])
    kit = HttpKit(egress=sandbox_egress())
    access = _access("")
    try:
        with serve_in_thread(app) as url:
            access.base_url = url
            access.rate_limit = RateLimit(requests=2, per_seconds=0.3)
            sessions = [kit.session(access) for _ in range(3)]
            started = time.monotonic()
            await asyncio.gather(*(s.get_json("/thing") for s in sessions))
    finally:
        await kit.aclose()
    assert len(seen) == 3
    assert time.monotonic() - started >= 0.25


async def test_sessions_use_the_most_recently_obtained_credentials() -> None:
    kit = HttpKit(egress=sandbox_egress())
    try:
        older = _access("https://api.example.com")
        first = kit.session(older)
        newer = _access("https://api.example.com")
        newer.credentials = Credentials(api_key="rotated")
        assert kit.session(newer).credentials.api_key == "rotated"
        # A stale snapshot (loaded before a refresh) never replaces fresher credentials.
        assert kit.session(older).credentials.api_key == "rotated"
        assert first.credentials.api_key == "rotated"
    finally:
        await kit.aclose()


class _Chain:
    """Three pages linked by tokens; records which requests went out, and when each was answered."""

    def __init__(self, fail_on: str = "nowhere") -> None:
        self.requested: list[str | None] = []
        self.finished: list[str | None] = []
        self.fail_on = fail_on

    async def fetch(self, token: str | None) -> dict[str, object]:
        self.requested.append(token)
        await asyncio.sleep(0.01)
        if token == self.fail_on:
            raise ProviderUnavailable("page unavailable")
        self.finished.append(token)
        following = {None: "b", "b": "c", "c": None}[token]
        return {"page": token or "a", "next": following}


async def test_chained_pages_asks_for_the_next_page_before_handing_over_this_one() -> None:
    chain = _Chain()
    seen = []
    async for body, token in chained_pages(chain.fetch, lambda body: body["next"], None):
        # The next request is already out while this page is mapped and stored (none after the last).
        assert chain.requested[-1] == (token or body["page"])
        seen.append((body["page"], token))
    assert seen == [("a", "b"), ("b", "c"), ("c", None)]
    assert chain.requested == [None, "b", "c"]


async def test_chained_pages_hands_over_every_good_page_before_a_failed_one_fails() -> None:
    chain = _Chain(fail_on="c")
    seen = []
    with pytest.raises(ProviderUnavailable):
        async for body, _ in chained_pages(chain.fetch, lambda body: body["next"], None):
            seen.append(body["page"])
    assert seen == ["a", "b"]


async def test_a_consumer_that_stops_early_leaves_no_request_running() -> None:
    chain = _Chain()
    pages = chained_pages(chain.fetch, lambda body: body["next"], None)
    async for body, _ in pages:
        assert body["page"] == "a"
        break
    await pages.aclose()
    await asyncio.sleep(0.05)
    assert chain.requested == [None, "b"]
    assert chain.finished == [None]  # the request for "b" was cancelled, not left to finish
