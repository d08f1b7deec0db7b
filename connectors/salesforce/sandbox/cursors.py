"""Server-side query cursors behind `nextRecordsUrl`.

A cursor holds the rows its query selected (a snapshot: rows are never changed in place), so each
further page is a slice. As on Salesforce since API v56 there is no cap on open cursors; a cursor
lives two days after its query ran. The locator's `-N` suffix is the offset the next page starts at.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.salesforce.sandbox.ids import record_id
from connectors.salesforce.sandbox.store import Row

CURSOR_LIFETIME_S = 2 * 86_400.0
# Not a Salesforce limit: it bounds the sandbox's memory (8 bytes a held row) when clients
# abandon queries; the oldest cursors go first.
MAX_HELD_ROWS = 5_000_000
QUERY_LOCATOR_PREFIX = "01g"
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200


@dataclass
class QueryCursor:
    locator: str
    rows: list[Row]
    render: Callable[[Row], dict[str, Any]]
    batch_size: int
    opened_at: float


class CursorStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cursors: OrderedDict[str, QueryCursor] = OrderedDict()
        self._held_rows = 0
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()

    def open(self, rows: list[Row], render: Callable[[Row], dict[str, Any]], batch_size: int) -> QueryCursor:
        with self._lock:
            self._forget_expired()
            while self._cursors and self._held_rows + len(rows) > MAX_HELD_ROWS:
                self._forget_oldest()
            cursor = QueryCursor(
                record_id(QUERY_LOCATOR_PREFIX, next(self._sequence)), rows, render, batch_size, self._clock()
            )
            self._cursors[cursor.locator] = cursor
            self._held_rows += len(rows)
            return cursor

    def get(self, locator: str) -> QueryCursor | None:
        with self._lock:
            self._forget_expired()
            return self._cursors.get(locator)

    def _forget_expired(self) -> None:
        horizon = self._clock() - CURSOR_LIFETIME_S
        while self._cursors and next(iter(self._cursors.values())).opened_at <= horizon:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        _, cursor = self._cursors.popitem(last=False)
        self._held_rows -= len(cursor.rows)


def batch_size_from(header: str | None, default: int = DEFAULT_BATCH_SIZE) -> int:
    """The batch size a `Sforce-Query-Options: batchSize=N` header asks for, within 200..2000."""
    if not header:
        return default
    for option in header.split(","):
        name, _, value = option.partition("=")
        if name.strip() == "batchSize" and value.strip().isdigit():
            return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, int(value)))
    return default
