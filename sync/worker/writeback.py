"""Writes to a connection's provider, with the provider's answer stored in the cache in the same request.

After every write the record is read back the way the incremental sync reads it (the stream's
`lookup`), so the cached copy is exactly what the sync will see next: its content hash matches and the
sync's echo of our own write changes nothing. A write the provider refuses changes nothing here either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Row

from connectors import get_connector
from connectors.kit.declaration import Connector, Draft, Stream, StreamContext, account_currency
from connectors.kit.errors import BadInput, Conflict, NotFound, ProviderError, ReauthRequired, Unauthenticated
from connectors.kit.http import HttpKit
from connectors.kit.mapped_writes import CUSTOM_FIELDS, mapped_write
from connectors.kit.mapping import remote_ids
from connectors.kit.records import RemoteRecord
from sync.cache import field_catalog
from sync.cache.discovery import DiscoveryCache
from sync.cache.records import StreamTarget, mark_deleted, read_record, store_record
from sync.storage.store import Store, utcnow
from sync.storage.tables import RECORD_COLUMNS, records
from sync.tenancy.connections import ACTIVE, NEEDS_REAUTH, connection_access, set_status


class StaleWrite(Conflict):
    """`ifUpdatedAt` is older than the record: someone changed it since the caller read it."""

    def __init__(self, message: str, current: Any) -> None:
        super().__init__(message)
        self.current = current


class Writeback:
    """Creates, updates and deletes of one common model on one connection. Each write returns the cached
    record after it (RECORD_COLUMNS; a tombstone after a delete)."""

    def __init__(self, store: Store, kit: HttpKit, discoveries: DiscoveryCache, connection: Row[Any], model: str):
        if connection.status != ACTIVE:
            raise Unauthenticated(
                f"the connection is {connection.status}: the end user must reconnect before writes go through",
                connectionStatus=connection.status,
            )
        self.store = store
        self.kit = kit
        self.discoveries = discoveries
        self.connection = connection
        self.connector: Connector = get_connector(connection.provider)
        self.model = model
        if not self.connector.writable_streams(model):
            raise BadInput(f"{self.connector.display_name} connections cannot write {model} records")

    # ---- the three writes --------------------------------------------------------------------

    async def create(self, draft: Draft) -> Any:
        stream = self.connector.stream_for_create(self.model, draft.values)
        if stream is None:
            # Say which value no stream takes (HubSpot has no separate leads: isLead must be false).
            mapping = self.connector.writable_streams(self.model)[0].mapping
            assert mapping is not None
            mapping.provider_values(draft.values)
            raise BadInput(f"no {self.connector.display_name} object takes a {self.model} with these values")
        ctx = await self._context(stream)
        assert stream.writer is not None
        written = await self._mapped(ctx, _by_code(ctx, draft, None))
        remote_id = await self._provider(stream, stream.writer.create(ctx, written))
        return await self._refresh(ctx, remote_id)

    async def update(self, remote_id: str, draft: Draft, if_updated_at: datetime | None, cached: Any = None) -> Any:
        """`cached` is the record's cache row (RECORD_COLUMNS) when the caller has already read it."""
        stream, current = await self._locate(remote_id, cached)
        ctx = await self._context(stream)
        if current is None or if_updated_at is not None:
            # A conditional write compares against the provider's copy, not a cache that may lag behind.
            current = _remote(await self._refresh(ctx, remote_id))
            self._check_unchanged(current, if_updated_at)
        assert stream.writer is not None
        written = await self._mapped(ctx, _by_code(ctx, draft, current.record))
        await self._provider(stream, stream.writer.update(ctx, remote_id, written, current.record))
        return await self._refresh(ctx, remote_id)

    async def delete(self, remote_id: str, if_updated_at: datetime | None, cached: Any = None) -> Row[Any]:
        stream, current = await self._locate(remote_id, cached)
        ctx = await self._context(stream)
        if if_updated_at is not None:
            current = _remote(await self._refresh(ctx, remote_id))
            self._check_unchanged(current, if_updated_at)
        assert stream.writer is not None
        await self._provider(stream, stream.writer.delete(ctx, remote_id))
        if stream.deletes_are_updates:
            kept: Row[Any] = await self._refresh(ctx, remote_id)
            return kept
        now = utcnow()
        target = self._target(stream)
        async with self.store.engine.begin() as conn:
            await mark_deleted(conn, target, [RemoteRecord(remote_id, {}, deleted=True, deleted_at=now)], now)
            row = await read_record(conn, target, remote_id)
        self.store.changes_appended.notify()
        if row is None:  # deleted before we ever cached it: nothing to show but the remote id
            raise NotFound(f"{self.model} {remote_id} was deleted but was never cached", remoteId=remote_id)
        return row

    # ---- helpers -------------------------------------------------------------------------------

    async def _context(self, stream: Stream) -> StreamContext:
        session = self.kit.session(await connection_access(self.store, self.connection))
        ctx: StreamContext = await self._provider(
            stream, self.discoveries.context(session, stream, self.connection.id, store=self.store)
        )
        return ctx

    async def _mapped(self, ctx: StreamContext, draft: Draft) -> Draft:
        """The draft with what the connection's field mappings write as provider fields: its custom fields, and
        the built-in members a mapping overrides (taken out of the connector's own mapping). Refused, before
        anything is written, when a key is not defined or not mapped, a value does not fit its field, or the
        provider keeps the mapped field read-only."""
        mapping = ctx.stream.mapping
        overlay = ctx.overlay.models.get(self.model) if ctx.overlay is not None else None
        overridden = overlay is not None and not overlay.builtin.keys().isdisjoint(draft.values)
        if mapping is None or not (draft.custom_fields or overridden):
            return draft
        # Which mapped fields the provider lets us write: its catalog as last read (read now only when none is
        # kept or it is over an hour old); a provider that does not list its fields leaves that to its answer.
        fields = await field_catalog.catalog(self.store, self.kit, self.connection, self.model)
        written = mapped_write(
            mapping.model,
            overlay,
            draft.values,
            draft.custom_fields,
            catalog=fields if fields.unavailable is None else None,
            currency=account_currency(ctx.labels),
            currencies=draft.currencies,
        )
        if written.provider_fields and not getattr(ctx.stream.writer, "merges_provider_fields", False):
            raise BadInput(
                f"{self.connector.display_name}'s {ctx.stream.name} writes take no mapped fields",
                field=CUSTOM_FIELDS if draft.custom_fields else None,
            )
        return replace(draft, values=written.values, provider_fields=written.provider_fields)

    async def _provider(self, stream: Stream, call: Any) -> Any:
        """Await a provider call, turning its refusal into the caller's typed error."""
        try:
            return await call
        except ReauthRequired as exc:
            await set_status(self.store, self.connection.id, NEEDS_REAUTH, exc.message)
            exc.extensions["connectionStatus"] = NEEDS_REAUTH
            raise
        except ProviderError as exc:
            assert stream.mapping is not None
            raise self.connector.write_error(exc, stream.mapping) from exc

    async def _locate(self, remote_id: str, cached: Any) -> tuple[Stream, _Current | None]:
        """The stream a record lives in, and its cached copy: from the cache, else by asking each stream."""
        if cached is None:
            async with self.store.reader.connect() as conn:
                cached = (
                    await conn.execute(
                        select(*RECORD_COLUMNS)
                        .where(
                            records.c.connection_id == self.connection.id,
                            records.c.model == self.model,
                            records.c.remote_id == remote_id,
                            records.c.deleted.is_(False),
                        )
                        .limit(1)
                    )
                ).first()
        if cached is not None and cached.deleted_at is None:
            stream = self.connector.stream(cached.stream)
            if stream.writer is not None:
                return stream, _remote(cached)
        for stream in self.connector.writable_streams(self.model):
            ctx = await self._context(stream)
            assert stream.lookup is not None
            found = await self._provider(stream, stream.lookup.fetch(ctx, [remote_id]))
            if found:
                return stream, None
        raise NotFound(f"{self.connector.display_name} has no {self.model} {remote_id}", remoteId=remote_id)

    def _check_unchanged(self, current: _Current, if_updated_at: datetime | None) -> None:
        if if_updated_at is None or current.record.updated_at is None:
            return
        expected = if_updated_at if if_updated_at.tzinfo else if_updated_at.replace(tzinfo=UTC)
        if current.record.updated_at > expected:
            raise StaleWrite(
                f"the {self.model} changed at {current.record.updated_at.isoformat()}, after ifUpdatedAt "
                f"{expected.isoformat()}; read it again and retry",
                current.row,
            )

    async def _refresh(self, ctx: StreamContext, remote_id: str) -> Any:
        """Read the record back as the sync would and store it: the read-your-writes copy."""
        assert ctx.stream.lookup is not None
        found = await self._provider(ctx.stream, ctx.stream.lookup.fetch(ctx, [remote_id]))
        if not found:
            raise NotFound(f"{self.connector.display_name} has no {self.model} {remote_id}", remoteId=remote_id)
        # The record and its change commit together: on PostgreSQL store_record is one statement (its own
        # transaction, no BEGIN/COMMIT round trips); elsewhere it needs one around it.
        postgres = self.store.engine.dialect.name == "postgresql"
        async with self.store.reader.connect() if postgres else self.store.engine.begin() as conn:
            row = await store_record(conn, self._target(ctx.stream), found[0], utcnow())
        for name, member in ctx.stream.writes_touch:
            await self._refresh_touched(self.connector.stream(name), remote_ids((found[0].common or {}).get(member)))
        self.store.changes_appended.notify()
        return row

    async def _refresh_touched(self, stream: Stream, ids: list[str]) -> None:
        """Records the write changed in another stream, read back and stored as the sync would see them."""
        if not ids or stream.lookup is None:
            return
        ctx = await self._context(stream)
        for record in await self._provider(stream, stream.lookup.fetch(ctx, ids)):
            async with self.store.engine.begin() as conn:
                await store_record(conn, self._target(stream), record, utcnow())

    def _target(self, stream: Stream) -> StreamTarget:
        return StreamTarget.of(self.connection, stream, max_record_bytes=self.kit.max_record_bytes)


@dataclass(frozen=True)
class _Current:
    row: Any  # RECORD_COLUMNS
    record: RemoteRecord


def _by_code(ctx: StreamContext, draft: Draft, current: RemoteRecord | None) -> Draft:
    """The draft with values written by label (a deal stage's name) turned into the provider's codes, from
    the stream's label tables: writers only ever see codes. And the currency each amount of the record is
    kept in (`current`, or the account's for a new record), which an amount written must match or change."""
    mapping = ctx.stream.mapping
    if mapping is None:
        return draft
    values = mapping.resolve_labels(draft.values, ctx.labels) if mapping.label_tables else draft.values
    currencies = mapping.currencies(current.raw if current else None, ctx.labels)
    return replace(draft, values=values, currencies=currencies)


def _remote(row: Any) -> _Current:
    raw = orjson.loads(row.raw)
    return _Current(row, RemoteRecord(row.remote_id, raw, row.common, updated_at=row.remote_updated_at))
