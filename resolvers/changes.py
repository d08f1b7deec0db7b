"""Following the change log: replay from a cursor, then live, with no gap or repeat at the seam.

The reader keeps one position, the last sequence number it handed out. Replay reads the log after it
up to where the reader joined the process's feed (`sync/cache/feed.py`); everything later arrives through
the feed's queue, and anything at or below the position is skipped: no gap, no repeat.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.kit.errors import BadInput, XkitError
from resolvers.context import Caller
from resolvers.ids import from_global_id
from resolvers.records import RecordRow
from sync.cache import changes
from sync.cache.changes import ChangeFilter
from sync.cache.feed import OVERFLOW, FeedItem
from sync.storage.ids import change_cursor

BATCH = 500


class CursorExpired(XkitError):
    code = "CURSOR_EXPIRED"


@dataclass(frozen=True)
class ChangeEvent:
    cursor: str
    seq: int
    op: str
    model: str | None
    stream: str
    remote_id: str
    connection_id: uuid.UUID
    changed_fields: list[str]
    occurred_at: datetime
    record: RecordRow | None
    # What the schema builds from the event, once for every subscriber it reaches.
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    # Events a replay read from the log at one moment share the loaders their executions read related
    # objects with (by platform): what they show is as fresh as the batch's own records, and a replay of
    # thousands of changes reads each connection once per batch, not once per change. None for a live
    # event: it reads everything afresh.
    read_together: dict[Any, Any] | None = field(default=None, compare=False, repr=False)


def encode_cursor(seq: int) -> str:
    return change_cursor(seq)  # the same encoding outbound webhooks put in their payloads


def decode_cursor(cursor: str, *, field: str = "after") -> int:
    type_name, local_id = from_global_id(cursor, field=field)
    if type_name != "Change" or not local_id.isdigit():
        raise BadInput(f"{cursor!r} is not a change cursor", field=field)
    return int(local_id)


async def start_position(caller: Caller, after: str | None, *, field: str = "after") -> int:
    """Where a reader of the change log starts: after its cursor, or at the log's end (live only).

    Every path that takes a change cursor starts here (subscriptions, webhook destinations, replays), so
    each refuses the same two cursors: one older than the log keeps (its changes are gone), and one beyond
    the newest change (not issued by this log, e.g. saved before the database was restored or recreated;
    accepted, it would silently skip every change until the log caught up with it)."""
    async with caller.store.reader.connect() as conn:
        latest = await changes.latest(conn)
        if after is None:
            return latest
        position = decode_cursor(after, field=field)
        pruned = await changes.horizon(conn)
    if position < pruned:
        raise CursorExpired(
            "this cursor is older than the change log keeps; read the current state again (queries), "
            "then subscribe without `after`",
            field=field,
        )
    if position > latest:
        raise BadInput(
            f"{after!r} is beyond the newest change in the log, so this API did not issue it (was the database "
            f"restored or recreated?); read the current state again (queries), then follow changes from now on "
            f"(leave `{field}` out)",
            field=field,
        )
    return position


async def follow(caller: Caller, position: int, where: ChangeFilter) -> AsyncIterator[ChangeEvent]:
    """Every change after `position`, forever: from the log until caught up with this process's feed,
    then from the feed; back to the log whenever the feed drops us for being slow."""
    feed = caller.services.feed
    while True:
        listener = await feed.join(caller.platform_id, where)
        try:
            while position < listener.joined_at:  # replay, straight from the log
                async with caller.store.reader.connect() as conn:
                    rows = await changes.read(
                        conn, caller.platform_id, position, BATCH, where, through=listener.joined_at
                    )
                    cached = await changes.record_rows(conn, [row.record_id for row in rows])
                read_together: dict[Any, Any] = {}
                for row in rows:
                    position = row.seq
                    yield _event(row, cached.get(row.record_id), read_together)
                if len(rows) < BATCH:
                    break
                await asyncio.sleep(0)  # a long replay still lets other subscribers run
            while True:  # live
                item = await listener.queue.get()
                if item is OVERFLOW:
                    break
                if item.change.seq <= position:
                    continue
                position = item.change.seq
                yield _shared_event(item)
        finally:
            feed.leave(listener)


def _shared_event(item: FeedItem) -> ChangeEvent:
    """Every live subscriber gets the same event object for a change, so what is built from it is built once."""
    event = item.derived.get(ChangeEvent)
    if event is None:
        event = item.derived[ChangeEvent] = _event(item.change, item.record)
    return event


def _event(row: Any, record: Any, read_together: dict[Any, Any] | None = None) -> ChangeEvent:
    return ChangeEvent(
        cursor=encode_cursor(row.seq),
        seq=row.seq,
        op=row.op,
        model=row.model,
        stream=row.stream,
        remote_id=row.remote_id,
        connection_id=row.connection_id,
        changed_fields=list(row.changed_fields or []),
        occurred_at=row.occurred_at,
        record=RecordRow._make(record) if record is not None else None,
        read_together=read_together,
    )
