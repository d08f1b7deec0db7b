"""One reader of the change log per process, fanning out to every live subscriber in memory.

A thousand subscribers must not mean a thousand queries per append: the feed reads each new change
once (with the record it points at) and hands it to the subscribers whose filters match, found through
an index by connection, end user and platform rather than by testing every subscriber. A subscriber
that is behind (replaying from a cursor) reads the log itself until it reaches the point where it
joined the feed, then takes the rest from its queue; a subscriber too slow for its queue is dropped back
to reading for itself. Either way it sees every change once and in order: it tracks the last sequence
number it handed out and skips anything at or below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from sync.cache import changes
from sync.cache.changes import ChangeFilter
from sync.storage.store import Store
from sync.storage.tables import changes as change_table
from sync.storage.tables import end_users

log = logging.getLogger(__name__)

FEED_BATCH = 1000
QUEUE_LIMIT = 10_000
IDLE_RECHECK_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class FeedItem:
    change: Any  # a row of changes.CHANGE_COLUMNS plus platform_id and external_user_id
    record: Any  # the cached record (RECORD_COLUMNS) or None
    # What the item's consumers derive from it (the event, its GraphQL object), built once for all of them.
    derived: dict[Any, Any] = field(default_factory=dict)


OVERFLOW = FeedItem(None, None)  # "you fell behind: read the log yourself from your position"


@dataclass(eq=False)
class Listener:
    platform_id: uuid.UUID
    where: ChangeFilter
    joined_at: int  # every change after this reaches the queue
    queue: asyncio.Queue[FeedItem] = field(default_factory=asyncio.Queue)
    filed: bool = False  # in the feed's index (until it leaves, or is dropped for being slow)

    def index_keys(self) -> list[Hashable]:
        """Where the feed files this listener: under each connection it follows, else each end user,
        else its platform. A change is offered only to the listeners filed under its own keys, so a
        thousand subscribers each following one end user cost a lookup per change, not a thousand tests."""
        if self.where.connection_ids is not None:
            return [("connection", c) for c in self.where.connection_ids]
        if self.where.external_user_ids is not None:
            return [("end user", self.platform_id, e) for e in self.where.external_user_ids]
        return [("platform", self.platform_id)]


def _row_keys(row: Any) -> tuple[Hashable, ...]:
    return (
        ("connection", row.connection_id),
        ("end user", row.platform_id, row.external_id),
        ("platform", row.platform_id),
    )


class ChangeFeed:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.position: int | None = None
        self.listeners: dict[Hashable, set[Listener]] = {}
        self.listening = 0
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def join(self, platform_id: uuid.UUID, where: ChangeFilter) -> Listener:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await self._started.wait()
        assert self.position is not None
        listener = Listener(platform_id, where, self.position)
        for key in listener.index_keys():
            self.listeners.setdefault(key, set()).add(listener)
        listener.filed = True
        self.listening += 1
        return listener

    def leave(self, listener: Listener) -> None:
        if not listener.filed:
            return  # left already (dropped for being slow, then left)
        for key in listener.index_keys():
            filed = self.listeners[key]
            filed.discard(listener)
            if not filed:
                del self.listeners[key]
        listener.filed = False
        self.listening -= 1

    def _listeners_of(self, row: Any) -> list[Listener]:
        found: list[Listener] = []
        for key in _row_keys(row):
            filed = self.listeners.get(key)
            if filed:
                found.extend(filed)
        return found

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        bus = self.store.changes_appended
        while self.position is None:
            try:
                async with self.store.reader.connect() as conn:
                    self.position = await changes.latest(conn)
            except Exception:  # the database is not reachable yet: subscribers wait rather than fail
                log.warning("the change feed cannot read the log yet", exc_info=True)
                await asyncio.sleep(1.0)
        self._started.set()
        while True:
            ticket = bus.ticket()
            try:
                read = await self._read_more()
            except Exception:  # the database went away for a moment: listeners wait, nobody loses a change
                log.warning("the change feed could not read the log", exc_info=True)
                read = 0
            if read < FEED_BATCH:
                await bus.wait(ticket, IDLE_RECHECK_SECONDS)

    async def _read_more(self) -> int:
        assert self.position is not None
        async with self.store.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(*changes.CHANGE_COLUMNS, change_table.c.platform_id, end_users.c.external_id)
                    .join(end_users, end_users.c.id == change_table.c.end_user_id, isouter=True)
                    .where(change_table.c.seq > self.position)
                    .order_by(change_table.c.seq)
                    .limit(FEED_BATCH)
                )
            ).all()
            wanted = [row.record_id for row in rows if self.listening]
            cached = await changes.record_rows(conn, wanted)
        for row in rows:
            item = FeedItem(row, cached.get(row.record_id))
            for listener in self._listeners_of(row):
                if listener.platform_id != row.platform_id or not listener.where.accepts(row):
                    continue
                if listener.queue.qsize() >= QUEUE_LIMIT:
                    self.leave(listener)
                    listener.queue.put_nowait(OVERFLOW)
                else:
                    listener.queue.put_nowait(item)
            self.position = row.seq
        return len(rows)
