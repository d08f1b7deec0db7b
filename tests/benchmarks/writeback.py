"""Writeback overhead: what a mutation costs beyond the provider calls it has to make.

Each `createContact` / `updateContact` through /graphql is paired with the same provider calls sent
straight to the sandbox the same way (the write, then the read-back the sync would do: batch read with
every property and, alongside it, the v4 associations read). Overhead = mutation latency - those calls'
latency, one pair at a time, interleaved so both see the same machine. The gateway runs in its own process on
PostgreSQL; the sandbox answers from a thread of this one.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import orjson

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize
from resolvers.ids import to_global_id
from tests.benchmarks.common import synced_hubspot_gateway

CREATE = """mutation($c: ID!, $input: ContactInput!) {
  createContact(connectionId: $c, input: $input) { contact { id remoteId updatedAt firstName email } }
}"""
UPDATE = """mutation($id: ID!, $input: ContactInput!) {
  updateContact(id: $id, input: $input) { contact { id remoteId updatedAt jobTitle } }
}"""

SAMPLES = 300
WARMUP = 20


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _summary(mutation_ms: list[float], provider_ms: list[float]) -> dict[str, float]:
    overhead = [m - p for m, p in zip(mutation_ms, provider_ms, strict=True)]
    return {
        "mutation_p50_ms": round(statistics.median(mutation_ms), 2),
        "provider_calls_p50_ms": round(statistics.median(provider_ms), 2),
        "overhead_p50_ms": round(statistics.median(overhead), 2),
        "overhead_p99_ms": round(_percentile(overhead, 0.99), 2),
    }


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def run_writeback() -> dict[str, Any]:
    sandbox = HubSpotSandbox(seed=5, size=SandboxSize(contacts=200, companies=20, deals=5, owners=3, notes=5, tasks=5))
    async with synced_hubspot_gateway("xkit_bench_writeback", sandbox) as gateway:
        return await _measure(gateway.url, sandbox, gateway.sandbox_url, gateway.api_key, gateway.connection_id)


async def _measure(
    gateway_url: str, sandbox: HubSpotSandbox, sandbox_url: str, api_key: str, connection_id: uuid.UUID
) -> dict[str, Any]:
    token = sandbox.mint_tokens()["access_token"]
    provider_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    properties = sorted(
        p["name"]
        for p in httpx2.get(f"{sandbox_url}/crm/v3/properties/contacts", headers=provider_headers).json()["results"]
    )
    gateway_headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    connection = to_global_id("Connection", connection_id)
    limits = httpx2.Limits(max_connections=1)
    async with (
        httpx2.AsyncClient(base_url=gateway_url, headers=gateway_headers, limits=limits, timeout=30) as api,
        httpx2.AsyncClient(
            base_url=sandbox_url, headers=provider_headers, limits=httpx2.Limits(max_connections=2), timeout=30
        ) as provider,
    ):

        async def graphql(query: str, **variables: Any) -> dict[str, Any]:
            response = await api.post("/graphql", content=orjson.dumps({"query": query, "variables": variables}))
            body: dict[str, Any] = orjson.loads(response.content)
            assert not body.get("errors"), body
            data: dict[str, Any] = body["data"]
            return data

        async def read_back(remote_id: str) -> None:
            # As the writeback does it: the record and its associations at the same time.
            batch = {"properties": properties, "inputs": [{"id": remote_id}]}
            links = {"inputs": [{"id": remote_id}]}
            answers = await asyncio.gather(
                provider.post("/crm/v3/objects/contacts/batch/read", json=batch),
                provider.post("/crm/v4/associations/contacts/companies/batch/read", json=links),
            )
            for answer in answers:
                answer.raise_for_status()

        async def direct_create() -> None:
            body = {"properties": {"firstname": "Bench", "email": f"direct.{uuid.uuid4().hex}@bench.example"}}
            created = await provider.post("/crm/v3/objects/contacts", json=body)
            assert created.status_code == 201
            await read_back(created.json()["id"])

        async def direct_update(remote_id: str, title: str) -> None:
            patched = await provider.patch(
                f"/crm/v3/objects/contacts/{remote_id}", json={"properties": {"jobtitle": title}}
            )
            patched.raise_for_status()
            await read_back(remote_id)

        async def via_create(_: int) -> None:
            email = f"bench.{uuid.uuid4().hex}@bench.example"
            await graphql(CREATE, c=connection, input={"firstName": "Bench", "email": email})

        created = await graphql(CREATE, c=connection, input={"firstName": "Target", "email": "target@bench.example"})
        target = created["createContact"]["contact"]

        async def via_update(i: int) -> None:
            await graphql(UPDATE, id=target["id"], input={"jobTitle": f"Title {i}"})

        async def direct_update_of(i: int) -> None:
            await direct_update(target["remoteId"], f"Title {i} (direct)")

        async def direct_create_of(_: int) -> None:
            await direct_create()

        results: dict[str, Any] = {"samples": SAMPLES, "provider": "hubspot", "database": "postgresql"}
        for name, mutation, direct in (
            ("createContact", via_create, direct_create_of),
            ("updateContact", via_update, direct_update_of),
        ):
            mutation_ms: list[float] = []
            provider_ms: list[float] = []
            for i in range(WARMUP + SAMPLES):
                m = await _timed(lambda: mutation(i))  # noqa: B023 - awaited at once
                p = await _timed(lambda: direct(i))  # noqa: B023
                if i >= WARMUP:
                    mutation_ms.append(m)
                    provider_ms.append(p)
            results[name] = _summary(mutation_ms, provider_ms)
    return results
