"""The records of one sObject, indexed by Id and by (SystemModstamp, Id), so a query narrowed
or ordered by either never scans the table.

A row is a list of field values in describe order. Rows are never changed in place: a write
stores a new list, so an open query cursor keeps the snapshot it was built from.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

from connectors.salesforce.sandbox.ids import record_id
from connectors.salesforce.sandbox.schema import SObjectType

Row = list[Any]
ModstampEntry = tuple[str, str, Row]  # (SystemModstamp, Id, row)
Bound = tuple[str, bool]  # (value, inclusive)
_STAMP = itemgetter(0)


class SObjectTable:
    def __init__(self, sobject: SObjectType) -> None:
        self.sobject = sobject
        self.rows: dict[str, Row] = {}
        # Ids are handed out in ascending order, so appending keeps these two in Id order.
        self.ids: list[str] = []
        self.by_id: list[Row] = []
        self.by_modstamp: list[ModstampEntry] = []
        self.delete_log: list[tuple[str, str]] = []  # (deletedDate, Id), oldest first
        self.next_sequence = 1

    def allocate_id(self, gap: int = 1) -> str:
        new_id = record_id(self.sobject.key_prefix, self.next_sequence)
        self.next_sequence += gap
        return new_id

    def load(self, rows: Iterable[Row], deletions: Sequence[tuple[str, str]]) -> None:
        """Bulk-load seeded rows (ascending ids) and their delete log in one pass."""
        for row in rows:
            self.rows[row[0]] = row
        self.ids = list(self.rows)
        self.by_id = list(self.rows.values())
        modstamp_at = self.sobject.modstamp_at
        self.by_modstamp = sorted((row[modstamp_at], row[0], row) for row in self.by_id)
        self.delete_log = sorted(deletions)

    def insert(self, row: Row) -> None:
        self.rows[row[0]] = row
        self.ids.append(row[0])
        self.by_id.append(row)
        bisect.insort(self.by_modstamp, self._modstamp_entry(row))

    def replace(self, old: Row, new: Row) -> None:
        entry = self._modstamp_entry(old)
        position = bisect.bisect_left(self.by_modstamp, entry[:2], key=lambda e: e[:2])
        if position < len(self.by_modstamp) and self.by_modstamp[position][2] is old:
            del self.by_modstamp[position]
        bisect.insort(self.by_modstamp, self._modstamp_entry(new))
        self.rows[new[0]] = new
        self.by_id[bisect.bisect_left(self.ids, new[0])] = new

    def log_deletion(self, deleted_date: str, deleted_id: str) -> None:
        bisect.insort(self.delete_log, (deleted_date, deleted_id))

    def get(self, row_id: str) -> Row | None:
        return self.rows.get(row_id)

    def modstamp_range(self, low: Bound | None, high: Bound | None) -> list[Row]:
        """Rows whose SystemModstamp lies within the bounds, oldest first, ties by Id."""
        start, stop = _slice(self.by_modstamp, low, high, _STAMP)
        return [entry[2] for entry in self.by_modstamp[start:stop]]

    def id_range(self, low: Bound | None, high: Bound | None) -> list[Row]:
        """Rows whose Id lies within the bounds, in Id order (always a new list)."""
        start, stop = _slice(self.ids, low, high, None)
        return self.by_id[start:stop]

    def deleted_between(self, start: str, end: str) -> list[tuple[str, str]]:
        """Delete-log entries from `start` (inclusive) to `end` (exclusive)."""
        low = bisect.bisect_left(self.delete_log, (start, ""))
        high = bisect.bisect_left(self.delete_log, (end, ""))
        return self.delete_log[low:high]

    def _modstamp_entry(self, row: Row) -> ModstampEntry:
        return (row[self.sobject.modstamp_at], row[0], row)


def _slice(
    index: Sequence[Any], low: Bound | None, high: Bound | None, key: Callable[[Any], str] | None
) -> tuple[int, int]:
    start, stop = 0, len(index)
    if low is not None:
        start = (bisect.bisect_left if low[1] else bisect.bisect_right)(index, low[0], key=key)
    if high is not None:
        stop = (bisect.bisect_right if high[1] else bisect.bisect_left)(index, high[0], key=key)
    return start, stop
