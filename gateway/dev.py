"""`xkit dev`: sandboxes, a demo platform with its key and connection, the first backfill, then serve."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, select
from tqdm import tqdm

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize
from connectors.hubspot.sandbox import create_app as create_hubspot_sandbox
from connectors.kit.credentials import Credentials
from connectors.kit.oauth import OAuthApp
from connectors.kit.sandbox import serve_in_thread
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from gateway.app import Runtime, create_app, server_config
from gateway.settings import Settings
from sync.connections import NewConnection, create_connection, reconnect
from sync.crypto import generate_secret_key
from sync.files import private_directory, read_or_create_private_text
from sync.migrate import upgrade
from sync.redirect_uris import add_redirect_uri
from sync.store import Store
from sync.tables import api_keys, connections, end_users, platforms, records
from sync.tenancy import KEY_PREFIX, create_api_key, create_platform, hash_api_key, set_provider_app

DEMO_PLATFORM = "Demo platform"
DEMO_END_USER = "demo-user"
# Where the demo platform's end users come back after connecting: a frontend on the developer's machine.
DEMO_REDIRECT_URI = "http://localhost:3000/connected"
SANDBOX_SEED = 42

SAMPLE_QUERY = """{
  contacts(first: 5) {
    edges { node { firstName lastName email company { name domain } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _with_local_secrets(settings: Settings) -> Settings:
    """Zero setup: the secret key and the dev API key live under .xkit/ unless the environment sets them."""
    private_directory(settings.data_dir)
    updates: dict[str, SecretStr] = {}
    if settings.secret_key is None:
        key = read_or_create_private_text(settings.data_dir / "secret.key", generate_secret_key())
        updates["secret_key"] = SecretStr(key)
    if settings.dev_api_key is None:
        made = KEY_PREFIX + "dev_" + secrets.token_urlsafe(24)
        updates["dev_api_key"] = SecretStr(read_or_create_private_text(settings.data_dir / "dev_api_key", made))
    return settings.model_copy(update=updates)


def hubspot_size(contacts: int) -> SandboxSize:
    return SandboxSize(
        contacts=contacts,
        companies=max(10, contacts // 8),
        deals=max(10, contacts // 4),
        owners=8,
        notes=max(10, contacts // 2),
        tasks=max(10, contacts // 3),
    )


def salesforce_size(contacts: int) -> SalesforceSize:
    return SalesforceSize(
        contacts=contacts,
        leads=max(10, contacts // 4),
        accounts=max(10, contacts // 8),
        opportunities=max(10, contacts // 4),
        users=8,
        tasks=max(10, contacts // 3),
        notes=max(10, contacts // 4),
    )


@dataclass(frozen=True)
class DemoConnection:
    """One sandbox the demo end user is connected to."""

    provider: str
    app: OAuthApp
    credentials: Credentials
    base_url: str | None  # None when the token names the host (Salesforce's instance_url)
    records: int


async def ensure_demo(store: Store, api_key: str, demos: list[DemoConnection], *, redirect_uri_limit: int) -> None:
    async with store.reader.connect() as conn:
        platform_id = (await conn.execute(select(platforms.c.id).where(platforms.c.name == DEMO_PLATFORM))).scalar()
    if platform_id is None:
        platform_id = await create_platform(store, DEMO_PLATFORM)
    await add_redirect_uri(store, platform_id, DEMO_REDIRECT_URI, limit=redirect_uri_limit)
    async with store.reader.connect() as conn:
        key_known = (
            await conn.execute(select(api_keys.c.id).where(api_keys.c.key_hash == hash_api_key(api_key)))
        ).first()
    if key_known is None:
        await create_api_key(store, platform_id, "dev", key=api_key)
    for demo in demos:
        await set_provider_app(store, platform_id, demo.provider, demo.app)
        async with store.reader.connect() as conn:
            existing = (
                await conn.execute(
                    select(connections.c.id)
                    .join(end_users, end_users.c.id == connections.c.end_user_id)
                    .where(
                        connections.c.platform_id == platform_id,
                        connections.c.provider == demo.provider,
                        end_users.c.external_id == DEMO_END_USER,
                    )
                )
            ).scalar()
        if existing is not None:
            # The sandboxes are new on every start, so their tokens are too.
            await reconnect(store, existing, demo.credentials, demo.base_url)
            continue
        await create_connection(
            store,
            NewConnection(
                platform_id=platform_id,
                provider=demo.provider,
                external_user_id=DEMO_END_USER,
                credentials=demo.credentials,
                base_url=demo.base_url,
            ),
        )


async def _backfill_with_progress(runtime: Runtime, expected: int) -> None:
    assert runtime.worker is not None
    drain = asyncio.create_task(runtime.worker.drain())
    with tqdm(total=expected, desc="Backfilling the sandboxes", unit="rec") as bar:
        while True:
            async with runtime.store.reader.connect() as conn:
                count = (await conn.execute(select(func.count()).select_from(records))).scalar_one()
            bar.update(max(0, min(count, expected) - bar.n))
            if drain.done():
                break
            await asyncio.sleep(0.2)
    await drain


def _banner(settings: Settings, api_key: str) -> str:
    url = f"{settings.resolved_public_url}/graphql"
    compact = " ".join(SAMPLE_QUERY.split())
    return f"""
xkit is running.

  GraphQL   {url}   (open it in a browser for GraphiQL)
  API key   {api_key}

Try it:
  curl -s {url} -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\
    -d '{{"query": "{compact}"}}'

Connect an end user through the sandboxes' consent pages (open the url it returns in a browser):
  mutation {{ connectUrl(provider: "hubspot", externalUserId: "someone",
               redirectUri: "{DEMO_REDIRECT_URI}") {{ url }} }}
"""


def with_sandboxes_allowed(settings: Settings, sandbox_urls: list[str]) -> Settings:
    """The egress policy lets exactly these sandboxes through (host and port), besides what the operator set."""
    targets = [urlsplit(url).netloc for url in sandbox_urls]
    return settings.model_copy(update={"egress_allow": [*settings.egress_allow, *targets]})


def run_dev(settings: Settings, *, contacts: int) -> None:
    settings = _with_local_secrets(settings)
    assert settings.dev_api_key is not None
    api_key = settings.dev_api_key.get_secret_value()
    hubspot = HubSpotSandbox(seed=SANDBOX_SEED, size=hubspot_size(contacts))
    salesforce = SalesforceSandbox(seed=SANDBOX_SEED, size=salesforce_size(contacts))
    port = settings.port
    with (
        serve_in_thread(create_hubspot_sandbox(hubspot), port=port + 1) as hubspot_url,
        serve_sandbox(salesforce, login_port=port + 2, instance_port=port + 3) as (login_url, instance_url),
    ):
        print(f"HubSpot sandbox at {hubspot_url}")
        print(f"Salesforce sandbox: login host {login_url}, instance {instance_url}")
        settings = with_sandboxes_allowed(settings, [hubspot_url, login_url, instance_url])
        hs, sf = hubspot.size, salesforce.size
        demos = [
            DemoConnection(
                "hubspot",
                OAuthApp(hubspot.client_id, hubspot.client_secret, f"{hubspot_url}/oauth/authorize", hubspot_url),
                Credentials.from_token_response(hubspot.mint_tokens()),
                hubspot_url,
                hs.contacts + hs.companies + hs.deals + hs.owners + hs.notes + hs.tasks,
            ),
            DemoConnection(
                "salesforce",
                OAuthApp(salesforce.client_id, salesforce.client_secret, f"{login_url}/services/oauth2/authorize"),
                Credentials.from_token_response(salesforce.mint_tokens()),
                None,
                sf.contacts + sf.leads + sf.accounts + sf.opportunities + sf.users + sf.tasks + sf.notes,
            ),
        ]

        async def main() -> None:
            runtime = Runtime.build(settings, run_worker=True)
            await upgrade(runtime.store.engine)
            await ensure_demo(runtime.store, api_key, demos, redirect_uri_limit=settings.redirect_uris_per_platform)
            await _backfill_with_progress(runtime, sum(demo.records for demo in demos))
            # The HubSpot sandbox pushes its changes here, signed, as HubSpot would: edits show up at once.
            hubspot.configure_webhooks(f"{settings.resolved_public_url}/webhooks/hubspot")
            print(_banner(settings, api_key))
            await uvicorn.Server(server_config(create_app(runtime), settings, log_level="warning")).serve()

        asyncio.run(main())
