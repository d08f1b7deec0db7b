"""Per-connection request pacing: stay under the provider's window, and stop when it says stop."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

PauseRule = Callable[[Mapping[str, str]], float | None]


@dataclass(frozen=True)
class PathLimit:
    """A stricter window for the requests whose URL path contains `marker` (Zendesk's incremental exports:
    10 a minute inside the account's 200). A 429 from such a request holds only these requests, not the
    connection's writes and lookups."""

    marker: str
    requests: int
    per_seconds: float

    def applies_to(self, url_path: str) -> bool:
        return self.marker in url_path


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` per `per_seconds`; `pause_when` reads a response's headers and says how long to
    hold this connection's requests, so we slow down before the provider refuses us rather than after.
    `narrower` are stricter windows for some paths, kept as well as this one."""

    requests: int
    per_seconds: float
    pause_when: PauseRule | None = None
    narrower: tuple[PathLimit, ...] = ()


def when_header_exhausted(header: str, pause_seconds: float) -> PauseRule:
    """Pause when a remaining-requests header reaches zero."""

    def rule(headers: Mapping[str, str]) -> float | None:
        remaining = headers.get(header)
        if remaining is not None and remaining.strip().lstrip("-").isdigit() and int(remaining) <= 0:
            return pause_seconds
        return None

    return rule


class RateLimiter:
    def __init__(self, limit: RateLimit | None, *, path_window_scale: float = 1.0) -> None:
        """`path_window_scale` shortens the narrower windows (tests run a minute's window in a fraction of a
        second; the logic is the same)."""
        self.limit = limit
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._narrower = [
            (path, RateLimiter(RateLimit(path.requests, path.per_seconds * path_window_scale)))
            for path in (limit.narrower if limit is not None else ())
        ]

    def _narrower_for(self, url_path: str) -> list[RateLimiter]:
        return [limiter for path, limiter in self._narrower if path.applies_to(url_path)]

    def paused_for(self, url_path: str = "") -> float:
        """Seconds until a request to `url_path` may be sent because of a pause (0 when not paused)."""
        own = max(0.0, self._paused_until - time.monotonic())
        return max([own, *(limiter.paused_for() for limiter in self._narrower_for(url_path))])

    async def acquire(self, url_path: str = "") -> None:
        for limiter in self._narrower_for(url_path):
            await limiter.acquire()
        await self._acquire_own()

    async def _acquire_own(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if self._paused_until > now:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                if self.limit is None:
                    return
                window_start = now - self.limit.per_seconds
                while self._sent and self._sent[0] <= window_start:
                    self._sent.popleft()
                if len(self._sent) < self.limit.requests:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] - window_start)

    def pause(self, seconds: float, url_path: str = "") -> None:
        """Hold every request of this connection for `seconds` (a 429 or an exhausted window); a 429 to a
        path with a narrower window holds only the requests of that window."""
        narrower = self._narrower_for(url_path)
        for limiter in narrower:
            limiter.pause(seconds)
        if not narrower:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def observe(self, headers: Mapping[str, str] | None) -> None:
        if not headers or self.limit is None or self.limit.pause_when is None:
            return
        seconds = self.limit.pause_when(headers)
        if seconds:
            self.pause(seconds)
