"""Turning provider values into the common models' scalar types."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.kit.models import ScalarType


def parse_datetime(value: Any) -> datetime | None:
    """ISO-8601 strings, or epoch milliseconds as int or numeric string."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_datetime(value: Any) -> datetime | None:
    """A provider's timestamp, or None when what it sent is not one (the raw payload keeps it as sent)."""
    try:
        return parse_datetime(value)
    except (ValueError, OverflowError, OSError):
        return None


def to_scalar(value: Any, target: ScalarType) -> Any:
    """A provider's value as the common type. A value that does not fit it (a date that is not one, a
    number out of range) reads as absent rather than failing the record: `raw` keeps it as sent."""
    try:
        return _convert(value, target)
    except (ValueError, OverflowError, OSError):
        return None


def _convert(value: Any, target: ScalarType) -> Any:
    if value is None or value == "":
        return None
    if target is str:
        return value if value.__class__ is str else str(value)
    if target is int:
        return int(float(value))
    if target is float:
        return float(value)
    if target is bool:
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return parse_datetime(value)


def iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def plain_number(value: Any) -> Any:
    """A float Python would print with an exponent (1e-14, 1e+16) as plain decimal text; providers that
    parse numbers from strings (HubSpot) refuse the exponent form. Anything else is returned unchanged."""
    if isinstance(value, float) and "e" in repr(value):
        return format(Decimal(repr(value)), "f")
    return value
