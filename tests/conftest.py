"""Fixtures: every storage-touching test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize
from connectors.hubspot.sandbox import create_app as create_hubspot_sandbox
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from tests.support import sandbox_egress

PG_ADMIN_DSN = os.environ.get("XKIT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_TEMPLATE = f"xkit_template_{os.getpid()}"


def _postgres_available() -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


POSTGRES_UP = _postgres_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not POSTGRES_UP and os.environ.get("CI", "").lower() == "true":
        raise pytest.UsageError(f"CI=true but PostgreSQL is not reachable at {PG_ADMIN_DSN}")


def _pg_url(database: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database}"


@pytest_asyncio.fixture(scope="session")
async def pg_template() -> AsyncIterator[str | None]:
    """A migrated template database; each test clones it, which is far faster than migrating anew."""
    if not POSTGRES_UP:
        yield None
        return
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}"')
    await admin.execute(f'CREATE DATABASE "{PG_TEMPLATE}"')
    engine = create_engine(_pg_url(PG_TEMPLATE))
    await upgrade(engine)
    await engine.dispose()
    yield PG_TEMPLATE
    await admin.execute(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not POSTGRES_UP:
        pytest.skip("PostgreSQL is not reachable (with CI=true this is a failure)")
    return str(request.param)


@pytest_asyncio.fixture
async def database_url(backend: str, tmp_path: Path, pg_template: str | None) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'xkit.db'}"
        return
    name = f"xkit_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
        yield _pg_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def secret_key() -> str:
    return generate_secret_key()


@pytest_asyncio.fixture
async def store(database_url: str, secret_key: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    await upgrade(engine)
    yield Store(engine, Vault(parse_secret_key(secret_key)))
    await engine.dispose()


@pytest_asyncio.fixture
async def kit() -> AsyncIterator[HttpKit]:
    # Short backoffs keep fault-storm tests quick; the retry logic is the same.
    # So do narrower per-path windows (Zendesk's exports: 10 a minute, here 10 in 0.6 s).
    http = HttpKit(
        egress=sandbox_egress(),
        timeout=10,
        max_retries=6,
        backoff_base=0.01,
        backoff_max=0.2,
        path_window_scale=0.01,
    )
    yield http
    await http.aclose()


SMALL = SandboxSize(contacts=230, companies=40, deals=60, owners=6, notes=80, tasks=50)


@pytest.fixture
def hubspot() -> HubSpotSandbox:
    return HubSpotSandbox(seed=7, size=SMALL)


@pytest.fixture
def hubspot_url(hubspot: HubSpotSandbox) -> Iterator[str]:
    with serve_in_thread(create_hubspot_sandbox(hubspot)) as url:
        yield url
