"""Who is calling: a secret API key in `Authorization: Bearer ...` names the platform."""

from __future__ import annotations

import time

from starlette.requests import HTTPConnection

from sync.store import Store
from sync.tenancy import KeyIdentity, hash_api_key, identify_key

# A verified key is trusted for this long without a database read: a revoked key stops working
# within this many seconds on every gateway process.
KEY_CACHE_SECONDS = 10.0


class ApiKeyAuthenticator:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[KeyIdentity, float]] = {}

    async def identify(self, connection: HTTPConnection) -> KeyIdentity | None:
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        return await self.identify_key(key.strip())

    async def identify_key(self, key: str) -> KeyIdentity | None:
        digest = hash_api_key(key)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        identity = await identify_key(self.store, key)
        if identity is not None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (identity, now + KEY_CACHE_SECONDS)
        return identity
