"""Egress (issue 10, finding 1): no request of xkit reaches inside the network unless an operator allowed it.

Every address form is refused where the input arrives (createConnection, setProviderApp,
createWebhookDestination) and again when the request is made (passthrough, sync, token refresh, webhook
delivery), on the address the name resolves to, which is the address then connected to. An "internal
service" here is a TCP listener on this machine that counts connections: refused means it saw none.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from connectors import CONNECTORS
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.credentials import Credentials
from connectors.kit.egress import UNREACHABLE, EgressPolicy, EgressRefused
from connectors.kit.oauth import OAuth2, OAuthApp
from gateway.dev import with_sandboxes_allowed
from gateway.settings import Settings
from resolvers.ids import to_global_id
from sync.storage.store import Store
from sync.storage.tables import connections, provider_apps, webhook_destinations
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.platforms import set_provider_app
from tests.support import (
    Gateway,
    Tenant,
    connect_hubspot,
    data,
    fast_kit,
    gateway,
    new_tenant,
    run_everything_due,
    serve,
    stream_errors,
)
from tests.test_webhooks_out import FAST, Receiver, account, deliveries, write

SECRET = b"INTERNAL-SECRET-BODY"

CREATE_CONNECTION = """mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }"""
SET_PROVIDER_APP = """mutation($input: ProviderAppInput!) { setProviderApp(input: $input) { provider } }"""
CREATE_DESTINATION = """mutation($input: CreateWebhookDestinationInput!) {
  createWebhookDestination(input: $input) { destination { id } secret }
}"""
PASSTHROUGH = """mutation($input: PassthroughInput!) { passthrough(input: $input) { status body } }"""

# Every way of writing an address inside the network that the finding tried, and a few more.
INSIDE = [
    "127.0.0.1",
    "[::1]",
    "169.254.169.254",  # cloud metadata
    "2130706433",  # 127.0.0.1 in decimal
    "0x7f000001",  # in hex
    "0177.0.0.1",  # in octal
    "127.1",  # short form
    "0",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::127.0.0.1]",  # IPv4-compatible
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[2002:a9fe:a9fe::1]",  # 6to4 of 169.254.169.254
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # shared address space
    "[fd00::1]",  # unique local
    "[fe80::1]",  # link-local
    "[fec0::1]",  # site-local
    "224.0.0.1",  # multicast
    "[ff02::1]",
    "0.0.0.0",  # noqa: S104 - a target here, not a bind address
    "[::]",
    "255.255.255.255",
    "240.0.0.1",  # reserved
    "localhost",
    "api.localhost",
    "internal.corp",  # resolves inside (FakeDns below)
]


class FakeDns:
    """Stands in for DNS: answers from a table the test can change, and remembers every question."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = {"internal.corp": ["10.1.2.3"], **(answers or {})}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return self.answers[host]


class InternalService:
    """A service inside the network: counts TCP connections; answers any request with a secret, or never."""

    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.connections = 0
        self._release = asyncio.Event()

    async def __aenter__(self) -> InternalService:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *_: object) -> None:
        self._release.set()
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(Exception):
            if self.silent:
                await self._release.wait()
            else:
                await reader.readuntil(b"\r\n\r\n")
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(SECRET)}\r\nConnection: close\r\n\r\n"
                writer.write(head.encode() + SECRET)
                await writer.drain()
        writer.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def count(store: Store, table: Any, tenant: Tenant) -> int:
    async with store.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count()).select_from(table).where(table.c.platform_id == tenant.platform_id)
                )
            ).scalar_one()
        )


@contextlib.asynccontextmanager
async def production_gateway(store: Store, secret_key: str, policy: EgressPolicy) -> AsyncIterator[Gateway]:
    async with fast_kit(policy) as kit, gateway(store, kit, secret_key) as api:
        yield api


def refusals(body: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    return [(e["extensions"].get("code"), e["extensions"].get("field")) for e in body.get("errors") or []]


# ---- refused where the input arrives --------------------------------------------------------------------


async def test_create_connection_refuses_a_base_url_inside_or_off_the_providers_hosts(
    store: Store, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    off_hosts = [
        "http://api.hubapi.com",
        "https://hubapi.com",
        "https://evilhubapi.com",
        "https://api.hubapi.com.evil.io",
    ]
    async with production_gateway(store, secret_key, EgressPolicy(resolver=FakeDns())) as api:
        for base_url in [*(f"https://{host}/" for host in INSIDE), *off_hosts]:
            given = {
                "provider": "hubspot",
                "externalUserId": "u",
                "credentials": {"accessToken": "t"},
                "baseUrl": base_url,
            }
            body = await api.graphql(CREATE_CONNECTION, tenant.api_key, input=given)
            assert refusals(body) == [("BAD_USER_INPUT", "baseUrl")], (base_url, body)
        assert await count(store, connections, tenant) == 0
        # Positive control: the provider's own host is accepted.
        given = {"provider": "hubspot", "externalUserId": "u", "credentials": {"accessToken": "t"}}
        data(await api.graphql(CREATE_CONNECTION, tenant.api_key, input={**given, "baseUrl": "https://api.hubapi.com"}))
    assert await count(store, connections, tenant) == 1


async def test_set_provider_app_refuses_a_base_or_authorize_url_inside(store: Store, secret_key: str) -> None:
    tenant = await new_tenant(store)
    app = {"provider": "salesforce", "clientId": "id", "clientSecret": "secret"}
    async with production_gateway(store, secret_key, EgressPolicy(resolver=FakeDns())) as api:
        for host in [*INSIDE, "login.salesforce.com.evil.io"]:
            for field in ("baseUrl", "authorizeUrl"):
                body = await api.graphql(SET_PROVIDER_APP, tenant.api_key, input={**app, field: f"https://{host}/x"})
                assert refusals(body) == [("BAD_USER_INPUT", field)], (host, field, body)
        assert await count(store, provider_apps, tenant) == 0
        given = {**app, "authorizeUrl": "https://test.salesforce.com/services/oauth2/authorize"}
        data(await api.graphql(SET_PROVIDER_APP, tenant.api_key, input=given))
    assert await count(store, provider_apps, tenant) == 1


async def test_create_webhook_destination_refuses_a_url_inside(store: Store, secret_key: str) -> None:
    tenant = await new_tenant(store)
    dns = FakeDns({"hooks.example.org": ["93.184.216.34"]})
    async with production_gateway(store, secret_key, EgressPolicy(resolver=dns)) as api:
        for host in INSIDE:
            body = await api.graphql(CREATE_DESTINATION, tenant.api_key, input={"url": f"http://{host}:8080/hook"})
            assert refusals(body) == [("BAD_USER_INPUT", "url")], (host, body)
        assert await count(store, webhook_destinations, tenant) == 0
        data(await api.graphql(CREATE_DESTINATION, tenant.api_key, input={"url": "https://hooks.example.org/x"}))
    assert await count(store, webhook_destinations, tenant) == 1


# ---- refused when the request is made -------------------------------------------------------------------


async def _hubspot_connection(store: Store, tenant: Tenant, base_url: str, user: str = "u") -> uuid.UUID:
    """Stored directly, as an older row or a since-narrowed allowlist would leave it."""
    return await create_connection(
        store, NewConnection(tenant.platform_id, "hubspot", user, Credentials(access_token="tok"), base_url=base_url)
    )


async def test_passthrough_to_a_name_that_resolves_inside_is_refused_and_reads_nothing(
    store: Store, secret_key: str, hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    sandbox = await connect_hubspot(store, tenant, hubspot, hubspot_url, external_user_id="control")
    async with InternalService() as inside:
        # A provider host, as far as the pattern goes, whose DNS answers with this machine.
        dns = FakeDns({"api.hubapi.com": ["127.0.0.1"]})
        hostile = await _hubspot_connection(store, tenant, f"https://api.hubapi.com:{inside.port}")
        plain = await _hubspot_connection(store, tenant, f"http://127.0.0.1:{inside.port}", user="plain")
        policy = EgressPolicy([hubspot_url.removeprefix("http://")], resolver=dns)
        async with production_gateway(store, secret_key, policy) as api:
            for connection_id in (hostile, plain):
                given = {"connectionId": to_global_id("Connection", connection_id), "method": "GET", "path": "/x"}
                body = await api.graphql(PASSTHROUGH, tenant.api_key, input=given)
                assert body["errors"] and body["data"] is None, body
                assert body["errors"][0]["extensions"]["code"] == "PROVIDER_ERROR"
                assert SECRET.decode() not in str(body)
            control = {"connectionId": to_global_id("Connection", sandbox), "method": "GET", "path": "/crm/v3/owners"}
            assert data(await api.graphql(PASSTHROUGH, tenant.api_key, input=control))["passthrough"]["status"] == 200
        assert inside.connections == 0
        assert dns.asked  # the hostile name was looked up, and its answer refused


async def test_sync_never_sends_the_token_to_a_host_that_resolves_inside(store: Store) -> None:
    tenant = await new_tenant(store)
    async with InternalService() as inside:
        connection_id = await _hubspot_connection(store, tenant, f"https://api.hubapi.com:{inside.port}")
        dns = FakeDns({"api.hubapi.com": ["169.254.169.254"]})
        async with fast_kit(EgressPolicy(resolver=dns), max_retries=0) as kit:
            await run_everything_due(store, kit)
        errors = await stream_errors(store, connection_id)
        assert errors and all(error and UNREACHABLE in error for error in errors.values()), errors
        assert inside.connections == 0


async def test_an_instance_url_from_a_hostile_token_endpoint_is_not_called(store: Store) -> None:
    tenant = await new_tenant(store)
    async with InternalService() as inside:
        token = {"access_token": "tok", "refresh_token": "r", "instance_url": f"http://127.0.0.1:{inside.port}"}
        connection_id = await create_connection(
            store, NewConnection(tenant.platform_id, "salesforce", "org", Credentials.from_token_response(token))
        )
        async with fast_kit(EgressPolicy(), max_retries=0) as kit:
            await run_everything_due(store, kit)
        errors = await stream_errors(store, connection_id)
        refused = "refusing to send the connection's credentials"
        assert errors and all(error and refused in error for error in errors.values()), errors
        assert inside.connections == 0


@pytest.mark.parametrize("login_host", ["127.0.0.1", "login.salesforce.com"], ids=["pattern", "address"])
async def test_a_token_refresh_never_sends_the_client_secret_inside(
    store: Store, secret_key: str, login_host: str
) -> None:
    tenant = await new_tenant(store)
    async with InternalService() as inside:
        # Stored directly: input checks would refuse it, the request-time check must too.
        authorize = f"https://{login_host}:{inside.port}/services/oauth2/authorize"
        await set_provider_app(store, tenant.platform_id, "salesforce", OAuthApp("id", "client-secret", authorize))
        expired = Credentials(
            access_token="old",
            refresh_token="refresh",
            expires_at=datetime.now(UTC) - timedelta(hours=1),
            extra={"instance_url": "https://acme.my.salesforce.com"},
        )
        connection_id = await create_connection(store, NewConnection(tenant.platform_id, "salesforce", "org", expired))
        dns = FakeDns({"login.salesforce.com": ["127.0.0.1"]})
        async with production_gateway(store, secret_key, EgressPolicy(resolver=dns)) as api:
            given = {"connectionId": to_global_id("Connection", connection_id), "method": "GET", "path": "/x"}
            body = await api.graphql(PASSTHROUGH, tenant.api_key, input=given)
        assert body["errors"][0]["extensions"]["code"] == "PROVIDER_ERROR", body
        assert "client-secret" not in str(body)
        assert inside.connections == 0


async def test_a_webhook_delivery_to_a_name_that_now_resolves_inside_is_refused(store: Store, secret_key: str) -> None:
    from sync.webhooks.outbound import Outbound

    tenant = await new_tenant(store)
    acme = await account(store, tenant)
    receiver = Receiver()
    async with InternalService() as inside, serve(receiver.app(), lifespan="off") as receiver_url:
        dns = FakeDns({"hooks.example.org": ["93.184.216.34"]})
        policy = EgressPolicy([receiver_url.removeprefix("http://")], resolver=dns)
        async with production_gateway(store, secret_key, policy) as api:
            for url in (f"http://hooks.example.org:{inside.port}/hook", f"{receiver_url}/hook"):
                data(await api.graphql(CREATE_DESTINATION, tenant.api_key, input={"url": url}))
            dns.answers["hooks.example.org"] = ["127.0.0.1"]  # rebinding, after the check at creation
            await write(store, acme.target(), "c1", first_name="Ada")
            async with Outbound(store, FAST, egress=policy) as out:
                await out.step()
            settled = await deliveries(api, tenant)
        assert len(receiver.delivered()) == 1  # positive control: the allowed destination got its event
        refused = [d for d in settled if d["status"] != "delivered"]
        assert len(refused) == 1 and refused[0]["lastStatusCode"] is None
        assert refused[0]["lastError"] == f"the destination could not be reached within {FAST.timeout:g} s"
        assert inside.connections == 0


async def test_last_error_keeps_the_status_and_never_the_receivers_body(store: Store, secret_key: str) -> None:
    from sync.webhooks.outbound import Outbound

    tenant = await new_tenant(store)
    acme = await account(store, tenant)
    receiver = Receiver(respond=lambda event: 500)  # answers b"nope"
    async with serve(receiver.app(), lifespan="off") as receiver_url:
        policy = EgressPolicy([receiver_url.removeprefix("http://")])
        async with production_gateway(store, secret_key, policy) as api:
            data(await api.graphql(CREATE_DESTINATION, tenant.api_key, input={"url": f"{receiver_url}/hook"}))
            await write(store, acme.target(), "c1", first_name="Ada")
            async with Outbound(store, FAST, egress=policy) as out:
                await out.step()
            [delivery] = await deliveries(api, tenant)
    assert receiver.requests  # it answered 500 with a body
    assert (delivery["lastStatusCode"], delivery["lastError"]) == (500, "HTTP 500")


# ---- one error for every way of not getting through -----------------------------------------------------


async def test_a_refused_address_a_closed_port_and_a_timeout_fail_alike(store: Store, secret_key: str) -> None:
    tenant = await new_tenant(store)
    async with InternalService(silent=True) as silent:
        dns = FakeDns(
            {"inside.hubapi.com": ["10.0.0.7"], "closed.hubapi.com": ["127.0.0.1"], "silent.hubapi.com": ["127.0.0.1"]}
        )
        targets = {
            "refused address": f"https://inside.hubapi.com:{closed_port()}",
            "closed port": f"https://closed.hubapi.com:{closed_port()}",
            "timeout": f"https://silent.hubapi.com:{silent.port}",
        }
        ids = {name: await _hubspot_connection(store, tenant, url, user=name) for name, url in targets.items()}
        policy = EgressPolicy(["127.0.0.0/8"], resolver=dns)
        async with fast_kit(policy, timeout=0.3, max_retries=1) as kit, gateway(store, kit, secret_key) as api:
            errors = {}
            for name, connection_id in ids.items():
                given = {"connectionId": to_global_id("Connection", connection_id), "method": "GET", "path": "/x"}
                errors[name] = (await api.graphql(PASSTHROUGH, tenant.api_key, input=given))["errors"]
        assert silent.connections >= 1  # the timeout really was one: connected, then no answer
    assert errors["refused address"] == errors["closed port"] == errors["timeout"], errors
    assert errors["timeout"][0]["message"] == f"GET /x failed: {UNREACHABLE}"


# ---- pinning and the allowlist (no storage) -------------------------------------------------------------


async def test_the_resolver_is_asked_once_and_the_connection_goes_to_the_checked_address() -> None:
    receiver = Receiver()
    async with serve(receiver.app(), lifespan="off") as receiver_url:
        port = int(receiver_url.rsplit(":", 1)[1])
        # Only our resolver knows this name: a connection that resolved it again would fail.
        dns = FakeDns({"rebind.test": ["127.0.0.1"]})
        policy = EgressPolicy(["127.0.0.0/8"], resolver=dns)
        async with policy.client() as client:
            response = await client.post(f"http://rebind.test:{port}/hook", json={"id": "e1"})
            assert response.status_code == 200
            assert dns.asked == ["rebind.test"]
            assert receiver.requests[0].headers["host"] == f"rebind.test:{port}"
        # The next connection asks again, and the new answer is checked again.
        dns.answers["rebind.test"] = ["169.254.169.254"]
        async with policy.client() as client:
            with pytest.raises(httpx2.ConnectError, match=UNREACHABLE):
                await client.post(f"http://rebind.test:{port}/hook", json={"id": "e2"})
        assert dns.asked == ["rebind.test", "rebind.test"]
        assert len(receiver.requests) == 1


async def test_a_name_with_several_allowed_addresses_falls_back_to_the_next_checked_one() -> None:
    async with InternalService() as service:
        dns = FakeDns({"twice.test": ["127.0.0.2", "127.0.0.1"]})  # nothing listens on the first
        async with EgressPolicy(["127.0.0.0/8"], resolver=dns).client(timeout=5) as client:
            assert (await client.get(f"http://twice.test:{service.port}/")).content == SECRET
        assert dns.asked == ["twice.test"]


async def test_a_name_with_any_forbidden_address_is_refused() -> None:
    policy = EgressPolicy(["127.0.0.0/8"], resolver=FakeDns({"mixed.test": ["127.0.0.1", "10.0.0.1"]}))
    with pytest.raises(EgressRefused, match=re.escape("10.0.0.1")):
        await policy.addresses("mixed.test", 443)


async def test_the_allowlist_lets_exactly_what_it_names_through() -> None:
    async with InternalService() as named, InternalService() as other:
        dns = FakeDns({"sandbox.test": ["127.0.0.1"], "other.test": ["127.0.0.1"], "lan.test": ["10.9.0.5"]})
        policy = EgressPolicy([f"127.0.0.1:{named.port}", "sandbox.test", "10.9.0.0/16"], resolver=dns)
        async with policy.client(timeout=5) as client:
            assert (await client.get(f"http://127.0.0.1:{named.port}/")).content == SECRET
            assert (await client.get(f"http://sandbox.test:{other.port}/")).content == SECRET  # a name: any port
            for refused in (f"http://127.0.0.1:{other.port}/", f"http://other.test:{named.port}/"):
                with pytest.raises(httpx2.ConnectError, match=UNREACHABLE):
                    await client.get(refused)
        assert (named.connections, other.connections) == (1, 1)
    assert await policy.addresses("lan.test", 80)  # inside an allowed CIDR
    with pytest.raises(EgressRefused):
        await policy.addresses("10.8.0.1", 80)
    # Allowlisted targets skip the provider's patterns (sandboxes speak plain http on their own host).
    hubspot = EgressPolicy([f"127.0.0.1:{named.port}"])
    from connectors.hubspot import HUBSPOT

    hubspot.check_provider_url(f"http://127.0.0.1:{named.port}/crm", HUBSPOT.hosts.api)
    with pytest.raises(EgressRefused):
        hubspot.check_provider_url(f"http://127.0.0.1:{other.port}/crm", HUBSPOT.hosts.api)


@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_every_connector_calls_only_hosts_it_declares(name: str) -> None:
    connector = CONNECTORS[name]
    production = EgressPolicy()
    production.check_provider_url(connector.base_url, connector.hosts.api)
    assert isinstance(connector.auth, OAuth2)
    production.check_provider_url(connector.auth.authorize_url, connector.hosts.oauth)
    production.check_provider_url(connector.auth.token_endpoint(connector.base_url), connector.hosts.oauth)


def test_xkit_dev_allows_its_own_sandboxes_and_nothing_else() -> None:
    settings = with_sandboxes_allowed(
        Settings(secret_key=SecretStr("k")), ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
    )
    assert settings.egress_allow == ["127.0.0.1:8001", "127.0.0.1:8002"]
    policy = EgressPolicy(settings.egress_allow)
    assert policy.allowlisted("127.0.0.1", 8001) and policy.allowlisted("127.0.0.1", 8002)
    assert not policy.allowlisted("127.0.0.1", 5432) and not policy.allowlisted("localhost", 8001)


def test_the_allowlist_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XKIT_EGRESS_ALLOW", "sandbox.internal:8443, 10.1.0.0/16 ,[::1]:9000")
    settings = Settings()
    assert settings.egress_allow == ["sandbox.internal:8443", "10.1.0.0/16", "[::1]:9000"]
    policy = EgressPolicy(settings.egress_allow)
    assert policy.allowlisted("sandbox.internal", 8443) and not policy.allowlisted("sandbox.internal", 443)
    assert policy.allowlisted("::1", 9000) and policy.allowlisted("10.1.2.3", 1)
    monkeypatch.setenv("XKIT_EGRESS_ALLOW", "sandbox.internal,10.0.0.0/99")
    with pytest.raises(ValueError, match="not a host"):
        Settings()
