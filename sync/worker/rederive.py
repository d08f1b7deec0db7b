"""Re-deriving a connection's cached records when its field mappings change, from their stored payloads.

No provider is asked: every record keeps the raw payload it was read with, and a mapping is a pure function
of it (`FieldOverlay.apply`). The job walks the connection's cached records in batches (by model and remote
id, along the records' own index), recomputes their overridden members and custom values, rewrites the ones
whose values moved with their filter index, and appends an UPDATED change naming what moved, so `changes`
subscribers and outbound webhooks see the new values like any other update.

**Visible.** Each pass is a `sync_runs` row of stream "field_mappings" (records seen, records changed), so it
shows in `LinkedAccount.runs`; its phase names the mapping revision it derives at ("revision 7").

**Resumable.** A batch commits with the run's count of records seen. A worker that finds a run left running
at the connection's current revision goes on after that many records; since records are only ever added,
that point is at or before where the crashed worker stopped, so nothing is skipped (what is repeated changes
nothing the second time and logs nothing).

**Newest revision only.** Each batch locks the connection's row and checks its revision. A mapping change
(which bumps the revision) made during a pass ends it, and the pass starts over at the new revision; a sync
run racing with the pass stores its pages only while the revision it derived at holds
(`sync.cache.records.check_overlay_revision`). The connection stops being due only when a pass finished at
the revision that is still current (the contract of `sync.tenancy.field_mappings`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, insert, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors import get_connector
from connectors.kit.declaration import Connector, Stream, account_currency
from connectors.kit.field_mappings import FieldOverlay
from connectors.kit.mapping import EachOf, Label, ModelMapping, MoneyAt
from connectors.kit.records import TRUNCATED_MARKER, RemoteRecord, custom_index
from sync.cache.changes import UPDATED, Change, changed_fields
from sync.cache.discovery import DiscoveryCache
from sync.cache.records import StreamTarget, append_changes, content_hash, replace_custom_index
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections, records, sync_runs
from sync.tenancy.field_mappings import load_overlay
from sync.worker.runner import close_run

log = logging.getLogger(__name__)

STREAM = "field_mappings"
PHASE_PREFIX = "revision "
DEFAULT_BATCH = 1000
# How many connections one poll of the worker re-derives (each fully, one after the other).
CONNECTIONS_PER_POLL = 4


class RevisionMoved(Exception):
    """The connection's mappings changed during a pass: start over at the new revision."""


@dataclass
class RederiveTally:
    records: int = 0
    changed: int = 0
    batches: int = 0


async def due_connections(store: Store, limit: int = CONNECTIONS_PER_POLL) -> list[uuid.UUID]:
    """Connections whose cached records wait to be re-derived, longest waiting first."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(connections.c.id)
            .where(connections.c.field_mappings_due_at.is_not(None))
            .order_by(connections.c.field_mappings_due_at, connections.c.id)
            .limit(limit)
        )
        return [row.id for row in rows]


async def rederive_due(store: Store, discoveries: DiscoveryCache | None = None, batch_size: int = DEFAULT_BATCH) -> int:
    """Re-derive every due connection (up to a poll's share); how many records changed."""
    changed = 0
    for connection_id in await due_connections(store):
        changed += await rederive_connection(store, connection_id, discoveries=discoveries, batch_size=batch_size)
    return changed


async def rederive_connection(
    store: Store,
    connection_id: uuid.UUID,
    *,
    discoveries: DiscoveryCache | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """Re-derive one connection's cached records at its newest mappings, starting over whenever they move
    during the pass; how many records changed. Clears the connection's due mark at the revision derived."""
    changed = 0
    while True:
        overlay = await load_overlay(store, connection_id)
        connection = await _connection(store, connection_id)
        if connection is None:
            return changed  # deleted meanwhile: its records went with it
        job = _Pass(store, connection, overlay, discoveries, batch_size)
        try:
            changed += await job.run()
        except RevisionMoved:
            changed += job.tally.changed
            continue
        if await _settle(store, connection_id, overlay.revision):
            return changed


async def _connection(store: Store, connection_id: uuid.UUID) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(connections).where(connections.c.id == connection_id))).first()


async def _settle(store: Store, connection_id: uuid.UUID, revision: int) -> bool:
    """No longer due, if the revision derived is still the connection's; False: derive again."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(connections)
            .where(connections.c.id == connection_id, connections.c.field_mapping_revision == revision)
            .values(field_mappings_due_at=None)
        )
        if result.rowcount == 1:
            return True
        still = await conn.execute(select(connections.c.id).where(connections.c.id == connection_id))
        return still.first() is None


class _Pass:
    """One walk over a connection's records at one revision, recorded as a sync run."""

    def __init__(
        self,
        store: Store,
        connection: Any,
        overlay: FieldOverlay,
        discoveries: DiscoveryCache | None,
        batch_size: int,
    ) -> None:
        self.store = store
        self.connection = connection
        self.overlay = overlay
        self.discoveries = discoveries
        self.batch_size = batch_size
        self.connector: Connector = get_connector(connection.provider)
        self.tally = RederiveTally()
        self.phase = f"{PHASE_PREFIX}{overlay.revision}"

    async def run(self) -> int:
        run_id, skip = await self._start()
        error: str | None = None
        try:
            after = await self._resume_point(skip)
            while True:
                after = await self._batch(run_id, after)
                if after is None:
                    break
        except RevisionMoved:
            await self._finish(run_id, "field mappings changed during the pass; starting over at the new revision")
            raise
        except Exception as exc:
            log.exception("%s: re-deriving field mappings failed", self.connection.id)
            error = f"{type(exc).__name__}: {exc}"
            await self._finish(run_id, error)
            raise
        await self._finish(run_id, None)
        return self.tally.changed

    async def _start(self) -> tuple[int, int]:
        """The run to record progress in: one left running at this revision (a crashed pass, resumed after
        the records it had seen), else a new one."""
        async with self.store.engine.begin() as conn:
            left = (
                await conn.execute(
                    select(sync_runs.c.id, sync_runs.c.records, sync_runs.c.changed)
                    .where(
                        sync_runs.c.connection_id == self.connection.id,
                        sync_runs.c.stream == STREAM,
                        sync_runs.c.status == "running",
                        sync_runs.c.phase == self.phase,
                    )
                    .order_by(sync_runs.c.id.desc())
                    .limit(1)
                )
            ).first()
            if left is not None:
                self.tally = RederiveTally(records=left.records, changed=left.changed)
                return int(left.id), int(left.records)
            # Passes at older revisions that never finished will not: they are superseded.
            await conn.execute(
                update(sync_runs)
                .where(
                    sync_runs.c.connection_id == self.connection.id,
                    sync_runs.c.stream == STREAM,
                    sync_runs.c.status == "running",
                )
                .values(status="failed", finished_at=utcnow(), error="superseded by a newer field mapping revision")
            )
            created = await conn.execute(
                insert(sync_runs)
                .values(
                    platform_id=self.connection.platform_id,
                    connection_id=self.connection.id,
                    stream=STREAM,
                    phase=self.phase,
                    status="running",
                    started_at=utcnow(),
                    pages=0,
                    records=0,
                    changed=0,
                )
                .returning(sync_runs.c.id)
            )
            return int(created.scalar_one()), 0

    def _ordered(self) -> Any:
        return (
            select(records.c.model, records.c.remote_id, records.c.id)
            .where(records.c.connection_id == self.connection.id, records.c.model.is_not(None))
            .order_by(records.c.model, records.c.remote_id, records.c.id)
        )

    async def _resume_point(self, skip: int) -> tuple[str, str, int] | None:
        if skip <= 0:
            return None
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(self._ordered().offset(skip - 1).limit(1))).first()
        return (row.model, row.remote_id, row.id) if row is not None else None

    async def _batch(self, run_id: int, after: tuple[str, str, int] | None) -> tuple[str, str, int] | None:
        """Re-derive the next batch after `after` in one transaction; the last key, or None when done."""
        async with self.store.engine.begin() as conn:
            await self._hold_revision(conn)
            query = select(
                records.c.id,
                records.c.stream,
                records.c.model,
                records.c.remote_id,
                records.c.raw,
                records.c.common,
                records.c.custom,
                records.c.deleted,
            ).where(records.c.connection_id == self.connection.id, records.c.model.is_not(None))
            if after is not None:
                model, remote_id, record_id = after
                query = query.where(
                    or_(
                        records.c.model > model,
                        and_(
                            records.c.model == model,
                            tuple_(records.c.remote_id, records.c.id) > tuple_(remote_id, record_id),
                        ),
                    )
                )
            ordered = query.order_by(records.c.model, records.c.remote_id, records.c.id).limit(self.batch_size)
            rows = list((await conn.execute(ordered)).all())
            if not rows:
                return None
            changed = await self._rewrite(conn, rows)
            self.tally.records += len(rows)
            self.tally.changed += changed
            self.tally.batches += 1
            await conn.execute(
                update(sync_runs)
                .where(sync_runs.c.id == run_id)
                .values(pages=self.tally.batches, records=self.tally.records, changed=self.tally.changed)
            )
        if changed:
            self.store.changes_appended.notify()
        last = rows[-1]
        return (last.model, last.remote_id, last.id) if len(rows) == self.batch_size else None

    async def _hold_revision(self, conn: AsyncConnection) -> None:
        """Lock the connection's row for the batch (a sync page or a mapping change waits) and check that
        its mappings are still the ones this pass derives with."""
        query = select(connections.c.field_mapping_revision).where(connections.c.id == self.connection.id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        revision = (await conn.execute(query)).scalar()
        if revision != self.overlay.revision:
            raise RevisionMoved

    async def _rewrite(self, conn: AsyncConnection, rows: list[Any]) -> int:
        """Rewrite the rows whose derived values moved; how many did."""
        by_stream: dict[str, list[tuple[Any, RemoteRecord]]] = {}
        for row in rows:
            derived = self._derive(row)
            if derived is not None:
                by_stream.setdefault(row.stream, []).append((row, derived))
        changed = 0
        now = utcnow()
        for stream_name, pairs in by_stream.items():
            target = StreamTarget(
                self.connection.platform_id,
                self.connection.id,
                self.connection.end_user_id,
                stream_name,
                pairs[0][0].model,
            )
            batch: list[Change] = []
            updates: list[dict[str, Any]] = []
            index: list[tuple[int, Any]] = []
            for row, record in pairs:
                fields = changed_fields(row.common, record.common, row.custom, record.custom)
                if not fields:
                    continue
                raw_json = row.raw.encode() if isinstance(row.raw, str) else orjson.dumps(row.raw)
                updates.append(
                    {
                        "record_id": row.id,
                        "new_common": record.common,
                        "new_custom": record.custom,
                        "new_hash": content_hash(
                            raw_json,
                            orjson.dumps(record.common, option=orjson.OPT_SORT_KEYS),
                            orjson.dumps(record.custom, option=orjson.OPT_SORT_KEYS)
                            if record.custom is not None
                            else None,
                        ),
                    }
                )
                index.append((row.id, record.custom_index))
                batch.append(Change(row.id, row.remote_id, UPDATED, fields))
            if not updates:
                continue
            await _update_derived(conn, updates)
            await replace_custom_index(conn, target, index)
            await append_changes(conn, target, batch, now)
            changed += len(batch)
        return changed

    def _derive(self, row: Any) -> RemoteRecord | None:
        """The record's values at this pass's mappings; None for what cannot be re-derived (tombstones, a
        stream the connector no longer has, a payload stored truncated)."""
        if row.deleted or row.common is None:
            return None
        try:
            stream = self.connector.stream(row.stream)
        except KeyError:
            return None
        mapping = stream.mapping
        if mapping is None:
            return None
        raw = orjson.loads(row.raw) if isinstance(row.raw, str | bytes) else row.raw
        if TRUNCATED_MARKER in raw:
            return None
        labels = self._labels(stream)
        common = mapping.to_common(raw, labels)
        # Values read through label tables (stage names, the account's currency) keep what the sync stored
        # unless the run's tables are at hand: the re-derive asks the provider for nothing.
        if not labels:
            for member in _label_members(mapping):
                if member in row.common:
                    common[member] = row.common[member]
        common = orjson.loads(orjson.dumps(common))  # as stored: instants as ISO text
        currency = account_currency(labels) or _stored_currency(row.common, row.custom)
        common, custom = self.overlay.apply(mapping.model, raw, common, currency)
        record = RemoteRecord(row.remote_id, raw, common=common, custom=custom)
        if custom is not None:
            record.custom_index = custom_index(custom, self.overlay.models[mapping.model.name])
        return record

    def _labels(self, stream: Stream) -> Mapping[str, Mapping[str, str]]:
        if self.discoveries is None or not stream.labels:
            return {}
        return self.discoveries.held_labels(stream, self.connection.id)

    async def _finish(self, run_id: int, error: str | None) -> None:
        now = utcnow()
        async with self.store.engine.begin() as conn:
            await close_run(
                conn,
                run_id,
                now,
                stream=(self.connection.id, STREAM),
                counts=(self.tally.batches, self.tally.records, self.tally.changed),
                failed=error is not None,
                error=error,
            )


_UPDATE_DERIVED = (
    update(records)
    .where(records.c.id == bindparam("record_id"))
    .values(common=bindparam("new_common"), custom=bindparam("new_custom"), content_hash=bindparam("new_hash"))
    .execution_options(synchronize_session=False)
)


async def _update_derived(conn: AsyncConnection, updates: list[dict[str, Any]]) -> None:
    if conn.dialect.name != "postgresql":
        await conn.execute(_UPDATE_DERIVED, updates)
        return
    # One statement for the batch, its values as arrays (as the sync's upsert does): a thousand single-row
    # updates cost PostgreSQL several times more.
    await conn.execute(
        _PG_UPDATE_DERIVED,
        {
            "ids": [u["record_id"] for u in updates],
            "commons": [orjson.dumps(u["new_common"]).decode() for u in updates],
            "customs": [None if u["new_custom"] is None else orjson.dumps(u["new_custom"]).decode() for u in updates],
            "hashes": [u["new_hash"] for u in updates],
        },
    )


_PG_UPDATE_DERIVED = text(
    """
    UPDATE records SET common = CAST(derived.common AS jsonb), custom = CAST(derived.custom AS jsonb),
                       content_hash = derived.content_hash
    FROM unnest(CAST(:ids AS bigint[]), CAST(:commons AS text[]), CAST(:customs AS text[]),
                CAST(:hashes AS text[])) AS derived(id, common, custom, content_hash)
    WHERE records.id = derived.id
    """
)


def _label_members(mapping: ModelMapping) -> list[str]:
    """Members whose values the connector reads through label tables."""
    return [
        name
        for name, source in mapping.members.items()
        if isinstance(source, Label | EachOf) or (isinstance(source, MoneyAt) and source.currency_table)
    ]


def _stored_currency(common: Mapping[str, Any] | None, custom: Mapping[str, Any] | None) -> str | None:
    """The account's currency as the record's stored Money values show it, when no label table is at hand."""
    for values in (custom or {}, common or {}):
        for value in values.values():
            if isinstance(value, dict) and isinstance(value.get("currency"), str) and "amount" in value:
                return str(value["currency"])
    return None
