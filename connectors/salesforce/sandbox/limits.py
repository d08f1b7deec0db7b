"""The org's daily API request allocation: a rolling 24-hour count of API calls, reported on every
response as `Sforce-Limit-Info: api-usage=N/LIMIT` and enforced with 403 REQUEST_LIMIT_EXCEEDED."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

DAY_S = 86_400.0


class ApiUsage:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def try_call(self, limit: int, *, enforced: bool) -> bool:
        """Count one call unless `enforced` and the last 24 hours already hold `limit` calls."""
        with self._lock:
            now = self._prune()
            if enforced and len(self._calls) >= limit:
                return False
            self._calls.append(now)
            return True

    def used(self) -> int:
        with self._lock:
            self._prune()
            return len(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def _prune(self) -> float:
        now = self._clock()
        while self._calls and self._calls[0] <= now - DAY_S:
            self._calls.popleft()
        return now


def limit_info(used: int, limit: int) -> str:
    return f"api-usage={used}/{limit}"
