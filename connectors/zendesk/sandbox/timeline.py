"""An ordered index of records by when they last changed: what the incremental exports walk."""

from __future__ import annotations

import base64
import binascii
import bisect
import threading
from collections.abc import Iterable

# Where a reader stands: a change's time in seconds and its sequence number.
Position = tuple[int, int]
# (time in seconds, sequence number, record id)
Entry = tuple[int, int, int]


class Timeline:
    """Records by their last change. Each change gets a sequence number above every earlier one, so two
    changes in one second still have distinct positions and a cursor never skips the later one."""

    def __init__(self, changes: Iterable[tuple[int, int]] = ()) -> None:
        ordered = sorted(changes)
        self._entries: list[Entry] = [(ts, seq, record_id) for seq, (ts, record_id) in enumerate(ordered)]
        self._at: dict[int, Entry] = {entry[2]: entry for entry in self._entries}
        self._next_seq = len(self._entries)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def move(self, record_id: int, ts: int) -> None:
        """The record changed at `ts` (never before the latest change: times are clamped to stay in order)."""
        with self._lock:
            old = self._at.get(record_id)
            if old is not None:
                del self._entries[bisect.bisect_left(self._entries, old)]
            latest = self._entries[-1][0] if self._entries else ts
            entry = (max(ts, latest), self._next_seq, record_id)
            self._next_seq += 1
            self._at[record_id] = entry
            self._entries.append(entry)

    def after(self, position: Position, limit: int, until_s: int) -> tuple[list[Entry], bool]:
        """Up to `limit` entries strictly after `position` and changed by `until_s`, and whether more such
        entries follow them."""
        start = bisect.bisect_right(self._entries, (position[0], position[1], 1 << 62))
        stop = self._stop(until_s)
        chunk = self._entries[start : min(start + limit + 1, stop)]
        return chunk[:limit], len(chunk) > limit

    def since(self, start_s: int, limit: int, until_s: int) -> tuple[list[Entry], bool]:
        """Entries changed from `start_s` to `until_s`: `limit` of them when there are, extended to the end of
        the last one's second (a time-based page never splits a second), and whether more such follow."""
        start = bisect.bisect_left(self._entries, (start_s, -1, -1))
        stop = self._stop(until_s)
        chunk = self._entries[start : min(start + limit, stop)]
        if len(chunk) == limit:
            chunk = self._entries[start : min(self._stop(chunk[-1][0]), stop)]
        return chunk, start + len(chunk) < stop

    def _stop(self, until_s: int) -> int:
        """The index past the last entry changed at or before `until_s`."""
        return bisect.bisect_left(self._entries, (until_s + 1, -1, -1))


def encode_cursor(position: Position) -> str:
    return base64.urlsafe_b64encode(f"{position[0]}.0||{position[1]}|".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, separator, rest = text.partition(".0||")
        if not separator:
            return None
        return int(ts), int(rest.rstrip("|"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
