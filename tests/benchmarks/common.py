"""Shared pieces of the benchmarks: a throwaway PostgreSQL database, subprocesses, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import websockets

from connectors.hubspot.sandbox import HubSpotSandbox, create_app
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from sync.worker.scheduler import Worker
from tests.support import connect_hubspot, new_tenant, sandbox_egress

PG_ADMIN_DSN = os.environ.get("XKIT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


@contextlib.contextmanager
def subprocess_running(args: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, *args])  # noqa: S603 - our own modules
    try:
        wait_for_port(port)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.asynccontextmanager
async def fresh_postgres(prefix: str) -> AsyncIterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass(frozen=True)
class SyncedGateway:
    """A PostgreSQL database holding a backfilled HubSpot sandbox, and xkit serving it from its own process."""

    url: str
    api_key: str
    connection_id: uuid.UUID
    sandbox_url: str


@contextlib.asynccontextmanager
async def synced_hubspot_gateway(prefix: str, sandbox: HubSpotSandbox) -> AsyncIterator[SyncedGateway]:
    secret = generate_secret_key()
    sandbox.faults.rate_limit_enabled = False
    async with fresh_postgres(prefix) as database_url:
        engine = create_engine(database_url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(secret)))
        with serve_in_thread(create_app(sandbox)) as sandbox_url:
            tenant = await new_tenant(store)
            connection_id = await connect_hubspot(store, tenant, sandbox, sandbox_url, rate_limit={"requests": 0})
            kit = HttpKit(egress=sandbox_egress())
            await Worker(store, kit).drain()
            await kit.aclose()
            await engine.dispose()
            port = free_port()
            server = ["-m", "tests.benchmarks.query_server", "--database-url", database_url, "--secret-key", secret]
            with subprocess_running([*server, "--port", str(port)], port):
                yield SyncedGateway(f"http://127.0.0.1:{port}", tenant.api_key, connection_id, sandbox_url)


async def subscription_results(
    url: str, api_key: str, query: str, variables: dict[str, Any], ready: asyncio.Event
) -> AsyncIterator[dict[str, Any]]:
    """A bare graphql-transport-ws client (thousands of them fit in one process): each result's data."""
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], max_size=None, ping_interval=None) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {api_key}"}}
        await ws.send(orjson.dumps(init).decode())
        assert orjson.loads(await ws.recv())["type"] == "connection_ack"
        subscribe = {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        await ws.send(orjson.dumps(subscribe).decode())
        ready.set()
        async for raw in ws:
            message = orjson.loads(raw)
            if message["type"] == "next":
                yield message["payload"]["data"]
