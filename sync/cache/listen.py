"""Across processes on PostgreSQL: LISTEN for appends to the change log and wake this process's readers;
LISTEN for revoked API keys and tell this process's key caches and WebSockets.

A notification only says "read"; the log stays the source of truth. If the listening connection drops,
readers still look every few seconds, and the listener reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from sync.cache.changes import CHANNEL
from sync.storage.revocation import KEYS_CHANNEL
from sync.storage.store import Store

log = logging.getLogger(__name__)


async def _listen_forever(store: Store) -> None:
    dsn = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def wake(*_: Any) -> None:
        store.changes_appended.notify()

    def revoked(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        key_id: uuid.UUID | None
        try:
            key_id = uuid.UUID(payload)
        except ValueError:
            key_id = None  # not ours to parse: treat it as "any key may be revoked"
        store.keys_revoked.publish(key_id)

    while True:
        try:
            connection = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError):
            log.warning("cannot LISTEN for changes; retrying", exc_info=True)
            await asyncio.sleep(1.0)
            continue
        closed = asyncio.Event()
        connection.add_termination_listener(lambda _, ended=closed: ended.set())
        try:
            await connection.add_listener(CHANNEL, wake)
            await connection.add_listener(KEYS_CHANNEL, revoked)
            wake()  # anything appended while we were not listening
            store.keys_revoked.publish(None)  # and any key revoked meanwhile
            await closed.wait()
        except (OSError, asyncpg.PostgresError):
            log.warning("the LISTEN connection failed; reconnecting", exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                await connection.close()


@contextlib.asynccontextmanager
async def change_listener(store: Store) -> AsyncIterator[None]:
    """While open, appends committed by any process wake this process's readers, and keys revoked by any
    process are announced on `store.keys_revoked` (PostgreSQL only)."""
    if store.engine.dialect.name != "postgresql":
        yield
        return
    task = asyncio.create_task(_listen_forever(store))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
