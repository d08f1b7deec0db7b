"""What streams discover from the provider at run time, cached per connection and stream.

Shared by everything that reads from a provider on a connection's behalf: the sync runs, the provider
webhook intake and the writebacks.
"""

from __future__ import annotations

import time
from typing import Any

from connectors.kit.declaration import Stream, StreamContext
from connectors.kit.http import ProviderSession
from sync.storage.store import Store
from sync.tenancy.field_mappings import load_overlay


class DiscoveryCache:
    """What a stream discovers at run time (e.g. an account's property names) changes rarely: ask the
    provider at most every few minutes per connection and stream, not on every 15-second run."""

    def __init__(self, ttl_seconds: float = 300.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._found: dict[tuple[Any, str], tuple[float, dict[str, Any]]] = {}
        self._labels: dict[tuple[Any, str], tuple[float, dict[str, dict[str, str]]]] = {}

    async def params(self, session: ProviderSession, stream: Stream, connection_id: Any) -> dict[str, Any]:
        assert stream.discovery is not None
        key = (connection_id, stream.name)
        cached = self._found.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        params = await stream.discovery.params(session, stream)
        self._found[key] = (time.monotonic() + self.ttl_seconds, params)
        return params

    async def labels(self, session: ProviderSession, stream: Stream, connection_id: Any) -> dict[str, dict[str, str]]:
        """The stream's label tables (e.g. deal stage names), cached like the discovered parameters."""
        key = (connection_id, f"{stream.name}/labels")
        cached = self._labels.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        tables = {name: await table.read(session) for name, table in stream.labels.items()}
        self._labels[key] = (time.monotonic() + self.ttl_seconds, tables)
        return tables

    def held_labels(self, stream: Stream, connection_id: Any) -> dict[str, dict[str, str]]:
        """The stream's label tables as last read, however long ago (empty when never read here): for the
        field-mapping re-derive, which asks the provider for nothing."""
        held = self._labels.get((connection_id, f"{stream.name}/labels"))
        return held[1] if held is not None else {}

    async def context(
        self, session: ProviderSession, stream: Stream, connection_id: Any, *, store: Store | None = None
    ) -> StreamContext:
        """What a stream's strategies run with: the session, whatever the stream discovers and, given the
        store, the connection's field mappings (at its current revision) that every record read is mapped with."""
        ctx = StreamContext(session, stream)
        if store is not None and stream.mapping is not None:
            ctx.overlay = await load_overlay(store, connection_id)
        if stream.discovery is not None:
            ctx.discovered_params = await self.params(session, stream, connection_id)
        if stream.labels:
            ctx.labels = await self.labels(session, stream, connection_id)
        return ctx
