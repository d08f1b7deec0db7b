"""Connecting a Zendesk account: the subdomain is asked for first and names the account's host; a value
that is not a Zendesk subdomain is refused before anything is sent or stored. API tokens are an
alternative credential, sent with the account's login."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp
from connectors.kit.sandbox import serve_in_thread
from connectors.zendesk import ZENDESK
from connectors.zendesk.sandbox import SandboxSize, ZendeskSandbox, create_app
from sync.storage.store import Store
from sync.storage.tables import connections, oauth_states
from sync.tenancy.connections import unseal
from sync.tenancy.platforms import set_provider_app
from tests.support import Gateway, Tenant, data, error_codes, gateway, new_tenant

REGISTERED = "https://app.example.com/cb"
CONNECT = """mutation($u: String!, $r: String!, $i: JSON) {
    connectUrl(provider: "zendesk", externalUserId: $u, redirectUri: $r, inputs: $i) { url state } }"""
CREATE = """mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }"""

NOT_SUBDOMAINS = [
    {"subdomain": "evil.com/x"},
    {"subdomain": "a.b"},
    {"subdomain": ""},
    {"subdomain": "Acme"},
    {"subdomain": "ACME"},
    {"subdomain": "acme:8443"},
    {"subdomain": "-acme"},
    {"subdomain": "acme-"},
    {"subdomain": "acme.zendesk.com"},
    {"subdomain": "a" * 64},
    {"subdomain": 42},
    {"subdomain": "acme", "region": "eu"},
    {},
    "acme",
    None,
]
IDS = [
    "path",
    "dotted",
    "empty",
    "capital",
    "uppercase",
    "port",
    "leading-hyphen",
    "trailing-hyphen",
    "whole-host",
    "too-long",
    "number",
    "unknown-key",
    "missing",
    "not-an-object",
    "absent",
]


@pytest_asyncio.fixture
async def api(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[tuple[Gateway, Tenant]]:
    async with gateway(store, kit, secret_key) as served:
        tenant = await new_tenant(store)
        await set_provider_app(store, tenant.platform_id, "zendesk", OAuthApp("client", "secret"))
        data(await served.graphql("mutation($u: String!) { addRedirectUri(uri: $u) }", tenant.api_key, u=REGISTERED))
        yield served, tenant


async def _count(store: Store, table: Any, tenant: Tenant) -> int:
    async with store.engine.connect() as conn:
        found = await conn.execute(
            select(func.count()).select_from(table).where(table.c.platform_id == tenant.platform_id)
        )
    return int(found.scalar_one())


@pytest.mark.parametrize("inputs", NOT_SUBDOMAINS, ids=IDS)
async def test_connect_url_refuses_what_is_not_a_zendesk_subdomain(
    api: tuple[Gateway, Tenant], store: Store, inputs: Any
) -> None:
    served, tenant = api
    body = await served.graphql(CONNECT, tenant.api_key, u="alice", r=REGISTERED, i=inputs)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"].startswith("inputs")
    assert await _count(store, oauth_states, tenant) == 0


async def test_connect_url_sends_the_end_user_to_their_accounts_own_host(
    api: tuple[Gateway, Tenant], store: Store
) -> None:
    served, tenant = api
    data(await served.graphql(CONNECT, tenant.api_key, u="alice", r=REGISTERED, i={"subdomain": "acme-support"}))
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(oauth_states))).one()
    assert row.authorize_url.startswith("https://acme-support.zendesk.com/oauth/authorizations/new?")
    assert "scope=read+write" in row.authorize_url
    assert row.connect_inputs == {"subdomain": "acme-support"}


async def test_other_providers_take_no_inputs(api: tuple[Gateway, Tenant], store: Store) -> None:
    served, tenant = api
    query = CONNECT.replace('"zendesk"', '"hubspot"')
    body = await served.graphql(query, tenant.api_key, u="alice", r=REGISTERED, i={"subdomain": "acme"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert await _count(store, oauth_states, tenant) == 0


@pytest.mark.parametrize("inputs", NOT_SUBDOMAINS[:-1], ids=IDS[:-1])
async def test_create_connection_refuses_what_is_not_a_zendesk_subdomain(
    api: tuple[Gateway, Tenant], store: Store, inputs: Any
) -> None:
    served, tenant = api
    given = {"provider": "zendesk", "externalUserId": "alice", "credentials": {"accessToken": "t"}, "inputs": inputs}
    body = await served.graphql(CREATE, tenant.api_key, input=given)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert await _count(store, connections, tenant) == 0


async def test_an_api_token_needs_the_accounts_login(api: tuple[Gateway, Tenant], store: Store) -> None:
    served, tenant = api
    given = {
        "provider": "zendesk",
        "externalUserId": "alice",
        "credentials": {"apiKey": "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"},
        "inputs": {"subdomain": "acme"},
    }
    body = await served.graphql(CREATE, tenant.api_key, input=given)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "credentials.email"
    assert await _count(store, connections, tenant) == 0


async def test_the_oauth_flow_connects_the_account_the_subdomain_names(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    """The operator's app points at the sandbox with `{subdomain}` in its URLs (the stand-in for
    `https://{subdomain}.zendesk.com`): consent and the token exchange happen on the named account, and
    the connection's base URL is that account's."""
    sandbox = ZendeskSandbox(seed=3, size=SandboxSize(tickets=5, users=3), subdomains=("first", "acme-support"))
    with sandbox, serve_in_thread(create_app(sandbox)) as url:
        async with gateway(store, kit, secret_key) as served:
            tenant = await new_tenant(store)
            app = OAuthApp(
                sandbox.client_id,
                sandbox.client_secret,
                authorize_url=f"{url}/{{subdomain}}/oauth/authorizations/new",
                base_url=f"{url}/{{subdomain}}",
            )
            await set_provider_app(store, tenant.platform_id, "zendesk", app)
            add = "mutation($u: String!) { addRedirectUri(uri: $u) }"
            data(await served.graphql(add, tenant.api_key, u=REGISTERED))
            link = data(
                await served.graphql(CONNECT, tenant.api_key, u="alice", r=REGISTERED, i={"subdomain": "acme-support"})
            )["connectUrl"]
            async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
                started = await browser.get(link["url"])
                authorize_url = started.headers["location"]
                assert authorize_url.startswith(f"{url}/acme-support/oauth/authorizations/new?")
                page = await browser.get(authorize_url)
                fields = {m[0]: html.unescape(m[1]) for m in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)}
                approved = await browser.post(
                    f"{url}/acme-support/oauth/authorizations/new", data={**fields, "decision": "allow"}
                )
                done = await browser.get(approved.headers["location"])
            assert done.headers["location"].startswith(REGISTERED + "?connection_id="), done.headers["location"]
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(connections).where(connections.c.platform_id == tenant.platform_id))).one()
    assert row.base_url == f"{url}/acme-support"
    assert row.account_id == "acme-support"  # what webhooks addressed to the subdomain find
    assert unseal(store, row.id, row.credentials_encrypted).access_token


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("acme.zendesk.com", True),
        ("ACME.zendesk.com", True),
        ("zendesk.com", False),
        ("evilzendesk.com", False),
        ("acme.zendesk.com.evil.com", False),
        ("zendesk.com.evil.com", False),
    ],
)
def test_only_zendesk_account_hosts_are_reachable(host: str, allowed: bool) -> None:
    assert ZENDESK.hosts.api.matches(host) is allowed
    assert ZENDESK.hosts.oauth.matches(host) is allowed
