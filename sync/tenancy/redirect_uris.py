"""The redirect URIs a platform registered: where its end users may be sent back after connecting."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.kit.errors import BadInput, NotFound
from sync.storage.store import Store, utcnow
from sync.storage.tables import platform_redirect_uris, platforms

# The column's width: a longer URI could not be stored, so it cannot be registered either.
MAX_REDIRECT_URI_LENGTH: int = platform_redirect_uris.c.uri.type.length  # type: ignore[attr-defined]

_uris = platform_redirect_uris.c


async def list_redirect_uris(conn: AsyncConnection, platform_id: uuid.UUID) -> list[str]:
    """Oldest first."""
    rows = await conn.execute(
        select(_uris.uri).where(_uris.platform_id == platform_id).order_by(_uris.created_at, _uris.uri)
    )
    return list(rows.scalars())


async def is_registered(conn: AsyncConnection, platform_id: uuid.UUID, uri: str) -> bool:
    found = await conn.execute(select(_uris.id).where(_uris.platform_id == platform_id, _uris.uri == uri))
    return found.first() is not None


async def add_redirect_uri(store: Store, platform_id: uuid.UUID, uri: str, *, limit: int) -> list[str]:
    """Registering a URI twice is harmless; one past `limit` is refused and nothing changes."""
    async with store.engine.begin() as conn:
        await _lock_platform(conn, platform_id)
        await conn.execute(_insert(conn).values(**_row(platform_id, uri)))
        registered = await list_redirect_uris(conn, platform_id)
        if len(registered) > limit:
            raise _too_many(limit, field="uri")  # rolls the insert back
    return registered


async def remove_redirect_uri(store: Store, platform_id: uuid.UUID, uri: str) -> bool:
    async with store.engine.begin() as conn:
        removed = await conn.execute(
            delete(platform_redirect_uris).where(_uris.platform_id == platform_id, _uris.uri == uri)
        )
    return bool(removed.rowcount)


async def replace_redirect_uris(store: Store, platform_id: uuid.UUID, uris: Sequence[str], *, limit: int) -> list[str]:
    wanted = list(dict.fromkeys(uris))
    if len(wanted) > limit:
        raise _too_many(limit, field="uris")
    async with store.engine.begin() as conn:
        await _lock_platform(conn, platform_id)
        await conn.execute(
            delete(platform_redirect_uris).where(_uris.platform_id == platform_id, _uris.uri.not_in(wanted))
        )
        for uri in wanted:
            await conn.execute(_insert(conn).values(**_row(platform_id, uri)))
        return await list_redirect_uris(conn, platform_id)


async def _lock_platform(conn: AsyncConnection, platform_id: uuid.UUID) -> None:
    """Changes to one platform's list take turns on PostgreSQL, so two at once cannot both pass the cap.
    SQLite has one writer at a time already (and no FOR UPDATE)."""
    found = await conn.execute(select(platforms.c.id).where(platforms.c.id == platform_id).with_for_update())
    if found.first() is None:
        raise NotFound("no platform with that id", field="platform")


def _insert(conn: AsyncConnection) -> Any:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return insert(platform_redirect_uris).on_conflict_do_nothing(index_elements=[_uris.platform_id, _uris.uri])


def _row(platform_id: uuid.UUID, uri: str) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "platform_id": platform_id, "uri": uri, "created_at": utcnow()}


def _too_many(limit: int, *, field: str) -> BadInput:
    return BadInput(f"a platform registers at most {limit} redirect URIs; remove one first", field=field)
