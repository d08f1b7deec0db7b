"""The change log: every create, update and delete applied to the cache, in commit order.

Changes are appended by the cache writers (`sync/cache/records.py`) in the same transaction as the records
they describe, whoever wrote them: a sync page, a provider webhook, a writeback.

**No holes.** A reader resumes with `seq > N`. On PostgreSQL a plain sequence does not make that safe:
two transactions can take seq 10 and 11 and commit 11 first, and a reader that saw 11 would skip 10
for good. So every appender takes one transaction-level advisory lock just before inserting its rows,
and holds it until it commits: sequence numbers are handed out in commit order, and whatever a reader
can see is a gap-free prefix of the log. The lock is held only from the append to the commit (the
append is the last thing a transaction does). SQLite has one writer at a time, so it is already so.

**Wake-ups.** The log is the source of truth; a notification only says "read". On PostgreSQL each
appending transaction sends `NOTIFY xkit_changes` (delivered at commit to every listening process); in
one process, `ChangeBus` wakes the waiting readers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sync.storage.store import Store, utcnow
from sync.storage.tables import RECORD_COLUMNS, change_log_horizon, changes, end_users, records

CREATED, UPDATED, DELETED = "CREATED", "UPDATED", "DELETED"
CHANNEL = "xkit_changes"
# One lock for every appender, taken per transaction ("xkit" in ASCII).
APPEND_LOCK = 0x786B6974
DEFAULT_RETENTION = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Change:
    """One change about to be appended."""

    record_id: int
    remote_id: str
    op: str
    changed_fields: list[str]


CUSTOM_FIELDS_PREFIX = "customFields."


def changed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    old_custom: dict[str, Any] | None = None,
    new_custom: dict[str, Any] | None = None,
) -> list[str]:
    """The common members whose values differ, and the custom fields (`customFields.tier`); for a new
    record, those that hold a value. A custom field absent and one that is null are the same."""
    new = new or {}
    custom = new_custom or {}
    if old is None:
        filled = [k for k, v in new.items() if v is not None and v != "" and v != []]
        filled += [CUSTOM_FIELDS_PREFIX + k for k, v in custom.items() if v is not None]
        return sorted(filled)
    was = old_custom or {}
    differ = [k for k in old.keys() | new.keys() if old.get(k) != new.get(k)]
    differ += [CUSTOM_FIELDS_PREFIX + k for k in was.keys() | custom.keys() if was.get(k) != custom.get(k)]
    return sorted(differ)


async def append(
    conn: AsyncConnection,
    *,
    platform_id: uuid.UUID,
    connection_id: uuid.UUID,
    end_user_id: uuid.UUID,
    model: str | None,
    stream: str,
    batch: Sequence[Change],
    now: datetime,
) -> None:
    """Append changes as the last statement of the caller's transaction (see "No holes")."""
    if not batch:
        return
    if conn.dialect.name != "postgresql":
        await conn.execute(
            insert(changes),
            [
                {
                    "platform_id": platform_id,
                    "connection_id": connection_id,
                    "end_user_id": end_user_id,
                    "model": model,
                    "stream": stream,
                    "record_id": change.record_id,
                    "remote_id": change.remote_id,
                    "op": change.op,
                    "changed_fields": change.changed_fields,
                    "occurred_at": now,
                }
                for change in batch
            ],
        )
        return
    await conn.execute(
        _PG_APPEND,
        {
            "key": APPEND_LOCK,
            "channel": CHANNEL,
            "platform_id": platform_id,
            "connection_id": connection_id,
            "end_user_id": end_user_id,
            "model": model,
            "stream": stream,
            "occurred_at": now,
            "record_ids": [c.record_id for c in batch],
            "remote_ids": [c.remote_id for c in batch],
            "ops": [c.op for c in batch],
            "fields": [orjson.dumps(c.changed_fields).decode() for c in batch],
        },
    )


_PG_APPEND = text(
    """
    WITH held AS (SELECT pg_advisory_xact_lock(:key)),
         told AS (SELECT pg_notify(:channel, ''))
    INSERT INTO changes (platform_id, connection_id, end_user_id, model, stream, record_id, remote_id, op,
                         changed_fields, occurred_at)
    SELECT CAST(:platform_id AS uuid), CAST(:connection_id AS uuid), CAST(:end_user_id AS uuid),
           CAST(:model AS varchar), CAST(:stream AS varchar), batch.record_id, batch.remote_id, batch.op,
           CAST(batch.fields AS jsonb), CAST(:occurred_at AS timestamptz)
    FROM held, told,
         unnest(CAST(:record_ids AS bigint[]), CAST(:remote_ids AS text[]), CAST(:ops AS text[]),
                CAST(:fields AS text[])) AS batch(record_id, remote_id, op, fields)
    """
)


@dataclass(frozen=True)
class ChangeFilter:
    models: tuple[str, ...] | None = None
    connection_ids: tuple[uuid.UUID, ...] | None = None
    external_user_ids: tuple[str, ...] | None = None

    def accepts(self, row: Any) -> bool:
        """The same test as `read` applies in SQL, for a row that also carries `external_id`."""
        return (
            (self.models is None or row.model in self.models)
            and (self.connection_ids is None or row.connection_id in self.connection_ids)
            and (self.external_user_ids is None or row.external_id in self.external_user_ids)
        )


CHANGE_COLUMNS = (
    changes.c.seq,
    changes.c.connection_id,
    changes.c.model,
    changes.c.stream,
    changes.c.record_id,
    changes.c.remote_id,
    changes.c.op,
    changes.c.changed_fields,
    changes.c.occurred_at,
)


async def read(
    conn: AsyncConnection,
    platform_id: uuid.UUID,
    after: int,
    limit: int,
    where: ChangeFilter,
    *,
    through: int | None = None,
) -> list[Any]:
    """Changes of a platform after `after` (and up to `through`), oldest first (rows of CHANGE_COLUMNS)."""
    stmt = select(*CHANGE_COLUMNS).where(changes.c.platform_id == platform_id, changes.c.seq > after)
    if through is not None:
        stmt = stmt.where(changes.c.seq <= through)
    if where.models is not None:
        stmt = stmt.where(changes.c.model.in_(where.models))
    if where.connection_ids is not None:
        stmt = stmt.where(changes.c.connection_id.in_(where.connection_ids))
    if where.external_user_ids is not None:
        users = select(end_users.c.id).where(
            end_users.c.platform_id == platform_id, end_users.c.external_id.in_(where.external_user_ids)
        )
        stmt = stmt.where(changes.c.end_user_id.in_(users))
    return list((await conn.execute(stmt.order_by(changes.c.seq).limit(limit))).all())


async def latest(conn: AsyncConnection) -> int:
    """The newest sequence number anyone can see (0 for an empty log)."""
    value = (await conn.execute(select(func.max(changes.c.seq)))).scalar()
    return int(value) if value is not None else await horizon(conn)


async def horizon(conn: AsyncConnection) -> int:
    """Every change up to this sequence number has been pruned."""
    value = (await conn.execute(select(change_log_horizon.c.pruned_through))).scalar()
    return int(value or 0)


async def prune(store: Store, retention: timedelta = DEFAULT_RETENTION) -> int:
    """Drop changes older than the retention and remember how far the log now starts."""
    cutoff = utcnow() - retention
    async with store.engine.begin() as conn:
        last = (await conn.execute(select(func.max(changes.c.seq)).where(changes.c.occurred_at < cutoff))).scalar()
        if last is None:
            return 0
        result = await conn.execute(delete(changes).where(changes.c.seq <= last))
        moved = await conn.execute(update(change_log_horizon).values(pruned_through=last))
        if moved.rowcount == 0:
            await conn.execute(insert(change_log_horizon).values(id=1, pruned_through=last))
    return int(result.rowcount or 0)


async def record_rows(conn: AsyncConnection, record_ids: Sequence[int]) -> dict[int, Any]:
    """The cached records changes point at, by id (their current state)."""
    if not record_ids:
        return {}
    rows = await conn.execute(select(*RECORD_COLUMNS).where(records.c.id.in_(set(record_ids))))
    return {row.id: row for row in rows}
