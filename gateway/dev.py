"""`xkit dev`: sandboxes, a demo platform with its key and connection, the first backfill, then serve."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, select
from tqdm import tqdm

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize
from connectors.hubspot.sandbox import create_app as create_hubspot_sandbox
from connectors.kit.credentials import Credentials
from connectors.kit.oauth import OAuthApp
from connectors.kit.sandbox import serve_in_thread
from gateway.app import Runtime, create_app
from gateway.settings import Settings
from sync.connections import NewConnection, create_connection, reconnect
from sync.crypto import generate_secret_key
from sync.migrate import upgrade
from sync.store import Store
from sync.tables import api_keys, connections, end_users, platforms, records
from sync.tenancy import KEY_PREFIX, create_api_key, create_platform, hash_api_key, set_provider_app

DEMO_PLATFORM = "Demo platform"
DEMO_END_USER = "demo-user"
SANDBOX_SEED = 42

SAMPLE_QUERY = """{
  contacts(first: 5) {
    edges { node { firstName lastName email company { name domain } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _read_or_create(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.write_text(make + "\n")
    path.chmod(0o600)
    return make


def _with_local_secrets(settings: Settings) -> Settings:
    """Zero setup: the secret key and the dev API key live under .xkit/ unless the environment sets them."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    updates: dict[str, SecretStr] = {}
    if settings.secret_key is None:
        updates["secret_key"] = SecretStr(_read_or_create(settings.data_dir / "secret.key", generate_secret_key()))
    if settings.dev_api_key is None:
        made = KEY_PREFIX + "dev_" + secrets.token_urlsafe(24)
        updates["dev_api_key"] = SecretStr(_read_or_create(settings.data_dir / "dev_api_key", made))
    return settings.model_copy(update=updates)


def sandbox_size(contacts: int) -> SandboxSize:
    return SandboxSize(
        contacts=contacts,
        companies=max(10, contacts // 8),
        deals=max(10, contacts // 4),
        owners=8,
        notes=max(10, contacts // 2),
        tasks=max(10, contacts // 3),
    )


async def ensure_demo(store: Store, api_key: str, sandbox: HubSpotSandbox, sandbox_url: str) -> None:
    async with store.reader.connect() as conn:
        platform_id = (await conn.execute(select(platforms.c.id).where(platforms.c.name == DEMO_PLATFORM))).scalar()
    if platform_id is None:
        platform_id = await create_platform(store, DEMO_PLATFORM)
    async with store.reader.connect() as conn:
        key_known = (
            await conn.execute(select(api_keys.c.id).where(api_keys.c.key_hash == hash_api_key(api_key)))
        ).first()
    if key_known is None:
        await create_api_key(store, platform_id, "dev", key=api_key)
    await set_provider_app(
        store,
        platform_id,
        "hubspot",
        OAuthApp(
            sandbox.client_id,
            sandbox.client_secret,
            authorize_url=f"{sandbox_url}/oauth/authorize",
            base_url=sandbox_url,
        ),
    )
    tokens = sandbox.mint_tokens()
    credentials = Credentials.from_token_response(tokens)
    async with store.reader.connect() as conn:
        existing = (
            await conn.execute(
                select(connections.c.id)
                .join(end_users, end_users.c.id == connections.c.end_user_id)
                .where(
                    connections.c.platform_id == platform_id,
                    connections.c.provider == "hubspot",
                    end_users.c.external_id == DEMO_END_USER,
                )
            )
        ).scalar()
    if existing is not None:
        # The sandbox is new on every start, so its tokens are too.
        await reconnect(store, existing, credentials, sandbox_url)
    else:
        await create_connection(
            store,
            NewConnection(
                platform_id=platform_id,
                provider="hubspot",
                external_user_id=DEMO_END_USER,
                credentials=credentials,
                base_url=sandbox_url,
            ),
        )


async def _backfill_with_progress(runtime: Runtime, expected: int) -> None:
    assert runtime.worker is not None
    drain = asyncio.create_task(runtime.worker.drain())
    with tqdm(total=expected, desc="Backfilling HubSpot sandbox", unit="rec") as bar:
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
"""


@contextlib.contextmanager
def _hubspot_sandbox(sandbox: HubSpotSandbox, port: int) -> Iterator[str]:
    with serve_in_thread(create_hubspot_sandbox(sandbox), port=port) as url:
        yield url


def run_dev(settings: Settings, *, contacts: int) -> None:
    settings = _with_local_secrets(settings)
    assert settings.dev_api_key is not None
    api_key = settings.dev_api_key.get_secret_value()
    size = sandbox_size(contacts)
    sandbox = HubSpotSandbox(seed=SANDBOX_SEED, size=size)
    with _hubspot_sandbox(sandbox, settings.port + 1) as sandbox_url:
        print(f"HubSpot sandbox at {sandbox_url}")

        async def main() -> None:
            runtime = Runtime.build(settings, run_worker=True)
            await upgrade(runtime.store.engine)
            await ensure_demo(runtime.store, api_key, sandbox, sandbox_url)
            expected = size.contacts + size.companies + size.deals + size.owners + size.notes + size.tasks
            await _backfill_with_progress(runtime, expected)
            print(_banner(settings, api_key))
            config = uvicorn.Config(
                create_app(runtime),
                host=settings.host,
                port=settings.port,
                log_level="warning",
                lifespan="on",
                access_log=False,
            )
            await uvicorn.Server(config).serve()

        asyncio.run(main())
