"""HubSpot's time formats: ISO-8601 UTC with milliseconds out, ms-epoch or ISO in."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime


def iso_ms(ms: int) -> str:
    # A page formats hundreds of timestamps, so this is table lookups: the date part once per
    # day, the clock and the milliseconds from precomputed strings.
    seconds, millis = divmod(ms, 1000)
    day, second_of_day = divmod(seconds, 86_400)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        prefix = _DAY_PREFIXES[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
    return prefix + _CLOCK[second_of_day] + _MILLIS[millis]


# Bounded in practice: a portal's timestamps span a few thousand days at most.
_DAY_PREFIXES: dict[int, str] = {}
_CLOCK = tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))
_MILLIS = tuple(f".{m:03d}Z" for m in range(1000))


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
