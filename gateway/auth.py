"""Who is calling: a secret API key in `Authorization: Bearer ...` names the platform.

A verified key is remembered for a few seconds per process, and forgotten at once when it is revoked
(`store.keys_revoked`). Refused keys are counted per client address; a client that keeps guessing is
refused without any lookup for a while.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from connectors.kit.errors import XkitError
from gateway.settings import Settings
from sync.storage.store import Store
from sync.tenancy.platforms import KeyIdentity, hash_api_key, identify_key

log = logging.getLogger("xkit.auth")

# Verified keys remembered per process; past this the memory is dropped and refilled from the database.
MAX_CACHED_KEYS = 10_000


class TooManyFailedKeys(XkitError):
    """The client sent too many invalid keys lately; nothing is looked up until `retry_after` seconds pass."""

    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many invalid API keys from this address; retry in {retry_after} s", retryAfterSeconds=retry_after
        )
        self.retry_after = retry_after


def client_address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def _throttled_as(address: str) -> str:
    """One IPv6 host usually holds a whole /64, so its addresses count as one client."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address


@dataclass
class _Failures:
    window_ends: float
    count: int = 0
    locked_until: float = 0.0


class FailedAuthThrottle:
    """After `allowed` refused keys from one client within `window_seconds`, that client is refused for
    `lockout_seconds`. At most `max_clients` are remembered; the least recently failing are forgotten first."""

    def __init__(
        self,
        *,
        allowed: int,
        window_seconds: float,
        lockout_seconds: float,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowed = allowed
        self.window_seconds = window_seconds
        self.lockout_seconds = lockout_seconds
        self.max_clients = max_clients
        self._clock = clock
        self._clients: OrderedDict[str, _Failures] = OrderedDict()

    def check(self, address: str) -> None:
        """Raises `TooManyFailedKeys` while the client is locked out."""
        failures = self._clients.get(_throttled_as(address))
        if failures is None:
            return
        remaining = failures.locked_until - self._clock()
        if remaining > 0:
            raise TooManyFailedKeys(math.ceil(remaining))

    def failed(self, address: str) -> bool:
        """Count one refused key; True when it locks the client out."""
        client = _throttled_as(address)
        now = self._clock()
        failures = self._clients.pop(client, None)
        if failures is None or failures.window_ends <= now:
            failures = _Failures(window_ends=now + self.window_seconds)
        failures.count += 1
        locks_out = failures.count >= self.allowed
        if locks_out:
            failures.locked_until = now + self.lockout_seconds
            failures.window_ends = failures.locked_until + self.window_seconds
            failures.count = 0
        self._clients[client] = failures
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return locks_out

    def __len__(self) -> int:
        return len(self._clients)


class ApiKeyAuthenticator:
    def __init__(self, store: Store, *, cache_seconds: float, throttle: FailedAuthThrottle) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.throttle = throttle
        self._cache: dict[str, tuple[KeyIdentity, float]] = {}
        self._digest_of: dict[uuid.UUID, str] = {}
        store.keys_revoked.subscribe(self._forget)

    @classmethod
    def configured(cls, store: Store, settings: Settings) -> ApiKeyAuthenticator:
        throttle = FailedAuthThrottle(
            allowed=settings.auth_failures_allowed,
            window_seconds=settings.auth_failure_window_seconds,
            lockout_seconds=settings.auth_lockout_seconds,
            max_clients=settings.auth_failure_clients_tracked,
        )
        return cls(store, cache_seconds=settings.api_key_cache_seconds, throttle=throttle)

    async def identify(self, connection: HTTPConnection) -> KeyIdentity | None:
        """None without a bearer key or with one that is not valid; raises `TooManyFailedKeys` for a client
        locked out by its earlier failures."""
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        return await self.identify_key(key.strip(), client_address(connection))

    async def identify_key(self, key: str, address: str) -> KeyIdentity | None:
        self.throttle.check(address)
        digest = hash_api_key(key)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        identity = await identify_key(self.store, key)
        if identity is None:
            self._refused(address, key, digest)
            return None
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
            self._digest_of.clear()
        self._cache[digest] = (identity, now + self.cache_seconds)
        self._digest_of[identity.key_id] = digest
        return identity

    def _refused(self, address: str, key: str, digest: str) -> None:
        # The digest's first characters let an operator find a stored key (api_keys.key_hash) without
        # the log holding anything that opens a door.
        log.warning("refused an API key from %s (%d characters, sha256 %s...)", address, len(key), digest[:8])
        if self.throttle.failed(address):
            log.warning(
                "%s sent %d invalid API keys; refusing it for %d s",
                address,
                self.throttle.allowed,
                self.throttle.lockout_seconds,
            )

    def _forget(self, key_id: uuid.UUID | None) -> None:
        if key_id is None:
            self._cache.clear()
            self._digest_of.clear()
            return
        digest = self._digest_of.pop(key_id, None)
        if digest is not None:
            self._cache.pop(digest, None)
