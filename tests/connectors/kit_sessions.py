"""A provider session against a sandbox app, and the sandbox providers' common part, for the kit's
strategy tests."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from connectors.hubspot import HUBSPOT
from connectors.kit.credentials import Credentials
from connectors.kit.declaration import default_error
from connectors.kit.http import ConnectionAccess, HttpKit, ProviderSession
from connectors.kit.oauth import ApiKey
from connectors.kit.sandbox import serve_in_thread
from tests.support import sandbox_egress


@dataclass
class RecordingProvider(ABC):
    """A sandbox provider that remembers the query of every request it answers."""

    queries: list[dict[str, str]] = field(default_factory=list)

    @abstractmethod
    def routes(self) -> list[Route]: ...

    def app(self) -> Starlette:
        return Starlette(routes=self.routes())

    def seen(self, request: Request) -> dict[str, str]:
        query = dict(request.query_params)
        self.queries.append(query)
        return query


def api_key_access(base_url: str) -> ConnectionAccess:
    """A connection to `base_url` authenticated with the API key `key-123`, without a rate limit."""
    return ConnectionAccess(
        key="kit-tests",
        auth=ApiKey(),
        base_url=base_url,
        credentials=Credentials(api_key="key-123"),
        parse_error=default_error,
        rate_limit=None,
        hosts=HUBSPOT.hosts,
    )


@contextlib.asynccontextmanager
async def sandbox_session(app: Starlette) -> AsyncIterator[ProviderSession]:
    """A session with an API key to `app` served on this machine, with short retry backoffs."""
    kit = HttpKit(egress=sandbox_egress(), backoff_base=0.01, backoff_max=0.02)
    try:
        with serve_in_thread(app) as url:
            yield kit.session(api_key_access(url))
    finally:
        await kit.aclose()
