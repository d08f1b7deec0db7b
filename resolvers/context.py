"""What every resolver gets: the caller's platform, the store, the HTTP kit and per-execution loaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from connectors.kit.http import HttpKit
from resolvers.ids import CursorCodec
from resolvers.limits import KeyedBuckets, RequestLimits, SubscriptionSlots
from resolvers.loaders import Loaders
from resolvers.runs import RunWatchers
from sync.cache.discovery import DiscoveryCache
from sync.cache.feed import ChangeFeed
from sync.storage.store import Store

if TYPE_CHECKING:
    # Only named here: the passthrough resolver itself needs this module.
    from resolvers.passthrough import PassthroughLimits

RUN_POLL_SECONDS = 0.5


class Waker(Protocol):
    def wake(self) -> None: ...


@dataclass(frozen=True)
class ConnectPolicy:
    """Bounds of the OAuth connect flow (from settings)."""

    link_ttl: timedelta = timedelta(minutes=15)
    redirect_uris_per_platform: int = 20
    # Only test-mode keys may connect (`xkit dev`: a live Stripe key would sync real customers).
    test_keys_only: bool = False


@dataclass(frozen=True)
class Services:
    """Process-wide services, built once at start."""

    store: Store
    kit: HttpKit
    cursors: CursorCodec
    public_url: str
    limits: RequestLimits
    # Each key's GraphQL cost budget and request rate, and how many subscriptions it may hold open (in this
    # process).
    cost_budgets: KeyedBuckets
    request_rates: KeyedBuckets
    subscription_slots: SubscriptionSlots
    passthrough_limits: PassthroughLimits
    worker: Waker | None = None
    # What streams discover (e.g. every property name), shared with the in-process worker when there is one.
    discoveries: DiscoveryCache = field(default_factory=DiscoveryCache)
    connect: ConnectPolicy = field(default_factory=ConnectPolicy)
    # This process's one reader of the change log, shared by every subscriber.
    feed: ChangeFeed = field(init=False)
    # Sync progress: one poll per watched connection, shared by its subscribers.
    runs: RunWatchers = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "feed", ChangeFeed(self.store))
        object.__setattr__(self, "runs", RunWatchers(self.store, RUN_POLL_SECONDS))


@dataclass
class Caller:
    """Who is asking (platform, key), and what one execution remembers (loaders, credential reads).

    A WebSocket holds one Caller for as long as it is open; each execution on it (an operation, one event
    of a subscription) works with its own `for_execution()` copy, so nothing it reads outlives it."""

    services: Services
    platform_id: uuid.UUID
    # The secret API key the request came with (None for internal callers); credential reads are logged with it.
    api_key_id: uuid.UUID | None = None
    # A WebSocket's connection_init payload (strawberry sets it; it carries the API key).
    connection_params: dict[str, object] | None = None
    _loaders: Loaders | None = field(default=None, repr=False)
    # Whether this caller's requests are charged to the key's request rate already (HTTP, in the gateway);
    # if not (a WebSocket), each operation is charged when it is validated.
    rate_charged: bool = False
    # Credentials read in this request, by connection: aliases of one read are one read on record.
    credential_reads: dict[uuid.UUID, Any] = field(default_factory=dict, repr=False)

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def audience(self) -> tuple[uuid.UUID, uuid.UUID | None]:
        """Callers that get the same answer to the same operation: one platform, one key (credential
        reads are recorded per key). Subscribers sharing an audience share each event's execution, so
        whatever may change what a caller sees (a narrower scope, one day) must be part of it."""
        return (self.platform_id, self.api_key_id)

    def for_execution(self, read_together: dict[Any, Any] | None = None) -> Caller:
        """The same caller with nothing remembered: fresh loaders, no credential reads yet. Executions of
        events read together (`read_together`, one replay batch) share their platform's loaders instead."""
        loaders = None
        if read_together is not None:
            loaders = read_together.get(self.platform_id)
            if loaders is None:
                loaders = read_together[self.platform_id] = Loaders(self.services.store, self.platform_id)
        return replace(self, _loaders=loaders, credential_reads={})

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.services.store, self.platform_id)
        return self._loaders
