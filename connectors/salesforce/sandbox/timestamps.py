"""Salesforce's time formats. Datetimes are rendered `2013-05-08T21:20:00.000+0000` (always UTC,
fixed width), so comparing two rendered datetimes as strings compares them as instants; dates are
`2025-03-01`."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta, timezone

from connectors.kit.sandbox_support import WriteClock, iso_day, millis_formatter

MINUTE_MS = 60_000


format_datetime = millis_formatter("+0000")


def format_date(ms: int) -> str:
    return iso_day(ms // 1000)


def now_ms() -> int:
    return int(time.time() * 1000)


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?",
    re.ASCII,
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


def parse_datetime(text: str, *, offset_required: bool = True) -> int | None:
    """Milliseconds since the epoch of an ISO 8601 datetime (`Z`, `+hh:mm` or `+hhmm` offsets,
    optional fractional seconds), or None when `text` is not one."""
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if offset is None and offset_required:
        return None
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=_zone(offset))
    except ValueError:
        return None
    millis = int((fraction or "0").ljust(3, "0")[:3])
    return int(moment.timestamp()) * 1000 + millis


def _zone(offset: str | None) -> timezone:
    if offset is None or offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_date(text: str) -> str | None:
    """The canonical `YYYY-MM-DD` of a valid calendar date, or None."""
    if _DATE.fullmatch(text.strip()) is None:
        return None
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        return None


def floor_to_minute(ms: int) -> int:
    return ms - ms % MINUTE_MS


__all__ = ["WriteClock", "format_date", "format_datetime", "now_ms", "parse_date", "parse_datetime"]
