"""Direct access to a connection's credentials: fresh, for secret keys, and every read recorded."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx2
import pytest

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from resolvers.ids import to_global_id
from sync.storage.store import Store
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.platforms import set_provider_app
from tests.support import connect_hubspot, data, error_codes, gateway, new_tenant

READ = """query($id: ID!) { connection(id: $id) {
    credentials { accessToken expiresAt scopes instanceUrl apiKey }
    credentialReads { readAt apiKeyPrefix apiKeyName } } }"""


async def test_fresh_credentials_work_at_the_provider_and_every_read_is_recorded(
    store: Store,
    kit: HttpKit,
    hubspot: HubSpotSandbox,
    hubspot_url: str,
    secret_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = await new_tenant(store)
    await set_provider_app(store, tenant.platform_id, "hubspot", OAuthApp(hubspot.client_id, hubspot.client_secret))
    tokens = hubspot.mint_tokens()
    # About to expire: the read refreshes first.
    almost = Credentials(
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        expires_at=datetime.now(UTC) + timedelta(seconds=20),
    )
    connection_id = await create_connection(
        store,
        NewConnection(
            platform_id=tenant.platform_id,
            provider="hubspot",
            external_user_id="u",
            credentials=almost,
            base_url=hubspot_url,
        ),
    )
    gid = to_global_id("Connection", connection_id)
    refreshes = hubspot.stats.token_refreshes
    async with gateway(store, kit, secret_key) as api:
        first = data(await api.graphql(READ, tenant.api_key, id=gid))["connection"]
        second = data(await api.graphql(READ, tenant.api_key, id=gid))["connection"]
        audit = "query($id: ID!) { connection(id: $id) { credentialReads { readAt apiKeyPrefix apiKeyName } } }"
        reads = data(await api.graphql(audit, tenant.api_key, id=gid))["connection"]["credentialReads"]
    issued = first["credentials"]
    assert hubspot.stats.token_refreshes == refreshes + 1
    assert issued["accessToken"] != tokens["access_token"]
    assert datetime.fromisoformat(issued["expiresAt"]) > datetime.now(UTC) + timedelta(minutes=10)
    assert second["credentials"]["accessToken"] == issued["accessToken"]  # no second refresh
    async with httpx2.AsyncClient() as client:
        direct = await client.get(
            f"{hubspot_url}/crm/v3/owners", headers={"Authorization": f"Bearer {issued['accessToken']}"}
        )
    assert direct.status_code == 200
    assert len(reads) == 2
    assert reads[0]["apiKeyPrefix"] == tenant.api_key[:10]
    for secret in (issued["accessToken"], tokens["refresh_token"], tenant.api_key):
        assert secret not in caplog.text


async def test_salesforce_credentials_name_the_instance(store: Store, kit: HttpKit, secret_key: str) -> None:
    sandbox = SalesforceSandbox(
        seed=2, size=SalesforceSize(contacts=5, leads=1, accounts=1, opportunities=1, users=1, tasks=1, notes=1)
    )
    tenant = await new_tenant(store)
    with serve_sandbox(sandbox) as (login_url, instance_url):
        app = OAuthApp(sandbox.client_id, sandbox.client_secret, authorize_url=f"{login_url}/services/oauth2/authorize")
        await set_provider_app(store, tenant.platform_id, "salesforce", app)
        connection_id = await create_connection(
            store,
            NewConnection(
                platform_id=tenant.platform_id,
                provider="salesforce",
                external_user_id="u",
                credentials=Credentials.from_token_response(sandbox.mint_tokens()),
            ),
        )
        async with gateway(store, kit, secret_key) as api:
            body = await api.graphql(READ, tenant.api_key, id=to_global_id("Connection", connection_id))
    assert data(body)["connection"]["credentials"]["instanceUrl"] == instance_url


async def test_another_platform_cannot_read_them(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> None:
    owner, intruder = await new_tenant(store, "owner"), await new_tenant(store, "intruder")
    connection_id = await connect_hubspot(store, owner, hubspot, hubspot_url)
    async with gateway(store, kit, secret_key) as api:
        body = await api.graphql(READ, intruder.api_key, id=to_global_id("Connection", connection_id))
    assert error_codes(body) == ["NOT_FOUND"]
