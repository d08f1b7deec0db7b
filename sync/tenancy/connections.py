"""Connections: one authorized provider account of one end user, its sealed credentials and stream states."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors import get_connector
from connectors.kit.credentials import Credentials
from connectors.kit.declaration import Connector
from connectors.kit.errors import XkitError
from connectors.kit.http import ConnectionAccess, HttpKit
from connectors.kit.oauth import OAuth2
from connectors.kit.ratelimit import RateLimit
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections, oauth_states, records, stream_states
from sync.tenancy.platforms import cached_provider_app, ensure_end_user

log = logging.getLogger(__name__)

ACTIVE = "active"
NEEDS_REAUTH = "needs_reauth"
DISABLED = "disabled"

BACKFILL = "backfill"
INCREMENTAL = "incremental"

DEFAULT_SYNC_INTERVAL = timedelta(seconds=15)

# `connections.account_id` of a connection whose credentials name no provider account (NULL: not looked at yet).
NO_ACCOUNT = ""


@dataclass(frozen=True)
class NewConnection:
    platform_id: uuid.UUID
    provider: str
    external_user_id: str
    credentials: Credentials
    base_url: str | None = None
    sync_interval_seconds: int = int(DEFAULT_SYNC_INTERVAL.total_seconds())
    rate_limit: dict[str, Any] | None = None


def seal(store: Store, connection_id: uuid.UUID, credentials: Credentials) -> bytes:
    return store.vault.encrypt(orjson.dumps(credentials.to_dict()), bound_to=str(connection_id))


def unseal(store: Store, connection_id: uuid.UUID, blob: bytes) -> Credentials:
    return Credentials.from_dict(orjson.loads(store.vault.decrypt(blob, bound_to=str(connection_id))))


def account_of(connector: Connector, credentials: Credentials) -> str | None:
    """The provider account the credentials belong to, as the provider's webhooks name it (kept in the clear
    in `connections.account_id`); None for a provider whose webhooks xkit does not take."""
    if connector.webhook_account_key is None:
        return None
    account = credentials.extra.get(connector.webhook_account_key)
    return NO_ACCOUNT if account in (None, "") else str(account)[:100]


async def create_connection(store: Store, new: NewConnection, conn: AsyncConnection | None = None) -> uuid.UUID:
    connector = get_connector(new.provider)
    connection_id = uuid.uuid4()
    now = utcnow()

    async def write(c: AsyncConnection) -> None:
        end_user_id = await ensure_end_user(c, new.platform_id, new.external_user_id)
        await c.execute(
            connections.insert().values(
                id=connection_id,
                platform_id=new.platform_id,
                end_user_id=end_user_id,
                provider=connector.name,
                status=ACTIVE,
                base_url=new.base_url,
                credentials_encrypted=seal(store, connection_id, new.credentials),
                account_id=account_of(connector, new.credentials),
                sync_interval_seconds=new.sync_interval_seconds,
                rate_limit=new.rate_limit,
                created_at=now,
                updated_at=now,
            )
        )
        await c.execute(
            stream_states.insert(),
            [
                {
                    "id": uuid.uuid4(),
                    "platform_id": new.platform_id,
                    "connection_id": connection_id,
                    "stream": name,
                    "phase": BACKFILL,
                    "cursor": None,
                    "next_run_at": now,
                }
                for name in connector.stream_names
            ],
        )

    if conn is not None:
        await write(conn)
    else:
        async with store.engine.begin() as c:
            await write(c)
    return connection_id


async def learn_account(store: Store, kit: HttpKit, connection_id: uuid.UUID) -> None:
    """A connection whose credentials name no provider account (tokens imported without HubSpot's `hub_id`)
    asks the provider's after-token step (introspection), so webhooks for its account match at once. A failure is only
    logged: the connection works without it and its first token refresh names the account anyway."""
    row = await get_connection_row(store, connection_id)
    if row is None or row.account_id != NO_ACCOUNT:
        return
    auth = get_connector(row.provider).auth
    if not isinstance(auth, OAuth2) or auth.after_token is None:
        return
    try:
        await kit.session(await connection_access(store, row)).learn_token_facts()
    except XkitError as exc:
        log.info("connection %s: could not learn its provider account: %s", connection_id, exc.message)


async def delete_connection(store: Store, platform_id: uuid.UUID, connection_id: uuid.UUID) -> bool:
    async with store.engine.begin() as conn:
        # Deleted explicitly rather than by cascade alone: SQLite only cascades with its pragma on.
        owned = connections.c.platform_id == platform_id
        exists = (await conn.execute(select(connections.c.id).where(owned, connections.c.id == connection_id))).first()
        if exists is None:
            return False
        await conn.execute(delete(records).where(records.c.connection_id == connection_id))
        await conn.execute(delete(stream_states).where(stream_states.c.connection_id == connection_id))
        await conn.execute(delete(connections).where(connections.c.id == connection_id))
    return True


async def set_status(store: Store, connection_id: uuid.UUID, status: str, reason: str | None) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(connections)
            .where(connections.c.id == connection_id)
            .values(status=status, status_reason=reason, updated_at=utcnow())
        )


async def save_credentials(
    store: Store, connection_id: uuid.UUID, credentials: Credentials, account_id: str | None
) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(connections)
            .where(connections.c.id == connection_id)
            .values(
                credentials_encrypted=seal(store, connection_id, credentials),
                account_id=account_id,
                updated_at=utcnow(),
            )
        )


def effective_rate_limit(connector: Connector, override: dict[str, Any] | None) -> RateLimit | None:
    if not override:
        return connector.rate_limit
    requests = int(override.get("requests", 0))
    if requests <= 0:
        return None
    return RateLimit(requests=requests, per_seconds=float(override.get("perSeconds", 1.0)))


async def connection_access(store: Store, row: Row[Any]) -> ConnectionAccess:
    """Decrypt a connection's credentials and gather what the HTTP kit needs to call its provider."""
    connector = get_connector(row.provider)
    app = await cached_provider_app(store, row.platform_id, row.provider)
    connection_id: uuid.UUID = row.id

    async def persist(credentials: Credentials) -> None:
        await save_credentials(store, connection_id, credentials, account_of(connector, credentials))

    credentials = unseal(store, connection_id, row.credentials_encrypted)
    return ConnectionAccess(
        key=str(connection_id),
        auth=connector.auth_for(credentials),
        base_url=row.base_url or (app.base_url if app and app.base_url else None) or connector.base_url,
        credentials=credentials,
        parse_error=connector.parse_error,
        rate_limit=effective_rate_limit(connector, row.rate_limit),
        hosts=connector.hosts,
        app=app,
        save_credentials=persist,
        default_headers=connector.default_headers,
        base_url_key=None if row.base_url else connector.base_url_from_credentials,
    )


async def get_connection_row(store: Store, connection_id: uuid.UUID) -> Row[Any] | None:
    async with store.reader.connect() as conn:
        return (await conn.execute(select(connections).where(connections.c.id == connection_id))).first()


async def request_sync_now(store: Store, platform_id: uuid.UUID, connection_id: uuid.UUID) -> bool:
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(stream_states)
            .where(stream_states.c.connection_id == connection_id, stream_states.c.platform_id == platform_id)
            .values(next_run_at=utcnow())
        )
    return result.rowcount > 0


async def reconnect(store: Store, connection_id: uuid.UUID, credentials: Credentials, base_url: str | None) -> None:
    """New credentials (and host) for an existing connection: it becomes active again."""
    async with store.engine.begin() as conn:
        found = await conn.execute(select(connections.c.provider).where(connections.c.id == connection_id))
        provider = found.scalar()
        if provider is None:
            return
        await conn.execute(
            update(connections)
            .where(connections.c.id == connection_id)
            .values(
                credentials_encrypted=seal(store, connection_id, credentials),
                account_id=account_of(get_connector(provider), credentials),
                base_url=base_url,
                status=ACTIVE,
                status_reason=None,
                updated_at=utcnow(),
            )
        )


async def purge_expired_connect_links(store: Store) -> int:
    """Forget connect links past their expiry that nobody completed (a completed one is deleted at once)."""
    async with store.engine.begin() as conn:
        result = await conn.execute(delete(oauth_states).where(oauth_states.c.expires_at < utcnow()))
    return int(result.rowcount or 0)
