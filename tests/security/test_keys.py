"""Finding 4 (keys could not be revoked; an open WebSocket kept streaming under a revoked key) and the
failed-auth part of finding 8 (bad keys were neither throttled nor logged)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportError
from gql.transport.websockets import WebsocketsTransport
from pydantic import SecretStr
from sqlalchemy import event, select, update
from websockets.exceptions import ConnectionClosed

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.kit.records import RemoteRecord
from gateway.app import Runtime, create_app
from gateway.auth import FailedAuthThrottle, TooManyFailedKeys
from gateway.cli import main as xkit
from gateway.settings import Settings
from resolvers.keys import key_global_id
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.crypto import Vault, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.store import Store, utcnow
from sync.storage.tables import api_keys, connections
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.platforms import create_api_key, hash_api_key
from tests.support import Gateway, Tenant, cli_platform, data, error_codes, latest_change_cursor, new_tenant, serve

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]

API_KEYS = "{ apiKeys { id name prefix createdAt revokedAt } }"
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }"
WHO = "{ apiKeys { id } }"
CHANGES = (
    "subscription($after: String) { changes(after: $after) { remoteId connection { credentials { accessToken } } } }"
)


@contextlib.asynccontextmanager
async def keyed_gateway(
    store: Store, kit: HttpKit, secret_key: str, *, local_address: str | None = None, **settings: Any
) -> AsyncIterator[Gateway]:
    """The gateway over real HTTP with its own settings; `local_address` is the client's source address
    (any 127.x.y.z reaches the server, and the server sees it as the client)."""
    config = Settings(secret_key=SecretStr(secret_key), run_worker=False, **settings)
    runtime = Runtime(config, store, kit, None)
    transport = httpx2.AsyncHTTPTransport(local_address=local_address)
    async with (
        serve(create_app(runtime, own_resources=False)) as url,
        httpx2.AsyncClient(timeout=30, transport=transport) as client,
    ):
        yield Gateway(url, runtime, client)


async def key_id_of(store: Store, key: str) -> uuid.UUID:
    async with store.engine.connect() as conn:
        key_id: uuid.UUID = (
            await conn.execute(select(api_keys.c.id).where(api_keys.c.key_hash == hash_api_key(key)))
        ).scalar_one()
        return key_id


async def second_key(store: Store, tenant: Tenant, name: str = "second") -> tuple[str, uuid.UUID]:
    issued = await create_api_key(store, tenant.platform_id, name)
    return issued.key, issued.id


async def append_change(store: Store, tenant: Tenant, connection_id: uuid.UUID, remote_id: str) -> None:
    async with store.engine.begin() as conn:
        end_user = (
            await conn.execute(select(connections.c.end_user_id).where(connections.c.id == connection_id))
        ).scalar_one()
        target = StreamTarget(tenant.platform_id, connection_id, end_user, "contacts", "Contact")
        await upsert_records(
            conn, target, [RemoteRecord(remote_id, {"id": remote_id}, {"first_name": remote_id})], utcnow()
        )
    store.changes_appended.notify()


def close_code(error: BaseException | None) -> int | None:
    while error is not None:
        if isinstance(error, ConnectionClosed) and error.rcvd is not None:
            return int(error.rcvd.code)
        code = getattr(error, "code", None)
        if isinstance(code, int) and code >= 1000:
            return code
        error = error.__cause__ or error.__context__
    return None


class Subscriber:
    """One subscription to `changes` under one key, read in the background."""

    def __init__(self, url: str, key: str, protocol: str, after: str | None = None) -> None:
        self.after = after
        ws_url = url.replace("http://", "ws://") + "/graphql"
        transport = WebsocketsTransport(
            url=ws_url, init_payload={"Authorization": f"Bearer {key}"}, subprotocols=[protocol], ack_timeout=5
        )
        self.client = Client(transport=transport)
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscriber:
        session = await self.client.connect_async()

        async def read() -> None:
            try:
                async for result in session.subscribe(GraphQLRequest(CHANGES, variable_values={"after": self.after})):
                    self.received.put_nowait(result["changes"])
                self.ended.set_result(None)
            except Exception as error:  # the close is what the tests wait for
                self.ended.set_result(error)

        self.task = asyncio.create_task(read())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.client.close_async()

    async def next_change(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.received.get(), timeout)


@pytest.fixture
async def hubspot_connection(store: Store) -> tuple[Tenant, uuid.UUID]:
    tenant = await new_tenant(store)
    connection_id = await create_connection(
        store, NewConnection(tenant.platform_id, "hubspot", "user-1", Credentials(access_token="provider-token"))
    )
    return tenant, connection_id


# ---- listing and revoking -----------------------------------------------------------------------------


async def test_api_keys_lists_the_platforms_keys_and_never_the_keys_themselves(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    second, _ = await second_key(store, tenant)
    other = await new_tenant(store, "other")
    async with keyed_gateway(store, kit, secret_key) as api:
        response = await api.client.post(
            f"{api.url}/graphql", json={"query": API_KEYS}, headers={"Authorization": f"Bearer {tenant.api_key}"}
        )
    listed = response.json()["data"]["apiKeys"]
    assert [key["name"] for key in listed] == ["default", "second"]
    assert [key["prefix"] for key in listed] == [tenant.api_key[:10], second[:10]]
    assert all(key["revokedAt"] is None and key["createdAt"] for key in listed)
    for secret in (tenant.api_key, second, other.api_key):
        assert secret not in response.text
    async with store.engine.connect() as conn:
        hashes = (await conn.execute(select(api_keys.c.key_hash))).scalars().all()
    assert not any(digest in response.text for digest in hashes)


async def test_a_revoked_key_is_refused_at_once_by_the_process_that_revoked_it(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    admin, _ = await second_key(store, tenant, "admin")
    revoked_id = await key_id_of(store, tenant.api_key)
    # A day of caching: only the revocation itself can make the next request fail.
    async with keyed_gateway(store, kit, secret_key, api_key_cache_seconds=86_400) as api:
        data(await api.graphql(WHO, tenant.api_key))  # now cached as valid
        revoked = data(await api.graphql(REVOKE, admin, id=key_global_id(revoked_id)))["revokeApiKey"]
        assert revoked["revokedAt"] is not None

        refused = await api.graphql(WHO, tenant.api_key)
        assert refused["_status"] == 401 and error_codes(refused) == ["UNAUTHENTICATED"]
        again = data(await api.graphql(REVOKE, admin, id=key_global_id(revoked_id)))["revokeApiKey"]
        assert again["revokedAt"] == revoked["revokedAt"]  # the first revocation stands
        listed = data(await api.graphql(API_KEYS, admin))["apiKeys"]
    assert {key["id"]: key["revokedAt"] for key in listed} == {
        key_global_id(revoked_id): revoked["revokedAt"],
        key_global_id(await key_id_of(store, admin)): None,
    }


async def test_a_key_may_revoke_itself(store: Store, kit: HttpKit, secret_key: str) -> None:
    tenant = await new_tenant(store)
    own_id = key_global_id(await key_id_of(store, tenant.api_key))
    async with keyed_gateway(store, kit, secret_key) as api:
        assert data(await api.graphql(REVOKE, tenant.api_key, id=own_id))["revokeApiKey"]["id"] == own_id
        assert (await api.graphql(WHO, tenant.api_key))["_status"] == 401


async def test_another_platforms_key_cannot_be_revoked_and_keeps_working(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    other = await new_tenant(store, "other")
    others_id = key_global_id(await key_id_of(store, other.api_key))
    async with keyed_gateway(store, kit, secret_key) as api:
        refused = await api.graphql(REVOKE, tenant.api_key, id=others_id)
        assert error_codes(refused) == ["NOT_FOUND"]
        assert error_codes(await api.graphql(REVOKE, tenant.api_key, id=key_global_id(uuid.uuid4()))) == ["NOT_FOUND"]
        assert error_codes(await api.graphql(REVOKE, tenant.api_key, id="not-an-id")) == ["BAD_USER_INPUT"]
        data(await api.graphql(WHO, other.api_key))
    async with store.engine.connect() as conn:
        revoked = (await conn.execute(select(api_keys.c.revoked_at).where(api_keys.c.revoked_at.is_not(None)))).all()
    assert revoked == []


def test_the_cli_lists_and_revokes_keys(
    database_url: str, secret_key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    platform_id = cli_platform(database_url, secret_key, monkeypatch, capsys)
    xkit(["keys", "create", "--platform", platform_id, "--name", "ci"])
    key = capsys.readouterr().out.strip()

    xkit(["keys", "list", "--platform", platform_id])
    listed = capsys.readouterr().out
    assert key[:10] in listed and "active" in listed and "ci" in listed
    assert key not in listed
    key_id = listed.split()[0]

    xkit(["keys", "revoke", key_id])
    assert f"revoked {key_id}" in capsys.readouterr().out
    xkit(["keys", "list", "--platform", platform_id])
    assert "revoked " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no API key"):
        xkit(["keys", "revoke", str(uuid.uuid4())])
    with pytest.raises(SystemExit, match="not an API key id"):
        xkit(["keys", "revoke", "nonsense"])


# ---- revocation reaches open WebSockets and other processes ---------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_open_subscription_under_a_revoked_key_is_closed_and_others_keep_streaming(
    store: Store, kit: HttpKit, secret_key: str, hubspot_connection: tuple[Tenant, uuid.UUID], protocol: str
) -> None:
    tenant, connection_id = hubspot_connection
    control, _ = await second_key(store, tenant, "control")
    revoked_id = await key_id_of(store, tenant.api_key)
    after = await latest_change_cursor(store)
    async with (
        keyed_gateway(store, kit, secret_key) as api,
        Subscriber(api.url, tenant.api_key, protocol, after) as doomed,
        Subscriber(api.url, control, protocol, after) as kept,
    ):
        await append_change(store, tenant, connection_id, "before")
        for subscriber in (doomed, kept):
            first = await subscriber.next_change()
            # The finding: fresh provider credentials streamed to whoever holds the socket.
            assert first["remoteId"] == "before"
            assert first["connection"]["credentials"]["accessToken"] == "provider-token"

        data(await api.graphql(REVOKE, control, id=key_global_id(revoked_id)))
        closed = await asyncio.wait_for(asyncio.shield(doomed.ended), 10)
        assert isinstance(closed, TransportError)
        assert close_code(closed) == 4403

        await append_change(store, tenant, connection_id, "after")
        assert (await kept.next_change())["remoteId"] == "after"
        assert doomed.received.empty()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_on_postgresql_every_process_refuses_the_revoked_key_within_seconds(
    store: Store,
    database_url: str,
    kit: HttpKit,
    secret_key: str,
    hubspot_connection: tuple[Tenant, uuid.UUID],
) -> None:
    tenant, _ = hubspot_connection
    admin, _ = await second_key(store, tenant, "admin")
    revoked_id = await key_id_of(store, tenant.api_key)
    # Another gateway process: its own engine, its own LISTEN connection, its own caches.
    elsewhere = Store(create_engine(database_url), Vault(parse_secret_key(secret_key)))
    try:
        async with (
            keyed_gateway(store, kit, secret_key) as here,
            keyed_gateway(
                elsewhere, kit, secret_key, api_key_cache_seconds=86_400, api_key_recheck_seconds=86_400
            ) as there,
        ):
            data(await there.graphql(WHO, tenant.api_key))  # cached there for a day
            async with Subscriber(there.url, tenant.api_key, PROTOCOLS[0]) as subscriber:
                revoked_at = time.monotonic()
                data(await here.graphql(REVOKE, admin, id=key_global_id(revoked_id)))
                closed = await asyncio.wait_for(asyncio.shield(subscriber.ended), 5)
                assert close_code(closed) == 4403
                deadline = revoked_at + 5
                while (status := (await there.graphql(WHO, tenant.api_key))["_status"]) != 401:
                    assert time.monotonic() < deadline, f"still {status} on the other process"
                    await asyncio.sleep(0.05)
            data(await there.graphql(WHO, admin))
    finally:
        await elsewhere.engine.dispose()


async def test_a_revocation_nobody_announced_still_closes_sockets_at_the_next_recheck(
    store: Store, kit: HttpKit, secret_key: str, hubspot_connection: tuple[Tenant, uuid.UUID]
) -> None:
    """As when `xkit keys revoke` runs in another process on SQLite: only the database knows."""
    tenant, connection_id = hubspot_connection
    revoked_id = await key_id_of(store, tenant.api_key)
    async with (
        keyed_gateway(store, kit, secret_key, api_key_recheck_seconds=0.2) as api,
        Subscriber(api.url, tenant.api_key, PROTOCOLS[0], await latest_change_cursor(store)) as subscriber,
    ):
        await append_change(store, tenant, connection_id, "before")
        await subscriber.next_change()
        async with store.engine.begin() as conn:
            await conn.execute(update(api_keys).where(api_keys.c.id == revoked_id).values(revoked_at=utcnow()))
        closed = await asyncio.wait_for(asyncio.shield(subscriber.ended), 10)
        assert close_code(closed) == 4403


# ---- failed-auth throttling ---------------------------------------------------------------------------


async def test_repeated_invalid_keys_from_one_client_are_rate_limited_before_any_lookup(
    store: Store, kit: HttpKit, secret_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await new_tenant(store)
    lookups: list[str] = []

    def count_key_lookups(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "api_keys" in statement:
            lookups.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count_key_lookups)
    guesses = [f"xk_guess_{n:02d}_{'x' * 30}" for n in range(4)]
    throttled = {"auth_failures_allowed": 3, "auth_lockout_seconds": 600}
    try:
        with caplog.at_level(logging.WARNING, logger="xkit.auth"):
            async with (
                keyed_gateway(store, kit, secret_key, local_address="127.0.0.2", **throttled) as attacker,
                keyed_gateway(store, kit, secret_key, local_address="127.0.0.3", **throttled) as neighbour,
            ):
                for guess in guesses[:3]:
                    assert (await attacker.graphql(WHO, guess))["_status"] == 401
                assert len(lookups) == 3

                refused = await attacker.client.post(
                    f"{attacker.url}/graphql", json={"query": WHO}, headers={"Authorization": f"Bearer {guesses[3]}"}
                )
                assert refused.status_code == 429
                assert 590 <= int(refused.headers["retry-after"]) <= 600
                assert error_codes(refused.json()) == ["RATE_LIMITED"]
                assert (await attacker.graphql(WHO, tenant.api_key))["_status"] == 429  # even a good key, for a while
                assert len(lookups) == 3  # nothing was looked up for the refused client

                data(await neighbour.graphql(WHO, tenant.api_key))  # another client is not affected
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count_key_lookups)

    refusals = [r for r in caplog.records if r.name == "xkit.auth" and "refused an API key" in r.getMessage()]
    assert len(refusals) == 3 and all("127.0.0.2" in r.getMessage() for r in refusals)
    assert any("refusing it for 600 s" in r.getMessage() for r in caplog.records)
    for guess in guesses:
        assert guess not in caplog.text
    assert tenant.api_key not in caplog.text


async def test_a_websocket_from_a_locked_out_client_is_refused_with_rate_limited(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    async with keyed_gateway(store, kit, secret_key, auth_failures_allowed=2) as api:
        for n in range(2):
            assert (await api.graphql(WHO, f"xk_wrong_{n}"))["_status"] == 401
        legacy = WebsocketsTransport(
            url=api.url.replace("http://", "ws://") + "/graphql",
            init_payload={"Authorization": f"Bearer {tenant.api_key}"},
            subprotocols=[WebsocketsTransport.APOLLO_SUBPROTOCOL],
            ack_timeout=5,
        )
        with pytest.raises(TransportError, match="RATE_LIMITED"):
            async with Client(transport=legacy) as session:
                await session.execute(GraphQLRequest(WHO))


def test_failed_auth_memory_stays_bounded_and_an_ipv6_64_counts_as_one_client() -> None:
    now = [0.0]
    throttle = FailedAuthThrottle(
        allowed=3, window_seconds=60, lockout_seconds=30, max_clients=100, clock=lambda: now[0]
    )
    for n in range(10_000):
        throttle.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(throttle) == 100

    for host in ("2001:db8::1", "2001:db8::2:3", "2001:db8::ffff:1"):
        throttle.failed(host)
    with pytest.raises(TooManyFailedKeys) as locked:
        throttle.check("2001:db8::99")
    assert locked.value.retry_after == 30
    throttle.check("2001:db8:0:1::1")  # the next /64 is another client

    now[0] = 31.0
    throttle.check("2001:db8::99")  # the lockout ends
