"""Connecting a Stripe account through the platform's Connect app: authorize, token (authenticated with the
platform's secret key, no PKCE), `stripe_user_id` kept; the connection's requests then carry the platform's
key, read as it is now, and `Stripe-Account`; its token is never sent, so expiring it changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import orjson
import pytest
import pytest_asyncio

from connectors.kit.errors import ReauthRequired
from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp
from connectors.kit.sandbox import serve_in_thread
from connectors.stripe.connector import STRIPE_VERSION
from connectors.stripe.sandbox import SandboxSize, StripeSandbox, create_app
from resolvers.ids import parse_connection_id
from sync.storage.store import Store
from sync.tenancy.connections import connection_access, get_connection_row, unseal
from sync.tenancy.platforms import set_provider_app
from tests.support import (
    Gateway,
    cached_ids,
    cached_records,
    data,
    error_codes,
    gateway,
    new_tenant,
    run_everything_due,
    stream_errors,
)

REGISTERED = "https://app.example.com/cb"
CONNECT = """mutation($u: String!, $r: String!) {
    connectUrl(provider: "stripe", externalUserId: $u, redirectUri: $r) { url state } }"""


@dataclass
class Connected:
    store: Store
    kit: HttpKit
    sandbox: StripeSandbox
    url: str
    platform_id: uuid.UUID
    connection_id: uuid.UUID
    authorize_url: str
    api: Gateway
    api_key: str

    async def common(self, stream: str, remote_id: str) -> dict[str, Any]:
        rows = [r for r in await cached_records(self.store, self.connection_id, stream) if r.remote_id == remote_id]
        assert len(rows) == 1, (stream, remote_id)
        return dict(rows[0].common)

    async def deliver(self, body: bytes, signature: str) -> httpx2.Response:
        headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
        return await self.api.client.post(f"{self.api.url}/webhooks/stripe", content=body, headers=headers)

    async def row(self) -> Any:
        row = await get_connection_row(self.store, self.connection_id)
        assert row is not None
        return row


@pytest_asyncio.fixture
async def connected(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Connected]:
    sandbox = StripeSandbox(seed=4, size=SandboxSize(customers=8, invoices=8, subscriptions=3, payment_intents=3))
    sandbox.faults.rate_limit_enabled = False
    with sandbox, serve_in_thread(create_app(sandbox)) as url:
        async with gateway(store, kit, secret_key) as served:
            tenant = await new_tenant(store)
            app = OAuthApp(
                sandbox.client_id, sandbox.client_secret, authorize_url=f"{url}/oauth/authorize", base_url=url
            )
            await set_provider_app(store, tenant.platform_id, "stripe", app)
            add = "mutation($u: String!) { addRedirectUri(uri: $u) }"
            data(await served.graphql(add, tenant.api_key, u=REGISTERED))
            link = data(await served.graphql(CONNECT, tenant.api_key, u="alice", r=REGISTERED))["connectUrl"]
            async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
                started = await browser.get(link["url"])
                authorize_url = started.headers["location"]
                consented = await browser.get(authorize_url)
                done = await browser.get(consented.headers["location"])
            location = done.headers["location"]
            assert location.startswith(REGISTERED + "?connection_id="), location
            connection_id = parse_connection_id(parse_qs(urlsplit(location).query)["connection_id"][0])
            yield Connected(
                store, kit, sandbox, url, tenant.platform_id, connection_id, authorize_url, served, tenant.api_key
            )


async def test_authorize_asks_read_write_without_pkce(connected: Connected) -> None:
    query = parse_qs(urlsplit(connected.authorize_url).query)
    assert query["scope"] == ["read_write"] and query["response_type"] == ["code"]
    assert "code_challenge" not in query


async def test_the_connection_keeps_the_account_and_the_version(connected: Connected) -> None:
    row = await connected.row()
    credentials = unseal(connected.store, connected.connection_id, row.credentials_encrypted)
    assert credentials.extra["stripe_user_id"] == connected.sandbox.account().id
    assert credentials.extra["stripe_version"] == STRIPE_VERSION
    assert row.account_id == connected.sandbox.account().id
    assert connected.sandbox.client_secret not in repr(credentials.to_dict())


async def test_requests_carry_the_platform_key_and_the_account(connected: Connected) -> None:
    session = connected.kit.session(await connection_access(connected.store, await connected.row()))
    response = await session.request("GET", "/v1/customers", params={"limit": 1})
    assert response.request.headers["authorization"] == f"Bearer {connected.sandbox.client_secret}"
    assert response.request.headers["stripe-account"] == connected.sandbox.account().id
    assert response.request.headers["stripe-version"] == STRIPE_VERSION
    await run_everything_due(connected.store, connected.kit)
    assert not any((await stream_errors(connected.store, connected.connection_id)).values())
    customers = {c["id"] for c in connected.sandbox.account().collections["customers"].live()}
    assert await cached_ids(connected.store, connected.connection_id, "customers") == customers


async def test_expired_tokens_change_nothing(connected: Connected) -> None:
    connected.sandbox.expire_access_tokens()
    await run_everything_due(connected.store, connected.kit)
    assert not any((await stream_errors(connected.store, connected.connection_id)).values())
    assert (await connected.row()).status == "active"


async def test_a_rotated_platform_key_is_used_once_saved(connected: Connected) -> None:
    rotated = OAuthApp(
        connected.sandbox.client_id,
        "sk_test_rotatedButUnknownToTheSandbox0000",
        authorize_url=f"{connected.url}/oauth/authorize",
        base_url=connected.url,
    )
    await set_provider_app(connected.store, connected.platform_id, "stripe", rotated)
    session = connected.kit.session(await connection_access(connected.store, await connected.row()))
    try:
        await session.get_json("/v1/customers", {"limit": 1})
    except ReauthRequired as refused:
        assert refused.status == 401
    else:
        raise AssertionError("the sandbox took a key it never issued")
    assert session.credentials.api_key is None  # the platform key is never copied into the connection


# The platform's webhook secret is its Stripe app's client secret, as for every provider here (see the report
# on keeping a separate endpoint secret): the sandbox's Connect endpoint signs with it.


def _signature(secrets: list[str], body: bytes, at: int) -> str:
    signed = [hmac.new(s.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join([f"t={at}", *(f"v1={digest}" for digest in signed)])


def _event(connected: Connected, kind: str, obj: dict[str, Any]) -> bytes:
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "account": connected.sandbox.account().id,
        "api_version": STRIPE_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "type": kind,
    }
    return orjson.dumps(event)


async def test_a_signed_event_from_the_sandbox_is_applied_at_once(connected: Connected) -> None:
    await run_everything_due(connected.store, connected.kit)
    connected.sandbox.send_events_to(f"{connected.api.url}/webhooks/stripe", connected.sandbox.client_secret)
    account = connected.sandbox.account()
    customer = next(iter(account.collections["customers"].live()))
    account.update_customer(customer["id"], {"name": "Pushed Name"})
    # The sender waits on the gateway, which answers on this event loop: wait for it off the loop.
    assert await asyncio.to_thread(connected.sandbox.webhooks.flush, 20)
    assert (await connected.common("customers", customer["id"]))["name"] == "Pushed Name"


async def test_during_rotation_any_v1_may_match_and_a_duplicate_is_harmless(connected: Connected) -> None:
    await run_everything_due(connected.store, connected.kit)
    account = connected.sandbox.account()
    customer = next(iter(account.collections["customers"].live()))
    account.update_customer(customer["id"], {"name": "Rotated"})
    body = _event(connected, "customer.updated", account.collections["customers"].objects[customer["id"]])
    signature = _signature(["whsec_the_new_one", connected.sandbox.client_secret], body, int(time.time()))
    first = await connected.deliver(body, signature)
    assert first.status_code == 200, first.text
    assert (await connected.common("customers", customer["id"]))["name"] == "Rotated"
    again = await connected.deliver(body, signature)
    assert again.status_code == 200
    assert (await connected.common("customers", customer["id"]))["name"] == "Rotated"


async def test_a_deletion_event_marks_the_customer_gone(connected: Connected) -> None:
    await run_everything_due(connected.store, connected.kit)
    account = connected.sandbox.account()
    customer = next(iter(account.collections["customers"].live()))
    account.delete_customer(customer["id"])
    body = _event(connected, "customer.deleted", {**customer, "deleted": True})
    answer = await connected.deliver(body, _signature([connected.sandbox.client_secret], body, int(time.time())))
    assert answer.status_code == 200, answer.text
    assert customer["id"] in await cached_ids(connected.store, connected.connection_id, "customers", deleted=True)


@pytest.mark.parametrize(
    ("secret", "age"),
    [("whsec_someone_else", 0), (None, 301), (None, -301)],
    ids=["bad-signature", "older-than-five-minutes", "from-the-future"],
)
async def test_unsigned_or_stale_events_change_nothing(connected: Connected, secret: str | None, age: int) -> None:
    await run_everything_due(connected.store, connected.kit)
    customer = next(iter(connected.sandbox.account().collections["customers"].live()))
    body = _event(connected, "customer.deleted", {**customer, "deleted": True})
    signature = _signature([secret or connected.sandbox.client_secret], body, int(time.time()) - age)
    answer = await connected.deliver(body, signature)
    assert answer.status_code == 401
    assert customer["id"] in await cached_ids(connected.store, connected.connection_id, "customers")


SET_APP = """mutation($input: ProviderAppInput!) { setProviderApp(input: $input) { provider hasWebhookSecret } }"""


async def test_an_endpoint_secret_set_on_the_app_verifies_webhooks_instead_of_the_client_secret(
    connected: Connected,
) -> None:
    """Stripe signs a webhook endpoint's deliveries with that endpoint's `whsec_` secret, not with any API key:
    once the platform gives it, it alone verifies, and a delivery signed with the client secret is refused."""
    await run_everything_due(connected.store, connected.kit)
    endpoint_secret = connected.sandbox.send_events_to(f"{connected.api.url}/webhooks/stripe")
    given = {
        "provider": "stripe",
        "clientId": connected.sandbox.client_id,
        "clientSecret": connected.sandbox.client_secret,
        "authorizeUrl": f"{connected.url}/oauth/authorize",
        "baseUrl": connected.url,
        "webhookSecret": endpoint_secret,
    }
    app = data(await connected.api.graphql(SET_APP, connected.api_key, input=given))["setProviderApp"]
    assert app == {"provider": "stripe", "hasWebhookSecret": True}
    account = connected.sandbox.account()
    customer = next(iter(account.collections["customers"].live()))
    account.update_customer(customer["id"], {"name": "Signed By The Endpoint"})
    assert await asyncio.to_thread(connected.sandbox.webhooks.flush, 20)
    assert (await connected.common("customers", customer["id"]))["name"] == "Signed By The Endpoint"
    body = _event(connected, "customer.deleted", {**customer, "deleted": True})
    refused = await connected.deliver(body, _signature([connected.sandbox.client_secret], body, int(time.time())))
    assert refused.status_code == 401
    assert customer["id"] in await cached_ids(connected.store, connected.connection_id, "customers")


async def test_an_overlong_webhook_secret_is_refused(connected: Connected) -> None:
    given = {"provider": "stripe", "clientId": "ca_x", "clientSecret": "sk_test_x", "webhookSecret": "w" * 501}
    answer = await connected.api.graphql(SET_APP, connected.api_key, input=given)
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert answer["errors"][0]["extensions"]["field"] == "webhookSecret"
