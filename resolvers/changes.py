"""Following the change log: replay from a cursor, then live, with no gap or repeat at the seam.

The reader keeps one position, the last sequence number it handed out. Replay reads the log after it
up to where the reader joined the process's feed (`sync/feed.py`); everything later arrives through
the feed's queue, and anything at or below the position is skipped: no gap, no repeat.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.kit.errors import BadInput, XkitError
from resolvers.context import Caller
from resolvers.ids import from_global_id, to_global_id
from resolvers.records import RecordRow
from sync import changes
from sync.changes import ChangeFilter
from sync.feed import OVERFLOW

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


def encode_cursor(seq: int) -> str:
    return to_global_id("Change", seq)


def decode_cursor(cursor: str) -> int:
    type_name, local_id = from_global_id(cursor, field="after")
    if type_name != "Change" or not local_id.isdigit():
        raise BadInput(f"{cursor!r} is not a change cursor", field="after")
    return int(local_id)


async def start_position(caller: Caller, after: str | None) -> int:
    """Where a reader starts: after its cursor, or at the log's end (live only)."""
    async with caller.store.reader.connect() as conn:
        if after is None:
            return await changes.latest(conn)
        position = decode_cursor(after)
        pruned = await changes.horizon(conn)
    if position < pruned:
        raise CursorExpired(
            "this cursor is older than the change log keeps; read the current state again (queries), "
            "then subscribe without `after`",
            field="after",
        )
    return position


async def follow(caller: Caller, position: int, where: ChangeFilter) -> AsyncIterator[ChangeEvent]:
    """Every change after `position`, forever: from the log until caught up with this process's feed,
    then from the feed; back to the log whenever the feed drops us for being slow."""
    feed = caller.services.feed
    while True:
        listener = await feed.join(caller.platform_id, where.accepts)
        try:
            while position < listener.joined_at:  # replay, straight from the log
                async with caller.store.reader.connect() as conn:
                    rows = await changes.read(
                        conn, caller.platform_id, position, BATCH, where, through=listener.joined_at
                    )
                    cached = await changes.record_rows(conn, [row.record_id for row in rows])
                for row in rows:
                    position = row.seq
                    yield _event(row, cached.get(row.record_id))
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
                yield _event(item.change, item.record)
        finally:
            feed.leave(listener)


def _event(row: Any, record: Any) -> ChangeEvent:
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
    )
