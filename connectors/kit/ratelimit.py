"""Per-connection request pacing: stay under the provider's window, and stop when it says stop."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` per `per_seconds`; `remaining_header`, when the provider sends it, lets us
    pause before it refuses us rather than after."""

    requests: int
    per_seconds: float
    remaining_header: str | None = None


class RateLimiter:
    def __init__(self, limit: RateLimit | None) -> None:
        self.limit = limit
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

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
        if not headers or self.limit is None or self.limit.remaining_header is None:
            return
        remaining = headers.get(self.limit.remaining_header.lower())
        if remaining is not None and remaining.strip().lstrip("-").isdigit() and int(remaining) <= 0:
            self.pause(self.limit.per_seconds)
