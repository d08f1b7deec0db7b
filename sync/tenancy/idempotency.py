"""Idempotency keys: a write retried with the same key is answered from the first attempt.

The first request claims the key with an insert that only one concurrent request can win; the others
wait for its outcome. A key is kept 24 hours. When the first attempt failed in a way that changed
nothing at the provider, the key is released so a retry runs again; when its outcome is unknown (the
provider timed out on a create, or the process died mid-write), retries are refused rather than
risking a second record.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.kit.errors import BadInput, Conflict
from sync.storage.store import Store, utcnow
from sync.storage.tables import idempotency_keys

TTL = timedelta(hours=24)
# A claim still pending after this long belongs to a request that died mid-write.
ABANDONED_AFTER = timedelta(minutes=2)
POLL_SECONDS = 0.05
MAX_KEY_LENGTH = 255

PENDING, DONE, UNKNOWN = "pending", "done", "unknown"


def fingerprint(operation: str, arguments: dict[str, Any]) -> str:
    """The same operation with the same arguments, however its JSON was ordered."""
    canonical = orjson.dumps([operation, arguments], option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadInput(f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} printable characters", field="idempotencyKey")
    return key


async def claim(store: Store, platform_id: uuid.UUID, key: str, request_hash: str) -> Any | None:
    """None when this request owns the key and must do the write; otherwise the first request's result."""
    check_key(key)
    insert = postgresql.insert if store.engine.dialect.name == "postgresql" else sqlite.insert
    waited_since = time.monotonic()
    while True:
        now = utcnow()
        async with store.engine.begin() as conn:
            await conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.platform_id == platform_id,
                    idempotency_keys.c.key == key,
                    idempotency_keys.c.expires_at <= now,
                )
            )
            won = (
                await conn.execute(
                    insert(idempotency_keys)
                    .values(
                        platform_id=platform_id,
                        key=key,
                        request_hash=request_hash,
                        state=PENDING,
                        created_at=now,
                        expires_at=now + TTL,
                    )
                    .on_conflict_do_nothing()
                    .returning(idempotency_keys.c.key)
                )
            ).first()
            if won is not None:
                return None
            row = (
                await conn.execute(
                    select(idempotency_keys).where(
                        idempotency_keys.c.platform_id == platform_id, idempotency_keys.c.key == key
                    )
                )
            ).first()
        if row is None:
            continue  # released between our insert and our read: try to claim it again
        if row.request_hash != request_hash:
            raise Conflict(
                "this idempotencyKey was already used with a different request; use a new key for a new write",
                field="idempotencyKey",
            )
        if row.state == DONE:
            return orjson.loads(row.result)
        if row.state == UNKNOWN or now - row.created_at > ABANDONED_AFTER:
            raise Conflict(
                "the first request with this idempotencyKey ended without a known outcome at the provider; "
                "check whether the write happened before sending it again with a new key",
                field="idempotencyKey",
                outcomeUnknown=True,
            )
        if time.monotonic() - waited_since > ABANDONED_AFTER.total_seconds():
            raise Conflict("a request with this idempotencyKey is still in progress", field="idempotencyKey")
        await asyncio.sleep(POLL_SECONDS)


async def complete(store: Store, platform_id: uuid.UUID, key: str, result: Any) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.platform_id == platform_id, idempotency_keys.c.key == key)
            .values(state=DONE, result=orjson.dumps(result).decode())
        )


async def release(store: Store, platform_id: uuid.UUID, key: str) -> None:
    """The write failed without touching the provider: a retry with the key may run again."""
    async with store.engine.begin() as conn:
        await conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.platform_id == platform_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.state == PENDING,
            )
        )


async def mark_unknown(store: Store, platform_id: uuid.UUID, key: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.platform_id == platform_id, idempotency_keys.c.key == key)
            .values(state=UNKNOWN)
        )


async def purge_expired(store: Store) -> int:
    async with store.engine.begin() as conn:
        result = await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at <= utcnow()))
    return int(result.rowcount or 0)
