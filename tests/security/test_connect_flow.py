"""Finding 7: the OAuth connect link was not bound to the browser that started it, and any redirectUri was
accepted (an open redirect). Each test replays one way in and asserts the refusal, on both databases."""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
import pytest_asyncio
from sqlalchemy import func, select, update

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp
from gateway.cli import main as xkit
from resolvers.connect_flow import cookie_name
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections, oauth_states
from sync.tenancy.connections import purge_expired_connect_links
from sync.tenancy.platforms import set_provider_app
from tests.support import Gateway, Tenant, cli_platform, data, error_codes, gateway, new_tenant

REGISTERED = "https://app.example.com/cb"
CONNECT = """mutation($r: String!, $u: String!) {
    connectUrl(provider: "hubspot", externalUserId: $u, redirectUri: $r) { url state expiresAt } }"""
ADD = "mutation($u: String!) { addRedirectUri(uri: $u) }"


@dataclass
class Flow:
    api: Gateway
    store: Store
    tenant: Tenant
    hubspot_url: str

    async def link(self, external_user_id: str = "alice") -> dict[str, Any]:
        body = await self.api.graphql(CONNECT, self.tenant.api_key, r=REGISTERED, u=external_user_id)
        return data(body)["connectUrl"]  # type: ignore[no-any-return]

    async def consent(self, browser: httpx2.AsyncClient, authorize_url: str) -> str:
        """Approve on the sandbox's consent page; returns where the provider sends the browser back."""
        page = await browser.get(authorize_url)
        assert page.status_code == 200, page.text
        fields = {m[0]: html.unescape(m[1]) for m in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)}
        approved = await browser.post(f"{self.hubspot_url}/oauth/authorize", data={**fields, "decision": "approve"})
        assert approved.status_code == 302
        return approved.headers["location"]

    async def connection_count(self) -> int:
        async with self.store.engine.connect() as conn:
            stmt = select(func.count()).select_from(connections)
            count = await conn.execute(stmt.where(connections.c.platform_id == self.tenant.platform_id))
        return int(count.scalar_one())


@pytest_asyncio.fixture
async def flow(
    store: Store, kit: HttpKit, secret_key: str, hubspot: HubSpotSandbox, hubspot_url: str
) -> AsyncIterator[Flow]:
    async with gateway(store, kit, secret_key, redirect_uris_per_platform=3) as api:
        tenant = await new_tenant(store)
        app = OAuthApp(hubspot.client_id, hubspot.client_secret, f"{hubspot_url}/oauth/authorize", hubspot_url)
        await set_provider_app(store, tenant.platform_id, "hubspot", app)
        data(await api.graphql(ADD, tenant.api_key, u=REGISTERED))
        yield Flow(api, store, tenant, hubspot_url)


def browser() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(follow_redirects=False, timeout=30)


def set_cookies(response: httpx2.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


async def test_only_the_exact_registered_redirect_uri_starts_a_connect_link(flow: Flow) -> None:
    near_misses = [
        REGISTERED + "/",
        REGISTERED + "?x=1",
        REGISTERED + "#x",
        "https://app.example.com.evil.com/cb",
        "https://evil.com/?https://app.example.com/cb",
        "http://app.example.com/cb",
        "https://app.example.com:8443/cb",
        "https://app.example.com/CB",
        "https://APP.example.com/cb",
        "https://user@app.example.com/cb",
        " " + REGISTERED,
        REGISTERED + "\x00",
        "javascript:alert(1)//https://app.example.com/cb",
    ]
    for uri in near_misses:
        body = await flow.api.graphql(CONNECT, flow.tenant.api_key, r=uri, u="alice")
        assert error_codes(body) == ["BAD_USER_INPUT"], uri
        if "\x00" not in uri:  # NUL is refused with the variable that carried it, before any resolver
            assert body["errors"][0]["extensions"]["field"] == "redirectUri", uri
    async with flow.store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(oauth_states))).scalar_one() == 0
    assert (await flow.link())["url"].startswith(f"{flow.api.url}/oauth/start?state=")  # the control


async def test_another_platforms_registered_uri_does_not_count(flow: Flow) -> None:
    other = await new_tenant(flow.store, "other")
    await set_provider_app(flow.store, other.platform_id, "hubspot", OAuthApp("id", "secret"))
    body = await flow.api.graphql(CONNECT, other.api_key, r=REGISTERED, u="mallory")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert data(await flow.api.graphql("{ redirectUris }", other.api_key)) == {"redirectUris": []}
    assert data(await flow.api.graphql("{ redirectUris }", flow.tenant.api_key)) == {"redirectUris": [REGISTERED]}


async def test_redirect_uris_are_checked_when_registered_and_capped_per_platform(flow: Flow) -> None:
    key = flow.tenant.api_key
    refused = [
        "http://app.example.com/cb",
        "https://app.example.com/cb#done",
        "https://user:pw@app.example.com/cb",
        "/relative/cb",
        "https:///cb",
        "HTTPS://app.example.com/cb",
        "https://app.example.com:99999/cb",
        "https://app.exämple.com/cb",
        "https://app.example.com/c b",
        "https://app.example.com/\x00",
        "https://app.example.com/" + "a" * 2000,
        "",
    ]
    for uri in refused:
        body = await flow.api.graphql(ADD, key, u=uri)
        assert error_codes(body) == ["BAD_USER_INPUT"], uri
        if "\x00" not in uri:
            assert body["errors"][0]["extensions"]["field"] == "uri", uri
    for local in ("http://localhost:3000/cb", "http://127.0.0.1/cb"):
        data(await flow.api.graphql(ADD, key, u=local))
    # The cap is 3 here: a fourth is refused and the list is unchanged; adding one again is harmless.
    assert error_codes(await flow.api.graphql(ADD, key, u="https://four.example.com/cb")) == ["BAD_USER_INPUT"]
    assert data(await flow.api.graphql(ADD, key, u=REGISTERED))["addRedirectUri"] == [
        REGISTERED,
        "http://localhost:3000/cb",
        "http://127.0.0.1/cb",
    ]
    too_many = ["https://a.example.com/", "https://b.example.com/", "https://c.example.com/", "https://d.example.com/"]
    body = await flow.api.graphql("mutation($u: [String!]!) { setRedirectUris(uris: $u) }", key, u=too_many)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    replaced = await flow.api.graphql("mutation($u: [String!]!) { setRedirectUris(uris: $u) }", key, u=too_many[:2])
    assert data(replaced)["setRedirectUris"] == too_many[:2]
    missing = await flow.api.graphql("mutation($u: String!) { removeRedirectUri(uri: $u) }", key, u=REGISTERED)
    assert error_codes(missing) == ["NOT_FOUND"]
    removed = await flow.api.graphql("mutation($u: String!) { removeRedirectUri(uri: $u) }", key, u=too_many[0])
    assert data(removed)["removeRedirectUri"] == too_many[1:2]


async def test_link_opened_in_a_second_browser_cannot_complete_and_the_first_browser_does(flow: Flow) -> None:
    link = await flow.link()
    async with browser() as alice, browser() as mallory:
        started = await alice.get(link["url"])
        assert started.status_code == 303
        authorize_url = started.headers["location"]
        assert urlsplit(authorize_url).netloc == urlsplit(flow.hubspot_url).netloc

        # The same link in another browser: refused, and no way on to the provider.
        second = await mallory.get(link["url"])
        assert second.status_code == 403
        assert "location" not in second.headers
        assert not set_cookies(second)

        # The provider's consent URL lifted from the first browser, completed in the second one.
        callback = await flow.consent(mallory, authorize_url)
        for cookies in ({}, {"Cookie": f"{cookie_name(link['state'])}=forged-nonce"}):
            refused = await mallory.get(callback, headers=cookies)
            assert refused.status_code == 403
            assert "location" not in refused.headers
        assert await flow.connection_count() == 0

        # The browser that opened the link first still completes it, once.
        again = await alice.get(link["url"])  # a reload in the same browser is fine
        assert again.status_code == 303
        assert again.headers["location"] == authorize_url
        done = await alice.get(await flow.consent(alice, authorize_url))
        assert done.status_code == 303
        landing = done.headers["location"]
        assert landing.startswith(REGISTERED + "?connection_id=")
    assert await flow.connection_count() == 1


async def test_a_used_link_cannot_be_replayed_even_with_its_cookie(flow: Flow) -> None:
    link = await flow.link()
    async with browser() as alice:
        started = await alice.get(link["url"])
        nonce = set_cookies(started)[cookie_name(link["state"])].value
        callback = await flow.consent(alice, started.headers["location"])
        done = await alice.get(callback)
        assert done.status_code == 303
        cleared = set_cookies(done)[cookie_name(link["state"])]
        assert cleared.value == "" and cleared["max-age"] == "0"

        replay = await alice.get(callback, headers={"Cookie": f"{cookie_name(link['state'])}={nonce}"})
        assert replay.status_code == 400
        assert "location" not in replay.headers
        restart = await alice.get(link["url"])
        assert restart.status_code == 400
        assert "location" not in restart.headers
    assert await flow.connection_count() == 1


async def test_an_expired_link_is_refused_at_start_and_at_the_callback(flow: Flow) -> None:
    unopened, opened = await flow.link(), await flow.link()
    async with browser() as alice:
        started = await alice.get(opened["url"])
        callback = await flow.consent(alice, started.headers["location"])
        async with flow.store.engine.begin() as conn:
            await conn.execute(update(oauth_states).values(expires_at=utcnow() - timedelta(seconds=1)))
        for response in (await alice.get(unopened["url"]), await alice.get(callback)):
            assert response.status_code == 400
            assert "location" not in response.headers
            assert "expired" in response.text
    assert await flow.connection_count() == 0


async def test_the_workers_forget_expired_links_and_keep_live_ones(flow: Flow) -> None:
    expired, live = await flow.link(), await flow.link()
    async with flow.store.engine.begin() as conn:
        await conn.execute(
            update(oauth_states)
            .where(oauth_states.c.state == expired["state"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await purge_expired_connect_links(flow.store) == 1
    async with flow.store.engine.connect() as conn:
        left = (await conn.execute(select(oauth_states.c.state))).scalars().all()
    assert left == [live["state"]]


async def test_the_binding_cookie_is_http_only_lax_scoped_to_one_link_and_short_lived(flow: Flow) -> None:
    first, second = await flow.link(), await flow.link()
    async with browser() as alice:
        cookies = [set_cookies(await alice.get(link["url"])) for link in (first, second)]
    names = [cookie_name(first["state"]), cookie_name(second["state"])]
    assert names[0] != names[1]
    for jar, name in zip(cookies, names, strict=True):
        morsel = jar[name]
        assert len(morsel.value) >= 40
        assert morsel["httponly"] is True
        assert morsel["samesite"].lower() == "lax"
        assert morsel["path"] == "/oauth"
        assert 0 < int(morsel["max-age"]) <= 900
        assert not morsel["secure"]  # served over plain http here


async def test_the_binding_cookie_is_secure_when_the_gateway_is_public_over_https(
    store: Store, kit: HttpKit, secret_key: str, hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    async with gateway(store, kit, secret_key, public_url="https://gateway.example.com") as api:
        tenant = await new_tenant(store)
        app = OAuthApp(hubspot.client_id, hubspot.client_secret, f"{hubspot_url}/oauth/authorize", hubspot_url)
        await set_provider_app(store, tenant.platform_id, "hubspot", app)
        data(await api.graphql(ADD, tenant.api_key, u=REGISTERED))
        link = data(await api.graphql(CONNECT, tenant.api_key, r=REGISTERED, u="alice"))["connectUrl"]
        assert link["url"].startswith("https://gateway.example.com/oauth/start?")
        async with browser() as alice:
            started = await alice.get(f"{api.url}/oauth/start?{urlsplit(link['url']).query}")
        assert started.status_code == 303
        assert set_cookies(started)[cookie_name(link["state"])]["secure"] is True


async def test_no_error_path_redirects_anywhere_but_the_links_registered_uri(flow: Flow) -> None:
    base = flow.api.url
    hostile = [
        "/oauth/callback",
        "/oauth/callback?code=x",
        "/oauth/callback?state=unknown-state&code=x",
        "/oauth/callback?state=%3Cscript%3Ealert(1)%3C/script%3E&code=x",
        "/oauth/callback?state=a&state=b",
        "/oauth/callback?state=%00&code=x",
        "/oauth/start",
        "/oauth/start?state=unknown-state",
        "/oauth/start?state=%3Cscript%3Ealert(1)%3C/script%3E",
        "/oauth/start?state=" + "a" * 200,
        "/oauth/start?" + urlencode({"state": "x", "redirect_uri": "https://evil.com/"}),
    ]
    async with browser() as client:
        for path in hostile:
            response = await client.get(base + path)
            assert response.status_code in (400, 403), path
            assert "location" not in response.headers, path
            assert "<script>" not in response.text, path
            assert response.headers["cache-control"] == "no-store"
        assert (await client.post(f"{base}/oauth/callback?state=x", content=b"x" * 1000)).status_code == 405
        assert (await client.get(f"{base}/oauth/start?state=x&pad={'a' * 5000}")).status_code == 414
        assert (await client.get(f"{base}/oauth/callback?state=x&pad={'a' * 5000}")).status_code == 414

        # The provider's own error, in the right browser: back to the registered URI only, with the error.
        link = await flow.link()
        started = await client.get(link["url"])
        denied = await client.get(f"{base}/oauth/callback?{urlencode({'state': link['state'], 'error': 'denied'})}")
        assert started.status_code == 303 and denied.status_code == 303
        landing = urlsplit(denied.headers["location"])
        assert f"{landing.scheme}://{landing.netloc}{landing.path}" == REGISTERED
        assert parse_qs(landing.query)["error"] == ["denied"]
    assert await flow.connection_count() == 0


async def test_a_link_whose_redirect_uri_was_removed_sends_nobody_there(flow: Flow) -> None:
    link = await flow.link()
    async with browser() as alice:
        started = await alice.get(link["url"])
        callback = await flow.consent(alice, started.headers["location"])
        removed = "mutation($u: String!) { removeRedirectUri(uri: $u) }"
        data(await flow.api.graphql(removed, flow.tenant.api_key, u=REGISTERED))
        response = await alice.get(callback)
        assert response.status_code == 400
        assert "location" not in response.headers
    assert await flow.connection_count() == 0


async def test_the_connection_goes_to_the_links_end_user_and_platform(flow: Flow) -> None:
    link = await flow.link(external_user_id="bob")
    async with browser() as bob:
        started = await bob.get(link["url"])
        done = await bob.get(await flow.consent(bob, started.headers["location"]))
    gid = parse_qs(urlsplit(done.headers["location"]).query)["connection_id"][0]
    query = "query($id: ID!) { connection(id: $id) { endUser { externalId } } }"
    assert data(await flow.api.graphql(query, flow.tenant.api_key, id=gid))["connection"] == {
        "endUser": {"externalId": "bob"}
    }
    other = await new_tenant(flow.store, "other")
    assert error_codes(await flow.api.graphql(query, other.api_key, id=gid)) == ["NOT_FOUND"]


async def test_two_browsers_opening_a_link_at_once_bind_it_to_exactly_one(flow: Flow) -> None:
    link = await flow.link()
    async with browser() as first, browser() as second:
        answers = await asyncio.gather(first.get(link["url"]), second.get(link["url"]))
    assert sorted(answer.status_code for answer in answers) == [303, 403]
    winners = [answer for answer in answers if answer.status_code == 303]
    assert cookie_name(link["state"]) in set_cookies(winners[0])


def test_the_cli_registers_lists_and_removes_redirect_uris(
    database_url: str, secret_key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    platform_id = cli_platform(database_url, secret_key, monkeypatch, capsys)
    xkit(["platforms", "redirect-uris", "add", "--platform", platform_id, REGISTERED])
    assert capsys.readouterr().out.split() == [REGISTERED]
    with pytest.raises(SystemExit, match="https"):
        xkit(["platforms", "redirect-uris", "add", "--platform", platform_id, "http://app.example.com/cb"])
    with pytest.raises(SystemExit, match="no platform"):
        xkit(["platforms", "redirect-uris", "add", "--platform", str(uuid.uuid4()), REGISTERED])
    xkit(["platforms", "redirect-uris", "list", "--platform", platform_id])
    assert capsys.readouterr().out.split() == [REGISTERED]
    xkit(["platforms", "redirect-uris", "remove", "--platform", platform_id, REGISTERED])
    assert capsys.readouterr().out.strip() == "no redirect URIs"
    with pytest.raises(SystemExit, match="not registered"):
        xkit(["platforms", "redirect-uris", "remove", "--platform", platform_id, REGISTERED])
