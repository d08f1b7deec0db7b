"""The record cache: what the syncer writes, keyed by (connection, stream, remote id)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.kit.records import RemoteRecord
from sync.tables import records


@dataclass(frozen=True)
class StreamTarget:
    """Where a stream's records go."""

    platform_id: uuid.UUID
    connection_id: uuid.UUID
    end_user_id: uuid.UUID
    stream: str
    model: str | None


def content_hash(raw_json: bytes, common: dict[str, Any] | None) -> str:
    digest = hashlib.blake2b(raw_json, digest_size=16)
    digest.update(b"\0")
    digest.update(orjson.dumps(common, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def _row(target: StreamTarget, record: RemoteRecord, now: datetime) -> dict[str, Any]:
    raw_json = orjson.dumps(record.raw, option=orjson.OPT_SORT_KEYS)
    return {
        "platform_id": target.platform_id,
        "connection_id": target.connection_id,
        "end_user_id": target.end_user_id,
        "stream": target.stream,
        "model": target.model,
        "remote_id": record.remote_id,
        "common": record.common,
        "raw": raw_json.decode(),
        "content_hash": content_hash(raw_json, record.common),
        "remote_created_at": record.created_at,
        "remote_updated_at": record.updated_at,
        "deleted": False,
        "deleted_at": None,
        "synced_at": now,
    }


async def upsert_records(
    conn: AsyncConnection, target: StreamTarget, batch: Sequence[RemoteRecord], now: datetime
) -> int:
    """Insert new records and rewrite changed ones; unchanged ones (same hash) are left alone.

    Returns how many rows really changed.
    """
    if not batch:
        return 0
    # One statement may not touch a row twice, and a page can repeat an id (search restarts overlap).
    latest = {record.remote_id: record for record in batch}
    rows = [_row(target, record, now) for record in latest.values()]
    result = await conn.execute(_upsert_statement(conn.dialect.name), rows)
    return len(result.all())


@cache
def _upsert_statement(dialect: str) -> Any:
    """Built once per dialect: the statement has no values of its own (rows come as executemany)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    base = insert(records)
    excluded = base.excluded
    return base.on_conflict_do_update(
        index_elements=[records.c.connection_id, records.c.stream, records.c.remote_id],
        set_={
            "common": excluded.common,
            "raw": excluded.raw,
            "content_hash": excluded.content_hash,
            "remote_created_at": excluded.remote_created_at,
            "remote_updated_at": excluded.remote_updated_at,
            "deleted": excluded.deleted,
            "deleted_at": excluded.deleted_at,
            "synced_at": excluded.synced_at,
            "model": excluded.model,
        },
        where=or_(records.c.content_hash != excluded.content_hash, records.c.deleted.is_(True)),
    ).returning(records.c.id)


async def mark_deleted(
    conn: AsyncConnection, target: StreamTarget, tombstones: Sequence[RemoteRecord], now: datetime
) -> int:
    """Flag cached records the provider reports deleted; ids we never cached are not worth storing."""
    if not tombstones:
        return 0
    stmt = (
        update(records)
        .where(
            and_(
                records.c.connection_id == target.connection_id,
                records.c.stream == target.stream,
                records.c.remote_id == bindparam("rid"),
                records.c.deleted.is_(False),
            )
        )
        .values(deleted=True, deleted_at=bindparam("deleted_at_value"), synced_at=now)
        .execution_options(synchronize_session=False)
    )
    params = [{"rid": t.remote_id, "deleted_at_value": t.deleted_at or now} for t in tombstones]
    result = await conn.execute(stmt, params)
    return max(result.rowcount, 0)
