"""The record cache: what the syncer writes, keyed by (connection, stream, remote id)."""

from __future__ import annotations

import hashlib
import uuid
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

import orjson
from sqlalchemy import and_, bindparam, delete, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.kit.declaration import Stream
from connectors.kit.records import DEFAULT_MAX_RECORD_BYTES, CustomIndexEntry, RemoteRecord, truncated
from sync.cache import changes
from sync.cache.changes import CREATED, DELETED, UPDATED, Change, changed_fields
from sync.storage.tables import RECORD_COLUMNS, connections, record_custom_values, records


@dataclass(frozen=True)
class StreamTarget:
    """Where a stream's records go."""

    platform_id: uuid.UUID
    connection_id: uuid.UUID
    end_user_id: uuid.UUID
    stream: str
    model: str | None
    # A record whose JSON is larger is stored truncated (`connectors.kit.records.truncated`).
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    # The connection's field-mapping revision the records were derived at (`StreamContext.overlay`): a
    # page derived at an older one than the connection now has is refused (`StaleOverlay`), so a run that
    # races a mapping change never stores what the re-derive already replaced. None: not checked.
    overlay_revision: int | None = None

    @classmethod
    def of(cls, connection: Any, stream: Stream, *, max_record_bytes: int) -> StreamTarget:
        """The target of one stream of a connection (a `connections` row)."""
        return cls(
            connection.platform_id,
            connection.id,
            connection.end_user_id,
            stream.name,
            stream.model_name,
            max_record_bytes,
        )


class StaleOverlay(Exception):
    """Records derived with field mappings older than the connection's: read again with the new ones."""


def content_hash(raw_json: bytes, common_json: bytes, custom_json: bytes | None = None) -> str:
    digest = hashlib.blake2b(raw_json, digest_size=16)
    digest.update(b"\0")
    digest.update(common_json)
    if custom_json is not None:  # records without custom values keep the hash they always had
        digest.update(b"\0")
        digest.update(custom_json)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    remote_id: str
    common: dict[str, Any] | None
    common_json: str
    raw_json: str
    content_hash: str
    created_at: datetime | None
    updated_at: datetime
    # The size of the record as received, when it was too large and is stored truncated.
    truncated_from: int | None = None
    custom: dict[str, Any] | None = None
    custom_json: str | None = None
    custom_index: tuple[CustomIndexEntry, ...] = ()


def encode(record: RemoteRecord, now: datetime, max_bytes: int) -> EncodedRecord:
    raw_json = orjson.dumps(record.raw, option=orjson.OPT_SORT_KEYS)
    common_json = orjson.dumps(record.common, option=orjson.OPT_SORT_KEYS)
    custom_json = _custom_json(record.custom)
    truncated_from = None
    size = len(raw_json) + len(common_json) + len(custom_json or b"")
    if size > max_bytes:
        truncated_from = size
        digest = content_hash(raw_json, common_json, custom_json)
        record = truncated(record, truncated_from, max_bytes, digest)
        raw_json = orjson.dumps(record.raw, option=orjson.OPT_SORT_KEYS)
        common_json = orjson.dumps(record.common, option=orjson.OPT_SORT_KEYS)
        custom_json = _custom_json(record.custom)
        if len(raw_json) + len(common_json) + len(custom_json or b"") > max_bytes:  # too many fields, even cut
            record.common = None
            record.custom = None
            common_json = orjson.dumps(None)
            custom_json = None
    return EncodedRecord(
        remote_id=record.remote_id,
        common=record.common,
        common_json=common_json.decode(),
        raw_json=raw_json.decode(),
        content_hash=content_hash(raw_json, common_json, custom_json),
        created_at=record.created_at,
        # Ordering and keyset paging need a time; without the provider's, it is when the change was seen.
        updated_at=record.updated_at or now,
        truncated_from=truncated_from,
        custom=record.custom,
        custom_json=custom_json.decode() if custom_json is not None else None,
        custom_index=tuple(record.custom_index) if record.custom is not None else (),
    )


def _custom_json(custom: dict[str, Any] | None) -> bytes | None:
    return orjson.dumps(custom, option=orjson.OPT_SORT_KEYS) if custom is not None else None


def _target_values(target: StreamTarget) -> dict[str, Any]:
    return {
        "platform_id": target.platform_id,
        "connection_id": target.connection_id,
        "end_user_id": target.end_user_id,
        "stream": target.stream,
        "model": target.model,
    }


def _row(target: StreamTarget, record: EncodedRecord, now: datetime) -> dict[str, Any]:
    return {
        **_target_values(target),
        "remote_id": record.remote_id,
        "common": record.common,
        "custom": record.custom,
        "raw": record.raw_json,
        "content_hash": record.content_hash,
        "remote_created_at": record.created_at,
        "remote_updated_at": record.updated_at,
        "deleted": False,
        "deleted_at": None,
        "synced_at": now,
    }


@dataclass(frozen=True)
class Upserted:
    changed: int
    # Remote ids of the records too large to store whole, stored truncated.
    truncated: list[str]


async def upsert_records(
    conn: AsyncConnection, target: StreamTarget, batch: Sequence[RemoteRecord], now: datetime
) -> Upserted:
    """Insert new records and rewrite changed ones; unchanged ones (same hash) are left alone, and so are
    ones we hold a newer copy of (a sync page fetched before a writeback stored the provider's answer).
    Every row that really changed is appended to the change log in the same transaction.
    """
    if not batch:
        return Upserted(0, [])
    await check_overlay_revision(conn, target)
    # One statement may not touch a row twice, and a page can repeat an id (search restarts overlap).
    latest = {record.remote_id: encode(record, now, target.max_record_bytes) for record in batch}
    before = await _previous(conn, target, list(latest))
    if conn.dialect.name == "postgresql":
        result = await conn.execute(_PG_UPSERT, _pg_params(target, list(latest.values()), now))
    else:
        statement = _upsert_statement(conn.dialect.name, (records.c.id, records.c.remote_id))
        result = await conn.execute(statement, [_row(target, r, now) for r in latest.values()])
    written = result.all()
    entries = [(row.id, latest[row.remote_id], before.get(row.remote_id)) for row in written]
    await replace_custom_index(
        conn,
        target,
        [(record_id, record.custom_index) for record_id, record, old in entries if _custom_touched(record, old)],
    )
    await _log(conn, target, entries, now)
    return Upserted(len(written), [r.remote_id for r in latest.values() if r.truncated_from is not None])


async def check_overlay_revision(conn: AsyncConnection, target: StreamTarget) -> None:
    """Refuse records derived at a field-mapping revision the connection has moved past. On PostgreSQL the
    connection's row is share-locked until the caller commits: a mapping change (which bumps the revision)
    waits for this write, and the re-derive it schedules then sees these records."""
    if target.overlay_revision is None:
        return
    current = select(connections.c.field_mapping_revision).where(connections.c.id == target.connection_id)
    if conn.dialect.name == "postgresql":
        current = current.with_for_update(read=True)
    revision = (await conn.execute(current)).scalar()
    if revision is not None and revision != target.overlay_revision:
        raise StaleOverlay(
            f"field mappings moved to revision {revision} while records were derived at {target.overlay_revision}"
        )


def _custom_touched(record: EncodedRecord, old: Any) -> bool:
    """Whether a written record's index rows may differ from what is stored."""
    return record.custom is not None or (old is not None and old.custom is not None)


async def replace_custom_index(
    conn: AsyncConnection, target: StreamTarget, entries: Sequence[tuple[int, Sequence[CustomIndexEntry]]]
) -> None:
    """Replace these records' rows in `record_custom_values` (what custom field filters read)."""
    if not entries or target.model is None:
        return
    record_ids = [record_id for record_id, _ in entries]
    rows = [
        {
            "record_id": record_id,
            "platform_id": target.platform_id,
            "model": target.model,
            "key": key,
            "text_value": text_value,
            "number_value": number_value,
            "time_value": datetime.fromisoformat(time_value) if time_value is not None else None,
        }
        for record_id, index in entries
        for key, text_value, number_value, time_value in index
    ]
    if conn.dialect.name == "postgresql":
        # Planned each time, as `_previous` is: a generic plan cached while the index table was small would
        # scan it whole once it holds a row per record and key.
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        await conn.execute(_PG_CLEAR_INDEX, {"ids": record_ids})
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = auto")
        if rows:
            await conn.execute(
                _PG_FILL_INDEX,
                {
                    "platform_id": target.platform_id,
                    "model": target.model,
                    "ids": [row["record_id"] for row in rows],
                    "keys": [row["key"] for row in rows],
                    "texts": [row["text_value"] for row in rows],
                    "numbers": [row["number_value"] for row in rows],
                    "times": [row["time_value"] for row in rows],
                },
            )
        return
    for start in range(0, len(record_ids), 500):  # SQLite's bound-parameter limit
        await conn.execute(
            delete(record_custom_values).where(record_custom_values.c.record_id.in_(record_ids[start : start + 500]))
        )
    if rows:
        await conn.execute(insert(record_custom_values), rows)


_PG_CLEAR_INDEX = text("DELETE FROM record_custom_values WHERE record_id = ANY(CAST(:ids AS bigint[]))")
_PG_FILL_INDEX = text(
    """
    INSERT INTO record_custom_values (record_id, platform_id, model, key, text_value, number_value, time_value)
    SELECT entry.record_id, CAST(:platform_id AS uuid), CAST(:model AS varchar), entry.key, entry.text_value,
           entry.number_value, entry.time_value
    FROM unnest(CAST(:ids AS bigint[]), CAST(:keys AS text[]), CAST(:texts AS text[]),
                CAST(:numbers AS float8[]), CAST(:times AS timestamptz[]))
         AS entry(record_id, key, text_value, number_value, time_value)
    """
)


async def _previous(conn: AsyncConnection, target: StreamTarget, remote_ids: list[str]) -> dict[str, Any]:
    """The cached state of these records before a write: what the change log compares against."""
    if conn.dialect.name == "postgresql":
        # A table being backfilled grows faster than its statistics, so the generic plan PostgreSQL
        # caches after a few runs (a sequential scan, chosen while the table was small) would be kept at a
        # hundred thousand rows. This lookup alone is planned each time; the big upserts keep their plans.
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        rows = await conn.execute(_PG_PREVIOUS, {"c": target.connection_id, "s": target.stream, "ids": remote_ids})
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = auto")
    else:
        rows = await conn.execute(
            select(records.c.remote_id, records.c.common, records.c.custom, records.c.deleted).where(
                records.c.connection_id == target.connection_id,
                records.c.stream == target.stream,
                records.c.remote_id.in_(remote_ids),
            )
        )
    return {row.remote_id: row for row in rows}


_PG_PREVIOUS = text(
    """
    SELECT remote_id, common, custom, deleted FROM records
    WHERE connection_id = CAST(:c AS uuid) AND stream = CAST(:s AS varchar)
      AND remote_id = ANY(CAST(:ids AS text[]))
    """
).columns(records.c.remote_id, records.c.common, records.c.custom, records.c.deleted)


async def _log(
    conn: AsyncConnection,
    target: StreamTarget,
    written: list[tuple[int, EncodedRecord, Any]],
    now: datetime,
) -> None:
    batch = []
    for record_id, record, old in written:
        if old is None or old.deleted:
            fields = changed_fields(None, record.common, None, record.custom)
            batch.append(Change(record_id, record.remote_id, CREATED, fields))
        else:
            # Compared as stored (JSON: instants as ISO text), as the old copy was read back.
            new_common = orjson.loads(record.common_json)
            fields = changed_fields(old.common, new_common, old.custom, record.custom)
            batch.append(Change(record_id, record.remote_id, UPDATED, fields))
    await append_changes(conn, target, batch, now)


async def append_changes(conn: AsyncConnection, target: StreamTarget, batch: list[Change], now: datetime) -> None:
    await changes.append(
        conn,
        platform_id=target.platform_id,
        connection_id=target.connection_id,
        end_user_id=target.end_user_id,
        model=target.model,
        stream=target.stream,
        batch=batch,
        now=now,
    )


# PostgreSQL takes the page as a handful of arrays: one statement with sixteen parameters instead of
# sixteen per row, so the driver encodes in C and nothing is processed row by row in Python.
_PG_UPSERT = text(
    """
    INSERT INTO records (platform_id, connection_id, end_user_id, stream, model, remote_id, common, custom, raw,
                         content_hash, remote_created_at, remote_updated_at, deleted, deleted_at, synced_at)
    SELECT CAST(:platform_id AS uuid), CAST(:connection_id AS uuid), CAST(:end_user_id AS uuid),
           CAST(:stream AS varchar), CAST(:model AS varchar), page.remote_id, CAST(page.common AS jsonb),
           CAST(page.custom AS jsonb), page.raw, page.content_hash, page.created_at, page.updated_at, false, NULL,
           CAST(:synced_at AS timestamptz)
    FROM unnest(CAST(:remote_ids AS text[]), CAST(:commons AS text[]), CAST(:customs AS text[]),
                CAST(:raws AS text[]), CAST(:hashes AS text[]), CAST(:created AS timestamptz[]),
                CAST(:updated AS timestamptz[]))
         AS page(remote_id, common, custom, raw, content_hash, created_at, updated_at)
    ON CONFLICT (connection_id, stream, remote_id) DO UPDATE SET
        common = excluded.common, custom = excluded.custom, raw = excluded.raw, content_hash = excluded.content_hash,
        remote_created_at = excluded.remote_created_at, remote_updated_at = excluded.remote_updated_at,
        deleted = false, deleted_at = NULL, synced_at = excluded.synced_at, model = excluded.model
    WHERE (records.content_hash <> excluded.content_hash
           AND (records.remote_updated_at IS NULL OR excluded.remote_updated_at >= records.remote_updated_at))
       OR records.deleted
    RETURNING id, remote_id
    """
)


def _pg_params(target: StreamTarget, page: list[EncodedRecord], now: datetime) -> dict[str, Any]:
    return {
        **_target_values(target),
        "synced_at": now,
        "remote_ids": [r.remote_id for r in page],
        "commons": [r.common_json for r in page],
        "customs": [r.custom_json for r in page],
        "raws": [r.raw_json for r in page],
        "hashes": [r.content_hash for r in page],
        "created": [r.created_at for r in page],
        "updated": [r.updated_at for r in page],
    }


@cache
def _upsert_statement(dialect: str, returning: tuple[Any, ...]) -> Any:
    """Built once per dialect: the statement has no values of its own (rows come as executemany)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    base = insert(records)
    excluded = base.excluded
    return base.on_conflict_do_update(
        index_elements=[records.c.connection_id, records.c.stream, records.c.remote_id],
        set_={
            "common": excluded.common,
            "custom": excluded.custom,
            "raw": excluded.raw,
            "content_hash": excluded.content_hash,
            "remote_created_at": excluded.remote_created_at,
            "remote_updated_at": excluded.remote_updated_at,
            "deleted": excluded.deleted,
            "deleted_at": excluded.deleted_at,
            "synced_at": excluded.synced_at,
            "model": excluded.model,
        },
        where=or_(
            and_(
                records.c.content_hash != excluded.content_hash,
                or_(
                    records.c.remote_updated_at.is_(None),
                    excluded.remote_updated_at >= records.c.remote_updated_at,
                ),
            ),
            records.c.deleted.is_(True),
        ),
    ).returning(*returning)


async def store_record(conn: AsyncConnection, target: StreamTarget, record: RemoteRecord, now: datetime) -> Any:
    """Upsert one record, log the change if it is one, and return its cached row (RECORD_COLUMNS).

    A writeback waits on this. On PostgreSQL it is one statement: the previous state, the upsert and the
    change-log append (lock, NOTIFY, changed fields computed in SQL) all in one round trip, so a caller
    may run it in autocommit: the statement is its own transaction.
    """
    await check_overlay_revision(conn, target)
    encoded = encode(record, now, target.max_record_bytes)
    if conn.dialect.name == "postgresql":
        params = {
            **_pg_params(target, [encoded], now),
            **_index_params(encoded.custom_index),
            "key": changes.APPEND_LOCK,
            "channel": changes.CHANNEL,
        }
        stored = (await conn.execute(_PG_STORE_ONE, params)).first()
        if stored is not None:
            return read_columns(stored)  # callers get the record's columns, as from every other read
    else:
        old = (await _previous(conn, target, [record.remote_id])).get(record.remote_id)
        statement = _upsert_statement(conn.dialect.name, RECORD_COLUMNS)
        row = (await conn.execute(statement, _row(target, encoded, now))).first()
        if row is not None:
            if _custom_touched(encoded, old):
                await replace_custom_index(conn, target, [(row.id, encoded.custom_index)])
            await _log(conn, target, [(row.id, encoded, old)], now)
            return row
    row = await read_record(conn, target, record.remote_id)  # unchanged, or we hold a newer copy
    assert row is not None
    return row


def read_columns(row: Any) -> Any:
    """The RECORD_COLUMNS part of a wider row, still readable by column name."""
    return _CachedRecord._make(tuple(row)[: len(RECORD_COLUMNS)])


def _index_params(index: Sequence[CustomIndexEntry]) -> dict[str, Any]:
    return {
        "index_keys": [key for key, _, _, _ in index],
        "index_texts": [text_value for _, text_value, _, _ in index],
        "index_numbers": [number for _, _, number, _ in index],
        "index_times": [datetime.fromisoformat(moment) if moment else None for _, _, _, moment in index],
    }


_CachedRecord = namedtuple("_CachedRecord", [c.name for c in RECORD_COLUMNS])  # type: ignore[misc]


# The single-record write for PostgreSQL, built from the page upsert above so the two cannot drift apart.
# Every CTE sees the table as it was before the statement, so `old` is the previous state. The change is
# logged only if the upsert wrote a row; its rows come out of a join with the advisory lock (see
# sync/cache/changes.py, "No holes"), and the changed fields follow `changes.changed_fields`.
_STORE_ONE_TEMPLATE = """
    WITH old AS (
        SELECT records.common, records.custom, records.deleted FROM records
        WHERE connection_id = CAST(:connection_id AS uuid) AND stream = CAST(:stream AS varchar)
          AND remote_id = (CAST(:remote_ids AS text[]))[1]
    ), up AS (UPSERT),
    held AS (SELECT pg_advisory_xact_lock(:key) FROM up),
    told AS (SELECT pg_notify(:channel, '') FROM held),
    cleared AS (DELETE FROM record_custom_values WHERE record_id IN (SELECT id FROM up)),
    indexed AS (
        INSERT INTO record_custom_values (record_id, platform_id, model, key, text_value, number_value, time_value)
        SELECT up.id, CAST(:platform_id AS uuid), up.model, entry.key, entry.text_value, entry.number_value,
               entry.time_value
        FROM up, unnest(CAST(:index_keys AS text[]), CAST(:index_texts AS text[]),
                        CAST(:index_numbers AS float8[]), CAST(:index_times AS timestamptz[]))
                 AS entry(key, text_value, number_value, time_value)
        WHERE up.model IS NOT NULL
    ),
    logged AS (
        INSERT INTO changes (platform_id, connection_id, end_user_id, model, stream, record_id, remote_id, op,
                             changed_fields, occurred_at)
        SELECT CAST(:platform_id AS uuid), up.connection_id, CAST(:end_user_id AS uuid), up.model, up.stream,
               up.id, up.remote_id,
               CASE WHEN before.deleted IS NULL OR before.deleted THEN 'CREATED' ELSE 'UPDATED' END,
               CASE WHEN before.deleted IS NULL OR before.deleted THEN
                   (SELECT coalesce(jsonb_agg(d.key ORDER BY d.key COLLATE "C"), '[]'::jsonb)
                    FROM (SELECT n.key FROM jsonb_each(up.common) AS n
                          WHERE n.value NOT IN ('null'::jsonb, '[]'::jsonb, '""'::jsonb)
                          UNION ALL
                          SELECT 'customFields.' || n.key FROM jsonb_each(coalesce(up.custom, '{}'::jsonb)) AS n
                          WHERE n.value <> 'null'::jsonb) AS d)
               ELSE
                   (SELECT coalesce(jsonb_agg(d.key ORDER BY d.key COLLATE "C"), '[]'::jsonb)
                    FROM (SELECT coalesce(n.key, o.key) AS key
                          FROM jsonb_each(up.common) AS n
                          FULL JOIN jsonb_each(before.common) AS o ON n.key = o.key
                          WHERE n.value IS DISTINCT FROM o.value
                          UNION ALL
                          SELECT 'customFields.' || coalesce(n.key, o.key)
                          FROM jsonb_each(coalesce(up.custom, '{}'::jsonb)) AS n
                          FULL JOIN jsonb_each(coalesce(before.custom, '{}'::jsonb)) AS o ON n.key = o.key
                          WHERE nullif(n.value, 'null'::jsonb) IS DISTINCT FROM nullif(o.value, 'null'::jsonb)) AS d)
               END,
               CAST(:synced_at AS timestamptz)
        FROM up CROSS JOIN held CROSS JOIN told LEFT JOIN old AS before ON true
        RETURNING seq
    )
    SELECT up.*, (SELECT count(*) FROM logged) AS logged FROM up
"""
_STORE_ONE_SQL = _STORE_ONE_TEMPLATE.replace(
    "UPSERT",
    _PG_UPSERT.text.replace("RETURNING id, remote_id", "RETURNING " + ", ".join(c.name for c in RECORD_COLUMNS)),
)
_PG_STORE_ONE = text(_STORE_ONE_SQL).columns(*RECORD_COLUMNS)


async def mark_deleted(
    conn: AsyncConnection, target: StreamTarget, tombstones: Sequence[RemoteRecord], now: datetime
) -> int:
    """Flag cached records the provider reports deleted; ids we never cached are not worth storing."""
    if not tombstones:
        return 0
    # Which of them are cached and still live: executemany row counts are not reliable on every driver,
    # and the stream's lease keeps anyone else from changing these rows meanwhile.
    found = await conn.execute(
        select(records.c.remote_id, records.c.id).where(
            records.c.connection_id == target.connection_id,
            records.c.stream == target.stream,
            records.c.remote_id.in_([t.remote_id for t in tombstones]),
            records.c.deleted.is_(False),
        )
    )
    live: dict[str, int] = {remote_id: record_id for remote_id, record_id in found}
    tombstones = [t for t in tombstones if t.remote_id in live]
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
    await conn.execute(stmt, params)
    await append_changes(conn, target, [Change(live[t.remote_id], t.remote_id, DELETED, []) for t in tombstones], now)
    return len(tombstones)


async def read_record(conn: AsyncConnection, target: StreamTarget, remote_id: str) -> Row[Any] | None:
    """One cached record with RECORD_COLUMNS, deleted or not."""
    result = await conn.execute(
        select(*RECORD_COLUMNS).where(
            records.c.connection_id == target.connection_id,
            records.c.stream == target.stream,
            records.c.remote_id == remote_id,
        )
    )
    return cast("Row[Any] | None", result.first())
