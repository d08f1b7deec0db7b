"""Sync progress for subscribers: one poll of a connection's sync runs per process, shared by every
subscriber watching that connection, so a thousand subscribers cost one query per interval."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row

from sync.storage.store import Store, utcnow
from sync.storage.tables import sync_runs

# A run is inserted as running when it starts; one that starts and finishes between two polls is still
# seen by the next poll as long as it started less than this before the previous one.
LATE_COMMIT_GRACE = timedelta(seconds=30)


class _RunPoll:
    def __init__(self, store: Store, platform_id: uuid.UUID, connection_id: uuid.UUID, interval: float) -> None:
        self.store = store
        self.platform_id = platform_id
        self.connection_id = connection_id
        self.interval = interval
        self.subscribers = 0
        self.rows: list[Row[Any]] = []
        self.generation = 0
        self.failure: BaseException | None = None
        self.changed = asyncio.Condition()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        since = utcnow()
        while True:
            polled_at = utcnow()
            try:
                rows = await self._read(since)
            except Exception as exc:
                self.failure = exc
                rows = []
            async with self.changed:
                self.rows, self.generation = rows, self.generation + 1
                self.changed.notify_all()
            if self.failure is not None:
                return
            since = polled_at - LATE_COMMIT_GRACE
            await asyncio.sleep(self.interval)

    async def _read(self, since: datetime) -> list[Row[Any]]:
        async with self.store.reader.connect() as conn:
            result = await conn.execute(
                select(sync_runs)
                .where(
                    sync_runs.c.platform_id == self.platform_id,
                    sync_runs.c.connection_id == self.connection_id,
                    (sync_runs.c.status == "running") | (sync_runs.c.started_at >= since),
                )
                .order_by(sync_runs.c.id)
            )
            return list(result.all())

    async def after(self, generation: int) -> tuple[list[Row[Any]], int]:
        async with self.changed:
            await self.changed.wait_for(lambda: self.generation > generation)
            if self.failure is not None:
                raise self.failure
            return self.rows, self.generation


class RunWatchers:
    """The process's polls of sync runs, one per watched connection, stopped when its last subscriber leaves."""

    def __init__(self, store: Store, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._polls: dict[tuple[uuid.UUID, uuid.UUID], _RunPoll] = {}

    def __len__(self) -> int:
        return len(self._polls)

    def watching(self, platform_id: uuid.UUID, connection_id: uuid.UUID) -> int:
        """Subscribers sharing the poll of this connection."""
        poll = self._polls.get((platform_id, connection_id))
        return poll.subscribers if poll is not None else 0

    async def watch(self, platform_id: uuid.UUID, connection_id: uuid.UUID) -> AsyncIterator[Row[Any]]:
        """Runs as they start, advance (pages and records) and finish; runs already over when the watch
        begins are not reported."""
        key = (platform_id, connection_id)
        poll = self._polls.get(key)
        if poll is None or poll.failure is not None:
            poll = self._polls[key] = _RunPoll(self.store, platform_id, connection_id, self.interval)
        poll.subscribers += 1
        seen = {row.id: _state(row) for row in poll.rows if row.status != "running"}
        generation = poll.generation if poll.generation == 0 else poll.generation - 1
        try:
            while True:
                rows, generation = await poll.after(generation)
                for row in rows:
                    state = _state(row)
                    if seen.get(row.id) != state:
                        seen[row.id] = state
                        yield row
        finally:
            poll.subscribers -= 1
            if poll.subscribers == 0:
                poll.task.cancel()
                if self._polls.get(key) is poll:
                    del self._polls[key]


def _state(row: Row[Any]) -> tuple[Any, ...]:
    return (row.status, row.pages, row.records, row.changed)
