"""What every resolver gets: the caller's platform, the store, the HTTP kit and per-request loaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

from connectors.kit.http import HttpKit
from resolvers.ids import CursorCodec
from resolvers.loaders import Loaders
from sync.feed import ChangeFeed
from sync.runner import DiscoveryCache
from sync.store import Store


class Waker(Protocol):
    def wake(self) -> None: ...


@dataclass(frozen=True)
class Services:
    """Process-wide services, built once at start."""

    store: Store
    kit: HttpKit
    cursors: CursorCodec
    public_url: str
    worker: Waker | None = None
    # What streams discover (e.g. every property name), shared with the in-process worker when there is one.
    discoveries: DiscoveryCache = field(default_factory=DiscoveryCache)
    # This process's one reader of the change log, shared by every subscriber.
    feed: ChangeFeed = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "feed", ChangeFeed(self.store))


@dataclass
class Caller:
    services: Services
    platform_id: uuid.UUID
    # The secret API key the request came with (None for internal callers); credential reads are logged with it.
    api_key_id: uuid.UUID | None = None
    # A WebSocket's connection_init payload (strawberry sets it; it carries the API key).
    connection_params: dict[str, object] | None = None
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def audience(self) -> tuple[uuid.UUID, uuid.UUID | None]:
        """Callers that get the same answer to the same operation: one platform, one key (credential
        reads are recorded per key). Subscribers sharing an audience share each event's execution, so
        whatever may change what a caller sees (a narrower scope, one day) must be part of it."""
        return (self.platform_id, self.api_key_id)

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.services.store, self.platform_id)
        return self._loaders
