"""`xkit dev`: every registered connector's sandbox, a demo platform with its key and a connection to each,
the first backfill, then serve."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, select
from tqdm import tqdm

from connectors import get_connector, sandbox_entries
from connectors.kit.credentials import Credentials
from connectors.kit.oauth import OAuthApp
from connectors.kit.registry import SandboxDriver
from gateway.app import Runtime, create_app, server_config
from gateway.settings import Settings
from sync.storage.crypto import generate_secret_key
from sync.storage.files import private_directory, read_or_create_private_text
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from sync.storage.tables import api_keys, connections, end_users, platforms, records
from sync.tenancy.connections import NewConnection, create_connection, reconnect
from sync.tenancy.platforms import KEY_PREFIX, create_api_key, create_platform, hash_api_key, set_provider_app
from sync.tenancy.redirect_uris import add_redirect_uri

DEMO_PLATFORM = "Demo platform"
DEMO_END_USER = "demo-user"
# Where the demo platform's end users come back after connecting: a frontend on the developer's machine.
DEMO_REDIRECT_URI = "http://localhost:3000/connected"

SAMPLE_QUERY = """{
  contacts(first: 5) {
    edges { node { firstName lastName email company { name domain } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _with_local_secrets(settings: Settings) -> Settings:
    """Zero setup: the secret key and the dev API key live under .xkit/ unless the environment sets them; only
    test-mode provider keys connect."""
    private_directory(settings.data_dir)
    updates: dict[str, SecretStr] = {}
    if settings.secret_key is None:
        key = read_or_create_private_text(settings.data_dir / "secret.key", generate_secret_key())
        updates["secret_key"] = SecretStr(key)
    if settings.dev_api_key is None:
        made = KEY_PREFIX + "dev_" + secrets.token_urlsafe(24)
        updates["dev_api_key"] = SecretStr(read_or_create_private_text(settings.data_dir / "dev_api_key", made))
    # The sandboxes stand in for real accounts: a live key pasted here would sync a real account's data.
    return settings.model_copy(update={**updates, "test_keys_only": True})


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


def serve_sandboxes(
    stack: ExitStack, settings: Settings, *, contacts: int
) -> tuple[Settings, list[SandboxDriver], list[DemoConnection]]:
    """Serve every registered connector's sandbox on the ports after the gateway's, until `stack` closes.

    Returns the settings with the sandboxes let through egress, their drivers and a demo connection to each.
    """
    drivers = [entry.dev(contacts) for entry in sandbox_entries().values()]
    demos: list[DemoConnection] = []
    next_port = settings.port + 1
    for driver in drivers:
        endpoints = stack.enter_context(driver.serve(next_port))
        next_port += driver.ports
        connector = get_connector(driver.provider)
        print(f"{connector.display_name} sandbox at {', '.join(endpoints.urls)}")
        settings = with_sandboxes_allowed(settings, list(endpoints.urls))
        records = sum(len(driver.expected_ids(stream)) for stream in connector.stream_names)
        demos.append(
            DemoConnection(driver.provider, endpoints.app, driver.dev_credentials(), endpoints.base_url, records)
        )
    return settings, drivers, demos


def run_dev(settings: Settings, *, contacts: int) -> None:
    settings = _with_local_secrets(settings)
    assert settings.dev_api_key is not None
    api_key = settings.dev_api_key.get_secret_value()
    with ExitStack() as stack:
        settings, drivers, demos = serve_sandboxes(stack, settings, contacts=contacts)

        async def main() -> None:
            runtime = Runtime.build(settings, run_worker=True)
            await upgrade(runtime.store.engine)
            await ensure_demo(runtime.store, api_key, demos, redirect_uri_limit=settings.redirect_uris_per_platform)
            await _backfill_with_progress(runtime, sum(demo.records for demo in demos))
            for driver in drivers:
                driver.push_changes_to(settings.resolved_public_url)
            print(_banner(settings, api_key))
            await uvicorn.Server(server_config(create_app(runtime), settings, log_level="warning")).serve()

        asyncio.run(main())
