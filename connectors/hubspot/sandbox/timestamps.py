"""HubSpot's time formats: ISO-8601 UTC with milliseconds out, ms-epoch or ISO in."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime


def iso_ms(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def iso_date(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def parse_instant(value: str) -> int | None:
    """Milliseconds since the epoch for an ms-epoch string, an ISO datetime or an ISO date."""
    text = value.strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def ms_of(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


class WriteClock:
    """Hands out write timestamps that strictly increase, so two writes in the same millisecond
    still order correctly by their modified date."""

    def __init__(self, floor_ms: int = 0) -> None:
        self._last = floor_ms
        self._lock = threading.Lock()

    def next_ms(self) -> int:
        with self._lock:
            self._last = max(int(time.time() * 1000), self._last + 1)
            return self._last
