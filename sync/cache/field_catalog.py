"""A connection's field catalogs (what its records of a model hold, for the mapping picker and for checking a
mapping), read from the provider's metadata and kept in `available_fields`.

A catalog is read from the provider when none is stored, when the stored one is older than CATALOG_TTL, or when
a caller asks for a refresh; the sync keeps it fresh too: a successful run of the stream a model is read from
re-reads it when it is older than REFRESH_AFTER_RUN (`refresh_after_run`, called by sync/worker/runner.py), so
a syncing connection's picker shows a field the account added minutes ago at the cost of one metadata request
per model every few minutes, never one per run. A catalog of keys seen in the cache (Stripe's metadata,
`SeenKeys`) is read from the connection's records instead, and kept and refreshed alike. A provider that
refuses its metadata (403, 404, an outage) leaves the last stored catalog in use, or gives an empty one that
says why (`Catalog.unavailable`); it never fails a request or a run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError

from connectors import get_connector
from connectors.kit.declaration import Connector, Stream, StreamContext
from connectors.kit.errors import ProviderError, XkitError
from connectors.kit.field_catalog import AvailableField, Catalog, FieldCatalog, SeenKeys, bounded
from connectors.kit.http import HttpKit
from sync.storage.store import Store, utcnow
from sync.storage.tables import available_fields, records
from sync.tenancy.connections import connection_access

log = logging.getLogger(__name__)

CATALOG_TTL = timedelta(hours=1)
# The discovery cache's interval (sync/cache/discovery.py): a sync run re-reads a catalog at most this often.
REFRESH_AFTER_RUN = timedelta(minutes=5)
# How many of a stream's cached records a catalog of keys seen in the cache reads: a key that only records stored
# before the last SEEN_RECORDS hold is not offered (nor accepted in a mapping) until a record with it syncs again.
SEEN_RECORDS = 2000


def catalog_stream(connector: Connector, model: str) -> Stream | None:
    """The stream a model's catalog is read on: the model's first (Salesforce's Contacts, not its Leads)."""
    return next((s for s in connector.streams if s.model_name == model), None)


async def catalog(
    store: Store, kit: HttpKit, connection_row: Row[Any], model: str, *, refresh: bool = False
) -> Catalog:
    """The model's catalog on this connection, as stored unless missing, stale or `refresh` is asked."""
    connector = get_connector(connection_row.provider)
    reader = connector.field_catalogs.get(model)
    stream = catalog_stream(connector, model)
    if reader is None or stream is None:
        return Catalog(unavailable=f"{connector.display_name} does not list the fields of its {model} records")
    stored = await stored_catalog(store, connection_row.id, model)
    if stored is not None and not refresh and utcnow() - stored[1] < CATALOG_TTL:
        return stored[0]
    try:
        if isinstance(reader, SeenKeys):
            fields = reader.from_records(await _recent_raws(store, connection_row.id, stream))
        else:
            session = kit.session(await connection_access(store, connection_row))
            fields = await _ask_provider(reader, StreamContext(session, stream))
        return await _keep(store, connection_row.id, model, fields)
    except XkitError as refused:
        log.info("%s/%s: field catalog not read: %s", connection_row.id, model, refused.message)
        if stored is not None:
            return stored[0]  # a stale list beats none: the fields an account has rarely go away
        return Catalog(unavailable=f"{connector.display_name} did not list its {model} fields ({refused.message})")


async def refresh_after_run(store: Store, ctx: StreamContext, connection_row: Row[Any]) -> None:
    """After a successful run of `ctx.stream`: re-read the catalog of the model it is read on, when older than
    REFRESH_AFTER_RUN. Failing to read it is logged, never the run's failure."""
    model = ctx.stream.model_name
    connector = get_connector(connection_row.provider)
    reader = connector.field_catalogs.get(model) if model else None
    if model is None or reader is None or catalog_stream(connector, model) is not ctx.stream:
        return
    stored = await stored_catalog(store, connection_row.id, model)
    if stored is not None and utcnow() - stored[1] < REFRESH_AFTER_RUN:
        return
    try:
        if isinstance(reader, SeenKeys):
            fields = reader.from_records(await _recent_raws(store, connection_row.id, ctx.stream))
        else:
            fields = await _ask_provider(reader, ctx)
        await _keep(store, connection_row.id, model, fields)
    except XkitError as refused:
        log.info("%s/%s: field catalog not refreshed: %s", connection_row.id, model, refused.message)
    except SQLAlchemyError:  # e.g. the connection was deleted meanwhile
        log.info("%s/%s: field catalog not kept", connection_row.id, model, exc_info=True)


async def stored_catalog(store: Store, connection_id: uuid.UUID, model: str) -> tuple[Catalog, datetime] | None:
    """The catalog as last read, and when."""
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(available_fields.c.fields, available_fields.c.refreshed_at).where(
                    available_fields.c.connection_id == connection_id, available_fields.c.model == model
                )
            )
        ).first()
    if row is None:
        return None
    fields = tuple(AvailableField.from_json(f) for f in row.fields if isinstance(f, dict))
    return Catalog(fields), row.refreshed_at


async def _ask_provider(reader: FieldCatalog, ctx: StreamContext) -> list[AvailableField]:
    """The provider's field list; an answer in a shape its catalog cannot read is a refusal like a 403."""
    try:
        return await reader.fields(ctx)
    except (AttributeError, KeyError, TypeError, ValueError) as unreadable:
        raise ProviderError(f"the field list it answered could not be read ({unreadable!r})") from unreadable


async def _recent_raws(store: Store, connection_id: uuid.UUID, stream: Stream) -> list[dict[str, Any]]:
    """The raw payloads of the connection's SEEN_RECORDS records of the stream stored last (by id, newest
    first): what a catalog of keys seen in the cache (Stripe's metadata) is read from, in bounded time."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(records.c.raw)
            .where(records.c.connection_id == connection_id, records.c.stream == stream.name, ~records.c.deleted)
            .order_by(records.c.id.desc())
            .limit(SEEN_RECORDS)
        )
        raws = [row.raw for row in rows]
    found = []
    for text in raws:
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # not a payload (a record stored truncated keeps a marker)
        if isinstance(raw, dict):
            found.append(raw)
    return found


async def _keep(store: Store, connection_id: uuid.UUID, model: str, read: list[AvailableField]) -> Catalog:
    fields = bounded(read)
    now = utcnow()
    values = {
        "connection_id": connection_id,
        "model": model,
        "fields": [f.to_json() for f in fields],
        "refreshed_at": now,
    }
    async with store.engine.begin() as conn:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = insert(available_fields).values(**values)
        # Two readers at once (a request and a run) both keep what they read; the later one wins.
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[available_fields.c.connection_id, available_fields.c.model],
                set_={"fields": statement.excluded.fields, "refreshed_at": statement.excluded.refreshed_at},
            )
        )
    return Catalog(tuple(fields))
