"""Who is calling: a secret API key in `Authorization: Bearer ...` names the platform."""

from __future__ import annotations

import time
import uuid

from starlette.requests import HTTPConnection

from sync.store import Store
from sync.tenancy import hash_api_key, platform_for_key

# A verified key is trusted for this long without a database read: a revoked key stops working
# within this many seconds on every gateway process.
KEY_CACHE_SECONDS = 10.0


class ApiKeyAuthenticator:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[uuid.UUID, float]] = {}

    async def platform_for(self, connection: HTTPConnection) -> uuid.UUID | None:
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        return await self.platform_for_key(key.strip())

    async def platform_for_key(self, key: str) -> uuid.UUID | None:
        digest = hash_api_key(key)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        platform_id = await platform_for_key(self.store, key)
        if platform_id is not None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (platform_id, now + KEY_CACHE_SECONDS)
        return platform_id
