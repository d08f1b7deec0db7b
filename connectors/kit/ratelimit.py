"""Per-connection request pacing: stay under the provider's window, and stop when it says stop."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

PauseRule = Callable[[Mapping[str, str]], float | None]


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` per `per_seconds`; `pause_when` reads a response's headers and says how long to
    hold this connection's requests, so we slow down before the provider refuses us rather than after."""

    requests: int
    per_seconds: float
    pause_when: PauseRule | None = None


def when_header_exhausted(header: str, pause_seconds: float) -> PauseRule:
    """Pause when a remaining-requests header reaches zero."""

    def rule(headers: Mapping[str, str]) -> float | None:
        remaining = headers.get(header)
        if remaining is not None and remaining.strip().lstrip("-").isdigit() and int(remaining) <= 0:
            return pause_seconds
        return None

    return rule


class RateLimiter:
    def __init__(self, limit: RateLimit | None) -> None:
        self.limit = limit
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def paused_for(self) -> float:
        """Seconds until this connection may send again because of a pause (0 when not paused)."""
        return max(0.0, self._paused_until - time.monotonic())

    async def acquire(self) -> None:
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

    def pause(self, seconds: float) -> None:
        """Hold every request of this connection for `seconds` (a 429 or an exhausted window)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def observe(self, headers: Mapping[str, str] | None) -> None:
        if not headers or self.limit is None or self.limit.pause_when is None:
            return
        seconds = self.limit.pause_when(headers)
        if seconds:
            self.pause(seconds)
