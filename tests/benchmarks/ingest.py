"""Ingest: backfill 100,000 sandbox contacts into PostgreSQL, rate limiting off. Records/s and peak RSS.

One benchmark per provider: HubSpot pages 100 contacts through its list API, Salesforce 2,000 through SOQL.
"""

from __future__ import annotations

import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from sqlalchemy import func, select, update

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from sync.storage.tables import records, stream_states
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.platforms import create_platform
from sync.worker.scheduler import Worker
from tests.benchmarks.common import free_port, fresh_postgres, subprocess_running
from tests.support import sandbox_egress


def _sandbox(provider: str, contacts: int) -> tuple[list[str], int, str, str | None]:
    """How to run the provider's sandbox: arguments, the port to wait for, where to mint tokens, base URL."""
    if provider == "salesforce":
        login, instance = free_port(), free_port()
        args = ["-m", "connectors.salesforce.sandbox", "--login-port", str(login), "--instance-port", str(instance)]
        args += ["--contacts", str(contacts), "--leads", "10", "--accounts", "10", "--opportunities", "10"]
        args += ["--users", "2", "--tasks", "10", "--notes", "10", "--no-limits"]
        return args, instance, f"http://127.0.0.1:{instance}", None
    port = free_port()
    args = ["-m", "connectors.hubspot.sandbox", "--port", str(port), "--contacts", str(contacts)]
    args += ["--companies", "10", "--deals", "10", "--owners", "2", "--notes", "10", "--tasks", "10"]
    args += ["--no-rate-limit"]
    return args, port, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}"


async def _live_contacts(
    client: httpx2.AsyncClient, provider: str, api_url: str, tokens: dict[str, Any], seeded: int
) -> int:
    """The sandbox's own count of live contacts (Salesforce seeds some already in the recycle bin)."""
    if provider != "salesforce":
        return seeded
    response = await client.get(
        f"{api_url}/services/data/v60.0/query",
        params={"q": "SELECT Id FROM Contact"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    return int(response.json()["totalSize"])


async def run_ingest(provider: str = "hubspot", contacts: int = 100_000) -> dict[str, Any]:
    sandbox_args, port, control_url, base_url = _sandbox(provider, contacts)
    with subprocess_running(sandbox_args, port):
        async with fresh_postgres("xkit_bench_ingest") as url, httpx2.AsyncClient() as client:
            engine = create_engine(url)
            await upgrade(engine)
            store = Store(engine, Vault(parse_secret_key(generate_secret_key())))
            tokens = (await client.post(f"{control_url}/_sandbox/tokens")).json()
            expected = await _live_contacts(client, provider, control_url, tokens, contacts)
            platform_id = await create_platform(store, "bench")
            connection_id = await create_connection(
                store,
                NewConnection(
                    platform_id=platform_id,
                    provider=provider,
                    external_user_id="bench",
                    credentials=Credentials.from_token_response(tokens),
                    base_url=base_url,
                    rate_limit={"requests": 0},
                ),
            )
            async with engine.begin() as conn:
                await conn.execute(
                    update(stream_states)
                    .where(stream_states.c.connection_id == connection_id, stream_states.c.stream != "contacts")
                    .values(next_run_at=datetime.now(UTC) + timedelta(days=1))
                )
            kit = HttpKit(egress=sandbox_egress())
            started = time.perf_counter()
            await Worker(store, kit).drain()
            elapsed = time.perf_counter() - started
            await kit.aclose()
            async with engine.connect() as conn:
                ingested = (await conn.execute(select(func.count()).select_from(records))).scalar_one()
            await engine.dispose()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert ingested == expected, f"ingested {ingested} of {expected}"
    return {
        "provider": provider,
        "records": ingested,
        "seconds": round(elapsed, 2),
        "records_per_second": round(ingested / elapsed),
        "peak_rss_mb": round(peak_rss_mb, 1),
    }
