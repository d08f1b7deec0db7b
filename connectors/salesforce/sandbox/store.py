"""The records of one sObject, indexed so a query page costs O(page).

A row is a list of field values in describe order. Rows are never changed in place: a write
stores a new list, so an open query cursor keeps the snapshot it was built from.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from connectors.salesforce.sandbox.ids import record_id
from connectors.salesforce.sandbox.schema import SObjectType

Row = list[Any]
ModstampEntry = tuple[str, str, Row]  # (SystemModstamp, Id, row)
_STAMP = itemgetter(0)


class SObjectTable:
    def __init__(self, sobject: SObjectType) -> None:
        self.sobject = sobject
        # Ids are handed out in ascending order, so insertion order is Id order.
        self.rows: dict[str, Row] = {}
        self.by_modstamp: list[ModstampEntry] = []
        self.delete_log: list[tuple[str, str]] = []  # (deletedDate, Id), oldest first
        self.next_sequence = 1

    def allocate_id(self, gap: int = 1) -> str:
        new_id = record_id(self.sobject.key_prefix, self.next_sequence)
        self.next_sequence += gap
        return new_id

    def load(self, rows: Iterable[Row], deletions: Sequence[tuple[str, str]]) -> None:
        """Bulk-load seeded rows (ascending ids) and their delete log in one pass."""
        modstamp_at = self.sobject.modstamp_at
        for row in rows:
            self.rows[row[0]] = row
        self.by_modstamp = sorted((row[modstamp_at], row[0], row) for row in self.rows.values())
        self.delete_log = sorted(deletions)

    def insert(self, row: Row) -> None:
        self.rows[row[0]] = row
        self._index(row)

    def replace(self, old: Row, new: Row) -> None:
        self._unindex(old)
        self.rows[new[0]] = new
        self._index(new)

    def log_deletion(self, deleted_date: str, deleted_id: str) -> None:
        bisect.insort(self.delete_log, (deleted_date, deleted_id))

    def get(self, row_id: str) -> Row | None:
        return self.rows.get(row_id)

    def modstamp_range(
        self, low: str | None, high: str | None, *, low_inclusive: bool, high_inclusive: bool
    ) -> list[Row]:
        """Rows whose SystemModstamp lies between the bounds, oldest first, ties by Id."""
        index = self.by_modstamp
        if low is None:
            start = 0
        elif low_inclusive:
            start = bisect.bisect_left(index, low, key=_STAMP)
        else:
            start = bisect.bisect_right(index, low, key=_STAMP)
        if high is None:
            stop = len(index)
        elif high_inclusive:
            stop = bisect.bisect_right(index, high, key=_STAMP)
        else:
            stop = bisect.bisect_left(index, high, key=_STAMP)
        return [entry[2] for entry in index[start:stop]]

    def deleted_between(self, start: str, end: str) -> list[tuple[str, str]]:
        low = bisect.bisect_left(self.delete_log, (start, ""))
        high = bisect.bisect_left(self.delete_log, (end, ""))
        return self.delete_log[low:high]

    def _index(self, row: Row) -> None:
        bisect.insort(self.by_modstamp, (row[self.sobject.modstamp_at], row[0], row))

    def _unindex(self, row: Row) -> None:
        key = (row[self.sobject.modstamp_at], row[0])
        index = bisect.bisect_left(self.by_modstamp, key, key=lambda entry: (entry[0], entry[1]))
        if index < len(self.by_modstamp) and self.by_modstamp[index][2] is row:
            del self.by_modstamp[index]
