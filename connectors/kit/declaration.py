"""A connector is a declaration: auth, base URL, streams, errors, webhook verification.

Strategies (pagination, incremental, deletions) are small objects chosen per stream; the syncer drives
them through `StreamReader` and never sees provider HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx2

from connectors.kit.convert import parse_datetime
from connectors.kit.errors import ProviderError
from connectors.kit.http import ProviderSession
from connectors.kit.jsonpath import dig
from connectors.kit.mapping import ModelMapping
from connectors.kit.oauth import Auth
from connectors.kit.ratelimit import RateLimit
from connectors.kit.records import Page, RemoteRecord
from connectors.kit.webhooks import WebhookVerifier

Cursor = dict[str, Any]


@dataclass
class StreamContext:
    session: ProviderSession
    stream: Stream
    # Query parameters found at run time, e.g. every property name the account defines.
    discovered_params: dict[str, Any] = field(default_factory=dict)

    def params(self, **extra: Any) -> dict[str, Any]:
        return {**self.stream.params, **self.discovered_params, **extra}


class Pagination(Protocol):
    def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]: ...


class Incremental(Protocol):
    def initial_cursor(self, backfill_started_at: datetime) -> Cursor: ...

    def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]: ...


class Deletions(Protocol):
    def pages(self, ctx: StreamContext) -> AsyncIterator[Page]: ...


class Discovery(Protocol):
    async def params(self, session: ProviderSession, stream: Stream) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Stream:
    name: str
    path: str
    pagination: Pagination
    primary_key: str = "id"
    mapping: ModelMapping | None = None
    incremental: Incremental | None = None
    deletions: Deletions | None = None
    discovery: Discovery | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    created_at: str | None = None  # dotted path of the remote creation time
    updated_at: str | None = None  # dotted path of the remote modification time
    deleted_at: str | None = None  # dotted path of the remote deletion time, on tombstones

    @property
    def model_name(self) -> str | None:
        return self.mapping.model.name if self.mapping else None

    def to_record(self, raw: dict[str, Any], *, deleted: bool = False) -> RemoteRecord:
        return RemoteRecord(
            remote_id=str(dig(raw, self.primary_key)),
            raw=raw,
            common=self.mapping.to_common(raw) if self.mapping else None,
            created_at=parse_datetime(dig(raw, self.created_at)) if self.created_at else None,
            updated_at=parse_datetime(dig(raw, self.updated_at)) if self.updated_at else None,
            deleted=deleted,
            deleted_at=parse_datetime(dig(raw, self.deleted_at)) if deleted and self.deleted_at else None,
        )


def default_error(response: httpx2.Response) -> ProviderError:
    return ProviderError(
        f"{response.request.method} {response.request.url.path} answered {response.status_code}",
        status=response.status_code,
    )


@dataclass(frozen=True)
class Connector:
    name: str  # lowercase, as clients pass it: "hubspot"
    display_name: str
    base_url: str
    auth: Auth
    streams: tuple[Stream, ...]
    rate_limit: RateLimit | None = None
    parse_error: Callable[[httpx2.Response], ProviderError] = default_error
    default_headers: Mapping[str, str] = field(default_factory=dict)
    webhook: WebhookVerifier | None = None
    # The token response names the API host (Salesforce: "instance_url"); used unless a connection overrides it.
    base_url_from_credentials: str | None = None

    def stream(self, name: str) -> Stream:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise KeyError(name)

    @property
    def stream_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.streams)
