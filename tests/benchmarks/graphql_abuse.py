"""GraphQL abuse: one key hammers `xkit serve` (default limits) with the most expensive document the limits
allow, while another tenant sends a small query; the other tenant's latency, alone and under attack."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import httpx2

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from gateway.settings import Settings
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from sync.worker.scheduler import Worker
from tests.benchmarks.common import free_port, fresh_postgres, subprocess_running
from tests.support import connect_hubspot, new_tenant, sandbox_egress

SMALL_QUERY = "{ contacts(first: 10) { edges { node { id email } } } }"
# 1 + 100 x (edges 1 + node 1 + id, email, firstName + company { name } 2) = 701 points per alias.
PAGE = "contacts(first: 100) { edges { node { id email firstName company { name } } } }"
ATTACKERS = 4
PACE_SECONDS = 0.05


def heaviest_document(max_cost: int, max_aliases: int) -> str:
    count = min(max_cost // 701, max_aliases)
    return "{ " + " ".join(f"a{i}: {PAGE}" for i in range(count)) + " }"


async def _latencies(client: httpx2.AsyncClient, url: str, key: str, seconds: float) -> list[tuple[float, float]]:
    """(when sent, seconds taken) of each small query."""
    latencies: list[tuple[float, float]] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = await client.post(url, json={"query": SMALL_QUERY}, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200 and "errors" not in response.json(), response.text[:300]
        took = time.perf_counter() - started
        latencies.append((started, took))
        # Paced like a real client, well within its own rate limit: its latency is what is measured.
        await asyncio.sleep(max(0.0, PACE_SECONDS - took))
    return latencies


def _summary(latencies: list[tuple[float, float]]) -> dict[str, float] | None:
    ordered = sorted(took for _, took in latencies)
    if not ordered:
        return None
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def run_graphql_abuse(seconds: float = 40.0) -> dict[str, Any]:
    defaults = Settings()
    sandbox = HubSpotSandbox(seed=5, size=SandboxSize(contacts=300, companies=40, deals=5, owners=3, notes=5, tasks=5))
    sandbox.faults.rate_limit_enabled = False
    secret = generate_secret_key()
    async with fresh_postgres("xkit_bench_abuse") as database_url:
        engine = create_engine(database_url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(secret)))
        with serve_in_thread(create_app(sandbox)) as sandbox_url:
            victim, attacker = await new_tenant(store, "victim"), await new_tenant(store, "attacker")
            for tenant in (victim, attacker):
                await connect_hubspot(store, tenant, sandbox, sandbox_url, rate_limit={"requests": 0})
            kit = HttpKit(egress=sandbox_egress())
            await Worker(store, kit).drain()
            await kit.aclose()
        await engine.dispose()
        port = free_port()
        os.environ.update(
            XKIT_DATABASE_URL=database_url,
            XKIT_SECRET_KEY=secret,
            XKIT_RUN_WORKER="false",
            XKIT_LOG_LEVEL="warning",
        )
        serve = f"from gateway.cli import main; main(['serve', '--port', '{port}'])"
        with subprocess_running(["-c", serve], port):
            url = f"http://127.0.0.1:{port}/graphql"
            heaviest = heaviest_document(defaults.graphql_max_cost, defaults.graphql_max_aliases)
            outcomes: dict[str, int] = {}
            attack_seconds: list[float] = []
            async with httpx2.AsyncClient(timeout=120) as client:
                await _latencies(client, url, victim.api_key, 1.0)  # warm up
                alone = await _latencies(client, url, victim.api_key, 5.0)
                stop = asyncio.Event()

                budget_spent_at: float | None = None

                async def attack() -> None:
                    nonlocal budget_spent_at
                    headers = {"Authorization": f"Bearer {attacker.api_key}"}
                    async with httpx2.AsyncClient(timeout=120) as own:
                        while not stop.is_set():
                            started = time.perf_counter()
                            response = await own.post(url, json={"query": heaviest}, headers=headers)
                            body = response.json()
                            code = body["errors"][0]["extensions"]["code"] if body.get("errors") else "OK"
                            if code == "OK":
                                attack_seconds.append(time.perf_counter() - started)
                            elif budget_spent_at is None:
                                budget_spent_at = started
                            outcomes[code] = outcomes.get(code, 0) + 1

                attack_started = time.perf_counter()
                attacks = [asyncio.create_task(attack()) for _ in range(ATTACKERS)]
                try:
                    under_attack = await _latencies(client, url, victim.api_key, seconds)
                finally:
                    stop.set()
                    await asyncio.gather(*attacks)
    spent = budget_spent_at if budget_spent_at is not None else float("inf")
    return {
        "victim_alone": _summary(alone),
        "victim_under_attack": _summary(under_attack),
        # The attacker's bucket starts full; once it is spent the attacker gets the budget's rate only.
        "victim_while_attacker_spends_budget": _summary([s for s in under_attack if s[0] < spent]),
        "victim_once_attacker_budget_spent": _summary([s for s in under_attack if s[0] >= spent]),
        "attacker_budget_spent_after_seconds": round(spent - attack_started, 1) if budget_spent_at else None,
        "attacker_outcomes": outcomes,
        "heaviest_document_seconds_median": round(statistics.median(attack_seconds), 2) if attack_seconds else None,
        "heaviest_document_aliases": heaviest.count(": contacts("),
        "attackers": ATTACKERS,
        "seconds": seconds,
    }
