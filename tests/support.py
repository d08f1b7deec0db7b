"""Helpers shared by tests: a platform with a key, a HubSpot connection, the gateway over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx2
import pytest
import pytest_asyncio
import uvicorn
from gql.transport.websockets import WebsocketsTransport
from pydantic import SecretStr
from sqlalchemy import Row, event, func, select, update

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox.driver import HubSpotDriver
from connectors.kit.egress import EgressPolicy, Resolver
from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp
from connectors.kit.registry import Endpoints, SandboxDriver
from connectors.salesforce.sandbox import SalesforceSandbox
from connectors.salesforce.sandbox.driver import SalesforceDriver
from gateway.app import Runtime, create_app
from gateway.cli import main as xkit
from gateway.settings import Settings
from resolvers.ids import to_global_id
from sync.cache import changes
from sync.cache.changes import ChangeFilter
from sync.storage.store import Store
from sync.storage.tables import records, stream_states
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.platforms import create_api_key, create_platform, set_provider_app
from sync.worker.scheduler import Worker

# Where the tests' sandboxes and servers listen: this machine only.
SANDBOX_EGRESS = ("127.0.0.0/8", "::1", "localhost")


def sandbox_egress(*, resolver: Resolver | None = None, also: tuple[str, ...] = ()) -> EgressPolicy:
    """The egress policy for tests: the sandboxes on this machine (and `also`), nothing else."""
    if resolver is None:
        return EgressPolicy((*SANDBOX_EGRESS, *also))
    return EgressPolicy((*SANDBOX_EGRESS, *also), resolver=resolver)


@contextlib.asynccontextmanager
async def fast_kit(egress: EgressPolicy, *, timeout: float = 10, max_retries: int = 6) -> AsyncIterator[HttpKit]:
    """An HTTP kit like the `kit` fixture's (short backoffs) under a given egress policy."""
    kit = HttpKit(
        egress=egress,
        timeout=timeout,
        max_retries=max_retries,
        backoff_base=0.01,
        backoff_max=0.2,
        path_window_scale=0.01,
    )
    try:
        yield kit
    finally:
        await kit.aclose()


@dataclass
class Tenant:
    platform_id: uuid.UUID
    api_key: str


async def new_tenant(store: Store, name: str = "acme") -> Tenant:
    platform_id = await create_platform(store, name)
    issued = await create_api_key(store, platform_id)
    return Tenant(platform_id, issued.key)


async def connect_sandbox(
    store: Store, tenant: Tenant, driver: SandboxDriver, endpoints: Endpoints, **connection: Any
) -> uuid.UUID:
    """The tenant's OAuth app for a served sandbox, and a connection holding freshly minted tokens;
    `connection` sets the rest of the `NewConnection` (`external_user_id` is "user-1" unless it says)."""
    await set_provider_app(store, tenant.platform_id, driver.provider, endpoints.app)
    new = NewConnection(
        platform_id=tenant.platform_id,
        provider=driver.provider,
        credentials=driver.tokens(),
        base_url=endpoints.base_url,
        **{"external_user_id": "user-1", **connection},
    )
    return await create_connection(store, new)


async def connect_hubspot(
    store: Store,
    tenant: Tenant,
    sandbox: HubSpotSandbox,
    base_url: str,
    *,
    external_user_id: str = "user-1",
    rate_limit: dict[str, Any] | None = None,
) -> uuid.UUID:
    endpoints = Endpoints(OAuthApp(sandbox.client_id, sandbox.client_secret), base_url, (base_url,))
    driver = HubSpotDriver(sandbox)
    return await connect_sandbox(
        store, tenant, driver, endpoints, external_user_id=external_user_id, rate_limit=rate_limit
    )


async def connect_salesforce(
    store: Store, tenant: Tenant, sandbox: SalesforceSandbox, login_url: str, *, external_user_id: str = "org-admin"
) -> uuid.UUID:
    """No base URL: the token response names the org's instance, as on Salesforce."""
    app = OAuthApp(sandbox.client_id, sandbox.client_secret, authorize_url=f"{login_url}/services/oauth2/authorize")
    endpoints = Endpoints(app, None, (login_url,))
    return await connect_sandbox(store, tenant, SalesforceDriver(sandbox), endpoints, external_user_id=external_user_id)


def imported_hubspot_tokens(
    sandbox: HubSpotSandbox, base_url: str, external_user_id: str, provider: str = "hubspot"
) -> dict[str, Any]:
    """A createConnection input importing a fresh pair of the sandbox's tokens (and nothing else)."""
    tokens = sandbox.mint_tokens()
    return {
        "provider": provider,
        "externalUserId": external_user_id,
        "credentials": {"accessToken": tokens["access_token"], "refreshToken": tokens["refresh_token"]},
        "baseUrl": base_url,
    }


def cli_platform(
    database_url: str, secret_key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    """Points the `xkit` command line at the test database and creates platform "acme" with it: its id."""
    monkeypatch.setenv("XKIT_DATABASE_URL", database_url)
    monkeypatch.setenv("XKIT_SECRET_KEY", secret_key)
    xkit(["platforms", "create", "acme"])
    return capsys.readouterr().out.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: Any, *, port: int | None = None, lifespan: str = "on") -> AsyncIterator[str]:
    """Run an ASGI app under uvicorn on this event loop, over real HTTP. A chosen `port` lets a test stop
    a server and bring it back at the same address."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Gateway:
    url: str
    runtime: Runtime
    client: httpx2.AsyncClient

    async def graphql(self, query: str, api_key: str | None, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        response = await self.client.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body: dict[str, Any] = response.json()
        body["_status"] = response.status_code
        return body


@contextlib.asynccontextmanager
async def gateway(
    store: Store, kit: HttpKit, secret_key: str, worker: Worker | None = None, **settings_overrides: Any
) -> AsyncIterator[Gateway]:
    """`settings_overrides` are Settings fields; the public URL is where the gateway is served unless given,
    so connect links and OAuth callbacks point back at it."""
    port = free_port()
    chosen: dict[str, Any] = {
        "public_url": f"http://127.0.0.1:{port}",
        "egress_allow": list(SANDBOX_EGRESS),
        **settings_overrides,
    }
    settings = Settings(secret_key=SecretStr(secret_key), run_worker=False, **chosen)
    runtime = Runtime(settings, store, kit, worker)
    app = create_app(runtime, own_resources=False)
    async with serve(app, port=port) as url, httpx2.AsyncClient(timeout=30) as client:
        yield Gateway(url, runtime, client)


def data(body: dict[str, Any]) -> Any:
    assert not body.get("errors"), body.get("errors")
    return body["data"]


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


async def cached_ids(store: Store, connection_id: uuid.UUID, stream: str, *, deleted: bool = False) -> set[str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(records.c.remote_id).where(
                records.c.connection_id == connection_id, records.c.stream == stream, records.c.deleted.is_(deleted)
            )
        )
        return {row.remote_id for row in rows}


async def cached_records(store: Store, connection_id: uuid.UUID, stream: str) -> list[Row[Any]]:
    """The cache's rows for one stream of a connection, deleted ones included."""
    async with store.engine.connect() as conn:
        query = select(records).where(records.c.connection_id == connection_id, records.c.stream == stream)
        return list(await conn.execute(query))


async def row_count(store: Store, connection_id: uuid.UUID) -> int:
    async with store.engine.connect() as conn:
        query = select(func.count()).select_from(records).where(records.c.connection_id == connection_id)
        return int((await conn.execute(query)).scalar_one())


@contextlib.contextmanager
def statements_run(store: Store) -> Iterator[list[str]]:
    """The SQL statements run on `store` while the block runs, in order (clear the list to count anew)."""
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def run_everything_due(store: Store, kit: HttpKit) -> None:
    await Worker(store, kit, concurrency=8).drain()


async def make_streams_due(store: Store, connection_id: uuid.UUID) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(stream_states)
            .where(stream_states.c.connection_id == connection_id)
            .values(next_run_at=datetime.now(UTC))
        )


async def stream_errors(store: Store, connection_id: uuid.UUID) -> dict[str, str | None]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(stream_states.c.stream, stream_states.c.last_error).where(
                stream_states.c.connection_id == connection_id
            )
        )
        return {row.stream: row.last_error for row in rows}


@contextlib.asynccontextmanager
async def synced_hubspot(
    store: Store,
    kit: HttpKit,
    sandbox: HubSpotSandbox,
    sandbox_url: str,
    secret_key: str,
    **settings_overrides: Any,
) -> AsyncIterator[tuple[Gateway, Tenant, uuid.UUID]]:
    """A tenant with one HubSpot connection, backfilled, and the gateway serving it (`settings_overrides`
    as for `gateway`)."""
    sandbox.faults.rate_limit_enabled = False
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, sandbox, sandbox_url)
    await run_everything_due(store, kit)
    async with gateway(store, kit, secret_key, **settings_overrides) as api:
        yield api, tenant, connection_id


@dataclass
class Connected:
    """A tenant's connection and the gateway serving it, for tests that drive it through GraphQL."""

    api: Gateway
    tenant: Tenant
    connection_id: uuid.UUID

    @property
    def connection(self) -> str:
        return to_global_id("Connection", self.connection_id)

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.api.graphql(query, self.tenant.api_key, **variables)


@dataclass
class SyncedHubSpot(Connected):
    """What `synced_hubspot` sets up, kept together for the tests that drive it (they add their own helpers)."""

    sandbox: HubSpotSandbox
    store: Store

    async def logged_since(self, after: int) -> list[Any]:
        """The tenant's changes logged after position `after`."""
        async with self.store.engine.connect() as conn:
            return await changes.read(conn, self.tenant.platform_id, after, 1000, ChangeFilter())

    async def position(self) -> int:
        """The change log's latest position."""
        async with self.store.engine.connect() as conn:
            return await changes.latest(conn)


Synced = TypeVar("Synced", bound=SyncedHubSpot)


@contextlib.asynccontextmanager
async def synced(
    holder: type[Synced], store: Store, kit: HttpKit, sandbox: HubSpotSandbox, sandbox_url: str, secret_key: str
) -> AsyncIterator[Synced]:
    async with synced_hubspot(store, kit, sandbox, sandbox_url, secret_key) as (api, tenant, connection_id):
        yield holder(api, tenant, connection_id, sandbox, store)


def synced_fixture(holder: type[Synced]) -> Any:
    """A fixture giving `holder` over a backfilled HubSpot connection and the gateway serving it:
    `setup = synced_fixture(Setup)` in a test module."""

    @pytest_asyncio.fixture
    async def fixture(
        store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
    ) -> AsyncIterator[Synced]:
        async with synced(holder, store, kit, hubspot, hubspot_url, secret_key) as ready:
            yield ready

    return fixture


def graphql_ws(gateway_url: str, api_key: str) -> WebsocketsTransport:
    """A gql transport speaking graphql-transport-ws to a served gateway, with the key in its init payload."""
    return WebsocketsTransport(
        url=gateway_url.replace("http://", "ws://") + "/graphql",
        init_payload={"Authorization": f"Bearer {api_key}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        ack_timeout=5,
    )


async def latest_change_cursor(store: Store) -> str:
    """Subscribing after it replays whatever is appended from now on, however late the subscription starts."""
    async with store.engine.connect() as conn:
        return to_global_id("Change", await changes.latest(conn))


PASSTHROUGH = """mutation($input: PassthroughInput!) { passthrough(input: $input) { status headers body json } }"""


@dataclass
class PassthroughSetup:
    """A tenant with a HubSpot connection and the gateway serving it, for passthrough calls."""

    api: Gateway
    tenant: Tenant
    connection: str
    sandbox: HubSpotSandbox

    async def call(self, **input: Any) -> dict[str, Any]:
        return await self.api.graphql(
            PASSTHROUGH, self.tenant.api_key, input={"connectionId": self.connection, **input}
        )


Passing = TypeVar("Passing", bound=PassthroughSetup)


@contextlib.asynccontextmanager
async def passthrough_ready(
    holder: type[Passing],
    store: Store,
    kit: HttpKit,
    sandbox: HubSpotSandbox,
    sandbox_url: str,
    secret_key: str,
    **settings: Any,
) -> AsyncIterator[Passing]:
    sandbox.faults.rate_limit_enabled = False
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, sandbox, sandbox_url)
    async with gateway(store, kit, secret_key, **settings) as api:
        yield holder(api, tenant, to_global_id("Connection", connection_id), sandbox)
