"""Query: a 100-contact page with every common field and `raw`, through /graphql and through a minimal
raw endpoint on the same server; requests/s of each and their ratio."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

import httpx2
import orjson

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize
from tests.benchmarks.common import synced_hubspot_gateway

QUERY = """{ contacts(first: 100) { edges { cursor node {
  id remoteId createdAt updatedAt firstName lastName email phone jobTitle lifecycleStage raw
} } pageInfo { hasNextPage endCursor } } }"""

CONCURRENCY = 16
ROUNDS = 5


async def _hammer(url: str, method: str, body: bytes | None, headers: dict[str, str], seconds: float) -> int:
    done = 0
    deadline = time.perf_counter() + seconds

    async def one(client: httpx2.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            response = await client.request(method, url, content=body, headers=headers)
            assert response.status_code == 200, response.text[:300]
            done += 1

    limits = httpx2.Limits(max_connections=CONCURRENCY)
    async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(one(client) for _ in range(CONCURRENCY)))
    return done


async def measure(url: str, method: str, body: bytes | None, headers: dict[str, str], seconds: float) -> float:
    started = time.perf_counter()
    done = await _hammer(url, method, body, headers, seconds)
    return done / (time.perf_counter() - started)


async def run_query(seconds: float = 20.0) -> dict[str, Any]:
    sandbox = HubSpotSandbox(
        seed=11, size=SandboxSize(contacts=500, companies=60, deals=10, owners=4, notes=10, tasks=10)
    )
    async with synced_hubspot_gateway("xkit_bench_query", sandbox) as gateway:
        base = gateway.url
        headers = {"Authorization": f"Bearer {gateway.api_key}", "Content-Type": "application/json"}
        graphql_body = orjson.dumps({"query": QUERY})
        async with httpx2.AsyncClient() as client:
            via_graphql = (await client.post(f"{base}/graphql", content=graphql_body, headers=headers)).json()
            via_raw = (await client.get(f"{base}/raw/contacts", headers=headers)).json()
        assert via_graphql == via_raw, "both endpoints must return the same page"
        assert len(via_graphql["data"]["contacts"]["edges"]) == 100
        graphql = (f"{base}/graphql", "POST", graphql_body, headers)
        raw = (f"{base}/raw/contacts", "GET", None, headers)
        await measure(*graphql, 1.5)  # warm up both
        await measure(*raw, 1.5)
        # Interleaved rounds, medians: a noisy neighbour then hits both endpoints alike.
        graphql_runs, raw_runs = [], []
        for _ in range(ROUNDS):
            graphql_runs.append(await measure(*graphql, seconds / ROUNDS))
            raw_runs.append(await measure(*raw, seconds / ROUNDS))
    graphql_rps, raw_rps = statistics.median(graphql_runs), statistics.median(raw_runs)
    return {
        "graphql_requests_per_second": round(graphql_rps, 1),
        "raw_requests_per_second": round(raw_rps, 1),
        "ratio": round(graphql_rps / raw_rps, 2),
        "ratio_per_round": [round(g / r, 2) for g, r in zip(graphql_runs, raw_runs, strict=True)],
        "concurrency": CONCURRENCY,
        "python": sys.version.split()[0],
    }
