"""What the search API sees: HubSpot indexes writes for search asynchronously, so a write shows in search
results only some time after the list, get and batch-read APIs show it (HubSpot's search guide: newly
created or updated objects may take a few moments to appear; Okta's HubSpot connector advises waiting
10 s after a create and 60 s after an update before searching). Until then search shows the version it
indexed before, or nothing for a new record."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from connectors.hubspot.sandbox.store import ObjectStore, Record


class SearchIndex:
    """Search's copy of the records, `lag()` seconds behind the live stores. With no lag it is the live
    stores themselves; the copy is made when a write first meets a lag, and dropped once the lag is off and
    every queued write has been indexed."""

    def __init__(self, live: dict[str, ObjectStore], lag: Callable[[], float]) -> None:
        self.live = live
        self.lag = lag
        self._copy: dict[str, ObjectStore] | None = None
        # (visible from, object type, the record as written), in write order
        self._queued: deque[tuple[float, str, Record]] = deque()

    def before_write(self) -> None:
        """Called before a write changes the live stores: a lag that is on starts from what they hold now."""
        if self._copy is None and self.lag() > 0:
            self._copy = {name: _copy_of(store) for name, store in self.live.items()}

    def written(self, object_type: str, record: Record) -> None:
        """Called after a write: it reaches search `lag()` seconds from now."""
        if self._copy is not None:
            self._queued.append((time.monotonic() + max(self.lag(), 0.0), object_type, _snapshot(record)))

    def store(self, object_type: str) -> ObjectStore:
        """The records a search runs over now."""
        if self._copy is None:
            return self.live[object_type]
        lag_off = self.lag() <= 0
        now = time.monotonic()
        while self._queued and (lag_off or self._queued[0][0] <= now):
            _, kind, snapshot = self._queued.popleft()
            _index(self._copy[kind], snapshot)
        if lag_off:
            self._copy = None
            return self.live[object_type]
        return self._copy[object_type]


def _snapshot(record: Record) -> Record:
    copy = Record(record.id, dict(record.properties), record.created_ms, record.updated_ms)
    copy.archived_ms = record.archived_ms
    return copy


def _copy_of(store: ObjectStore) -> ObjectStore:
    copy = ObjectStore(store.object_type, store.next_id)
    copy.load([_snapshot(store.records[i]) for i in store.active_ids])
    return copy


def _index(store: ObjectStore, snapshot: Record) -> None:
    current = store.records.get(snapshot.id)
    if current is None:
        if not snapshot.archived:
            store.insert(snapshot)
    elif snapshot.archived:
        if not current.archived:
            store.archive(current, snapshot.archived_ms or snapshot.updated_ms)
    else:
        store.replace(current, snapshot.properties, snapshot.updated_ms)
