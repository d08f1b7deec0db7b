"""Platforms, their secret API keys, their OAuth apps and their end users."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.kit.oauth import OAuthApp
from sync.storage.revocation import KEYS_CHANNEL
from sync.storage.store import Store, utcnow
from sync.storage.tables import api_keys, end_users, platforms, provider_apps

KEY_PREFIX = "xk_"


def hash_api_key(key: str) -> str:
    # Keys are 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    id: uuid.UUID
    platform_id: uuid.UUID
    key: str  # shown once, never stored


async def create_platform(store: Store, name: str) -> uuid.UUID:
    platform_id = uuid.uuid4()
    async with store.engine.begin() as conn:
        await conn.execute(platforms.insert().values(id=platform_id, name=name, created_at=utcnow()))
    return platform_id


async def create_api_key(
    store: Store, platform_id: uuid.UUID, name: str = "default", key: str | None = None
) -> IssuedKey:
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = uuid.uuid4()
    async with store.engine.begin() as conn:
        await conn.execute(
            api_keys.insert().values(
                id=key_id,
                platform_id=platform_id,
                name=name,
                prefix=key[:10],
                key_hash=hash_api_key(key),
                created_at=utcnow(),
            )
        )
    return IssuedKey(key_id, platform_id, key)


@dataclass(frozen=True)
class KeyIdentity:
    """Who a secret API key speaks for."""

    platform_id: uuid.UUID
    key_id: uuid.UUID


async def identify_key(store: Store, key: str) -> KeyIdentity | None:
    async with store.reader.connect() as conn:
        row = (
            await conn.execute(
                select(api_keys.c.platform_id, api_keys.c.id).where(
                    api_keys.c.key_hash == hash_api_key(key), api_keys.c.revoked_at.is_(None)
                )
            )
        ).first()
    return KeyIdentity(row.platform_id, row.id) if row else None


async def was_revoked(store: Store, key: str) -> bool:
    """Whether this key was issued and has since been revoked (a refusal can then say so)."""
    async with store.reader.connect() as conn:
        row = (
            await conn.execute(
                select(api_keys.c.id).where(
                    api_keys.c.key_hash == hash_api_key(key), api_keys.c.revoked_at.is_not(None)
                )
            )
        ).first()
    return row is not None


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown about a key: never the key, nor its hash."""

    id: uuid.UUID
    platform_id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


_KEY_INFO = (
    api_keys.c.id,
    api_keys.c.platform_id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
)


def _key_info(row: Row[*tuple[Any, ...]]) -> ApiKeyInfo:
    return ApiKeyInfo(row.id, row.platform_id, row.name, row.prefix, row.created_at, row.revoked_at)


async def list_api_keys(store: Store, platform_id: uuid.UUID) -> list[ApiKeyInfo]:
    """The platform's keys, revoked ones included, oldest first."""
    async with store.reader.connect() as conn:
        rows = await conn.execute(
            select(*_KEY_INFO)
            .where(api_keys.c.platform_id == platform_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        return [_key_info(row) for row in rows]


async def revoke_api_key(store: Store, key_id: uuid.UUID, *, platform_id: uuid.UUID | None = None) -> ApiKeyInfo | None:
    """Revoke a key (of `platform_id` only, when given; the operator's CLI gives none). None when there is no
    such key. Revoking twice keeps the first revocation time. Every process is told before this returns on
    this one; on PostgreSQL the others hear it through NOTIFY when the revocation commits."""
    scope = [api_keys.c.id == key_id]
    if platform_id is not None:
        scope.append(api_keys.c.platform_id == platform_id)
    async with store.engine.begin() as conn:
        await conn.execute(update(api_keys).where(*scope, api_keys.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
        row = (await conn.execute(select(*_KEY_INFO).where(*scope))).first()
        if row is not None and conn.dialect.name == "postgresql":
            await conn.execute(select(func.pg_notify(KEYS_CHANNEL, str(key_id))))
    if row is None:
        return None
    store.keys_revoked.publish(key_id)
    return _key_info(row)


async def revoked_among(store: Store, key_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these keys are revoked (or gone) now."""
    if not key_ids:
        return set()
    async with store.reader.connect() as conn:
        live = set(
            (
                await conn.execute(
                    select(api_keys.c.id).where(api_keys.c.id.in_(key_ids), api_keys.c.revoked_at.is_(None))
                )
            ).scalars()
        )
    return set(key_ids) - live


async def ensure_end_user(conn: AsyncConnection, platform_id: uuid.UUID, external_id: str) -> uuid.UUID:
    existing = (
        await conn.execute(
            select(end_users.c.id).where(end_users.c.platform_id == platform_id, end_users.c.external_id == external_id)
        )
    ).first()
    if existing:
        return existing.id  # type: ignore[no-any-return]
    end_user_id = uuid.uuid4()
    await conn.execute(
        end_users.insert().values(id=end_user_id, platform_id=platform_id, external_id=external_id, created_at=utcnow())
    )
    return end_user_id


async def set_provider_app(
    store: Store,
    platform_id: uuid.UUID,
    provider: str,
    app: OAuthApp,
) -> None:
    row_key = f"{platform_id}:{provider}"
    _recent_apps.pop((platform_id, provider), None)
    values = {
        "client_id": app.client_id,
        "client_secret_encrypted": store.vault.encrypt(app.client_secret.encode(), bound_to=row_key),
        "webhook_secret_encrypted": (
            store.vault.encrypt(app.webhook_secret.encode(), bound_to=f"{row_key}:webhook")
            if app.webhook_secret
            else None
        ),
        "authorize_url": app.authorize_url,
        "base_url": app.base_url,
    }
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(provider_apps)
            .where(provider_apps.c.platform_id == platform_id, provider_apps.c.provider == provider)
            .values(**values)
        )
        if result.rowcount == 0:
            await conn.execute(
                provider_apps.insert().values(
                    id=uuid.uuid4(), platform_id=platform_id, provider=provider, created_at=utcnow(), **values
                )
            )


# Provider apps change rarely and every provider call needs one: each process keeps them this long.
# A change made here applies at once; one made through another process, within this many seconds.
PROVIDER_APP_CACHE_SECONDS = 10.0
_recent_apps: dict[tuple[uuid.UUID, str], tuple[float, OAuthApp | None]] = {}


async def cached_provider_app(store: Store, platform_id: uuid.UUID, provider: str) -> OAuthApp | None:
    key = (platform_id, provider)
    cached = _recent_apps.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    async with store.reader.connect() as conn:
        app = await get_provider_app(store, conn, platform_id, provider)
    _recent_apps[key] = (time.monotonic() + PROVIDER_APP_CACHE_SECONDS, app)
    return app


async def get_provider_app(
    store: Store, conn: AsyncConnection, platform_id: uuid.UUID, provider: str
) -> OAuthApp | None:
    row = (
        await conn.execute(
            select(provider_apps).where(
                provider_apps.c.platform_id == platform_id, provider_apps.c.provider == provider
            )
        )
    ).first()
    if row is None:
        return None
    row_key = f"{platform_id}:{provider}"
    secret = store.vault.decrypt(row.client_secret_encrypted, bound_to=row_key).decode()
    sealed_webhook = row.webhook_secret_encrypted
    webhook = store.vault.decrypt(sealed_webhook, bound_to=f"{row_key}:webhook").decode() if sealed_webhook else None
    return OAuthApp(
        row.client_id, secret, authorize_url=row.authorize_url, base_url=row.base_url, webhook_secret=webhook
    )
