"""A connection's field catalogs (what its records of a model hold, for the mapping picker and for checking a
mapping), read from the provider's metadata and kept in `available_fields`.

A catalog is read from the provider when none is stored, when the stored one is older than CATALOG_TTL, or when
a caller asks for a refresh; the sync keeps it fresh too: a successful run of the stream a model is read from
re-reads it when it is older than REFRESH_AFTER_RUN (`refresh_after_run`, called by sync/worker/runner.py), so
a syncing connection's picker shows a field the account added minutes ago at the cost of one metadata request
per model every few minutes, never one per run. A provider that refuses its metadata (403, 404, an outage)
leaves the last stored catalog in use, or gives an empty one that says why (`Catalog.unavailable`); it never
fails a request or a run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError

from connectors import get_connector
from connectors.kit.declaration import Connector, Stream, StreamContext
from connectors.kit.errors import XkitError
from connectors.kit.field_catalog import AvailableField, Catalog, FieldCatalog, bounded
from connectors.kit.http import HttpKit
from sync.storage.store import Store, utcnow
from sync.storage.tables import available_fields
from sync.tenancy.connections import connection_access

log = logging.getLogger(__name__)

CATALOG_TTL = timedelta(hours=1)
# The discovery cache's interval (sync/cache/discovery.py): a sync run re-reads a catalog at most this often.
REFRESH_AFTER_RUN = timedelta(minutes=5)


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
        session = kit.session(await connection_access(store, connection_row))
        return await _read_and_keep(store, StreamContext(session, stream), connection_row.id, model, reader)
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
        await _read_and_keep(store, ctx, connection_row.id, model, reader)
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


async def _read_and_keep(
    store: Store, ctx: StreamContext, connection_id: uuid.UUID, model: str, reader: FieldCatalog
) -> Catalog:
    fields = bounded(await reader.fields(ctx))
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
