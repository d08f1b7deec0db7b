"""Direct access to a connection's credentials, for secret API keys only, and every read on record."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from connectors import get_connector
from connectors.kit.errors import Unauthenticated
from resolvers.connections import get_connection
from resolvers.context import Caller
from resolvers.paging import Keyset, PageOf, PageRequest, int_key, keyset_page, time_and_id
from resolvers.records import check_page_size
from sync.storage.store import utcnow
from sync.storage.tables import api_keys, credential_reads
from sync.tenancy.connections import connection_access

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedCredentials:
    access_token: str | None
    expires_at: datetime | None
    scopes: list[str]
    instance_url: str | None
    api_key: str | None


async def read_credentials(
    caller: Caller, connection_id: uuid.UUID, *, execution: tuple[object, ...] | None = None
) -> IssuedCredentials:
    """Fresh credentials, and the read on record. Reads of one connection within one `execution` (any
    objects that identify it) share one read: a document asking 500 times is recorded once."""
    if execution is None:
        return await _read_credentials(caller, connection_id)
    shared = caller.credential_reads.get(connection_id)
    if shared is None or not all(a is b for a, b in zip(shared[0], execution, strict=True)):
        shared = (execution, asyncio.ensure_future(_read_credentials(caller, connection_id)))
        caller.credential_reads[connection_id] = shared
    issued: IssuedCredentials = await asyncio.shield(shared[1])
    return issued


async def _read_credentials(caller: Caller, connection_id: uuid.UUID) -> IssuedCredentials:
    if caller.api_key_id is None:
        raise Unauthenticated("credentials are only given to a secret API key")
    row = await get_connection(caller, connection_id)
    access = await connection_access(caller.store, row)
    # Fresh: refreshed first when it is about to expire, through the same single-flight refresh as syncs.
    credentials = await caller.services.kit.session(access).fresh_credentials()
    async with caller.store.engine.begin() as conn:
        await conn.execute(
            credential_reads.insert().values(
                platform_id=caller.platform_id,
                connection_id=connection_id,
                api_key_id=caller.api_key_id,
                read_at=utcnow(),
            )
        )
    log.info("credentials of connection %s read with API key %s", connection_id, caller.api_key_id)
    key = get_connector(row.provider).base_url_from_credentials
    instance = credentials.extra.get(key) if key else None
    return IssuedCredentials(
        access_token=credentials.access_token,
        expires_at=credentials.expires_at,
        scopes=list(credentials.scopes),
        instance_url=str(instance) if instance else None,
        api_key=credentials.api_key,
    )


async def recent_reads(caller: Caller, connection_id: uuid.UUID, first: int) -> list[Any]:
    check_page_size(first)
    async with caller.store.reader.connect() as conn:
        rows = await conn.execute(
            select(credential_reads.c.read_at, api_keys.c.name, api_keys.c.prefix)
            .outerjoin(api_keys, api_keys.c.id == credential_reads.c.api_key_id)
            .where(
                credential_reads.c.platform_id == caller.platform_id, credential_reads.c.connection_id == connection_id
            )
            .order_by(credential_reads.c.read_at.desc(), credential_reads.c.id.desc())
            .limit(first)
        )
        return list(rows.all())


READ_ORDER = Keyset((credential_reads.c.read_at, credential_reads.c.id), descending=True)


async def list_reads(caller: Caller, connection_id: uuid.UUID, request: PageRequest) -> PageOf[Any]:
    """Who read a connection's credentials, newest first, a page at a time."""
    stmt = (
        select(credential_reads.c.id, credential_reads.c.read_at, api_keys.c.name, api_keys.c.prefix)
        .outerjoin(api_keys, api_keys.c.id == credential_reads.c.api_key_id)
        .where(credential_reads.c.platform_id == caller.platform_id, credential_reads.c.connection_id == connection_id)
    )
    return await keyset_page(caller, stmt, READ_ORDER, "credential-reads", request, time_and_id("read_at"), int_key)
