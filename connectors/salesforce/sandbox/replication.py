"""The replication windows of getUpdated and getDeleted: seconds are ignored, the start must
precede the end by a minute, and the start may lie at most 30 (updated) or 15 (deleted) days back.
The window covers [start, end), and never past the current minute."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.kit.sandbox_support import DAY_MS
from connectors.salesforce.sandbox.errors import bad_request
from connectors.salesforce.sandbox.timestamps import (
    MINUTE_MS,
    floor_to_minute,
    format_datetime,
    parse_datetime,
)

UPDATED_LOOKBACK_DAYS = 30
DELETED_LOOKBACK_DAYS = 15


@dataclass(frozen=True)
class ReplicationWindow:
    start: str  # rendered like SystemModstamp, so it compares with stored values as a string
    latest_covered: str


def replication_window(
    start_raw: str | None, end_raw: str | None, *, lookback_days: int, now_ms: int
) -> ReplicationWindow:
    start_ms = floor_to_minute(_instant("start", start_raw))
    end_ms = floor_to_minute(_instant("end", end_raw))
    if end_ms - start_ms < MINUTE_MS:
        raise bad_request(
            "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate by more than one minute"
        )
    if start_ms < floor_to_minute(now_ms) - lookback_days * DAY_MS:
        raise bad_request("INVALID_REPLICATION_DATE", f"startDate cannot be more than {lookback_days} days ago")
    covered_ms = min(end_ms, floor_to_minute(now_ms))
    return ReplicationWindow(format_datetime(start_ms), format_datetime(max(covered_ms, start_ms)))


def _instant(name: str, raw: str | None) -> int:
    if not raw:
        raise bad_request("MISSING_ARGUMENT", f"{name} was not specified")
    ms = parse_datetime(raw)
    if ms is None:
        raise bad_request(
            "INVALID_REPLICATION_DATE",
            f"Unable to parse {name} '{raw}': use ISO 8601 with an offset, e.g. 2024-05-01T00:00:00+00:00",
        )
    return ms
