"""HubSpot's time formats: ISO-8601 UTC with milliseconds out, ms-epoch or ISO in."""

from __future__ import annotations

from datetime import UTC, date, datetime

from connectors.kit.sandbox_support import WriteClock, iso_day, millis_formatter

iso_ms = millis_formatter("Z")


def iso_date(ms: int) -> str:
    return iso_day(ms // 1000)


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


__all__ = ["WriteClock", "iso_date", "iso_ms", "parse_instant"]
