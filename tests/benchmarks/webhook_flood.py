"""Webhook flood: forged maximal deliveries to /webhooks/hubspot while another tenant queries the API.

The gateway runs in this process on PostgreSQL, with 50 platforms holding a HubSpot app and one of them
owning the portal the deliveries name (so each one costs the gateway a real signature check). The attacker
is another process: ATTACKERS threads, each posting a body just under XKIT_WEBHOOK_MAX_BYTES with a garbage
signature as fast as it is answered. The bystander's query latency is measured without and with the flood;
then the RSS this process keeps after oversized uploads that are refused.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import orjson
import psutil

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.hubspot.webhooks import signature_v3
from connectors.kit.oauth import OAuthApp
from gateway.settings import Settings
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from sync.tenancy.platforms import set_provider_app
from tests.benchmarks.common import fresh_postgres
from tests.support import connect_hubspot, fast_kit, gateway, new_tenant, sandbox_egress

PLATFORMS = 50
ATTACKERS = 8
FLOOD_SECONDS = 10.0
QUERIES = 200
OVERSIZED = 8
OVERSIZED_BYTES = 100 * 1024 * 1024
QUERY = "query { contacts(first: 5) { edges { node { id } } } }"


def forged_body(portal: int, size: int) -> bytes:
    event = {"portalId": portal, "subscriptionType": "contact.propertyChange", "objectId": 1, "padding": ""}
    event["padding"] = "x" * (size - len(orjson.dumps([event])))
    return orjson.dumps([event])


def _attack(url: str, body: bytes, until: float, sent: Any) -> None:
    """In the attacker process: post forged deliveries until `until` (wall clock)."""

    def one_thread() -> None:
        with httpx2.Client(timeout=60) as client:
            while time.time() < until:
                stamp = str(int(time.time() * 1000))
                headers = {
                    "Content-Type": "application/json",
                    "X-HubSpot-Signature-v3": signature_v3("garbage", "POST", url, body, stamp),
                    "X-HubSpot-Request-Timestamp": stamp,
                }
                if client.post(url, content=body, headers=headers).status_code == 401:
                    with sent.get_lock():
                        sent.value += 1

    with ThreadPoolExecutor(ATTACKERS) as pool:
        for _ in range(ATTACKERS):
            pool.submit(one_thread)


def _until_refusing(sent: Any, until: float) -> None:
    """Block until the attacker's first forged delivery was refused (the flood is on)."""
    while sent.value == 0 and time.time() < until:
        time.sleep(0.05)


async def _latencies(client: httpx2.AsyncClient, url: str, api_key: str) -> dict[str, float]:
    taken: list[float] = []
    for _ in range(QUERIES):
        began = time.perf_counter()
        answer = await client.post(
            f"{url}/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {api_key}"}
        )
        assert answer.status_code == 200, answer.text
        taken.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(0.02)  # within the key's request rate
    ordered = sorted(taken)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def _oversized(client: httpx2.AsyncClient, url: str) -> float:
    """MB of RSS this process keeps after OVERSIZED chunked uploads of OVERSIZED_BYTES, each refused."""

    async def chunks() -> Any:
        piece = b" " * (64 * 1024)
        for _ in range(OVERSIZED_BYTES // len(piece)):
            yield piece

    gc.collect()
    before = psutil.Process().memory_info().rss
    for _ in range(OVERSIZED):
        try:
            answer = await client.post(url, content=chunks())
            assert answer.status_code == 413, answer.status_code
        except httpx2.TransportError:
            pass  # the server answered 413 and closed while the body was still being written
    gc.collect()
    return round((psutil.Process().memory_info().rss - before) / 1024 / 1024, 1)


async def run_webhook_flood() -> dict[str, Any]:
    secret = generate_secret_key()
    sandbox = HubSpotSandbox(seed=5)
    limit = Settings().webhook_max_bytes
    async with fresh_postgres("xkit_bench_webhook_flood") as database_url:
        engine = create_engine(database_url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(secret)))
        owner, bystander = await new_tenant(store, "owner"), await new_tenant(store, "bystander")
        await connect_hubspot(store, owner, sandbox, "http://127.0.0.1:9")
        for n in range(PLATFORMS - 1):
            other = await new_tenant(store, f"platform-{n}")
            await set_provider_app(store, other.platform_id, "hubspot", OAuthApp(f"client-{n}", f"secret-{n}"))
        async with (
            fast_kit(sandbox_egress()) as kit,
            gateway(store, kit, secret) as api,
            httpx2.AsyncClient(timeout=60) as client,
        ):
            hook = f"{api.url}/webhooks/hubspot"
            quiet = await _latencies(client, api.url, bystander.api_key)
            sent = multiprocessing.get_context("spawn").Value("i", 0)
            body = forged_body(sandbox.hub_id, limit - 64)
            until = time.time() + FLOOD_SECONDS
            attacker = multiprocessing.get_context("spawn").Process(target=_attack, args=(hook, body, until, sent))
            attacker.start()
            await asyncio.to_thread(_until_refusing, sent, until)
            flooded = await _latencies(client, api.url, bystander.api_key)
            await asyncio.to_thread(attacker.join)
            kept_mb = await _oversized(client, hook)
        await engine.dispose()
    return {
        "platforms": PLATFORMS,
        "body_bytes": len(body),
        "forged_per_s": round(sent.value / FLOOD_SECONDS, 1),
        "bystander_quiet": quiet,
        "bystander_flooded": flooded,
        "rss_kept_after_oversized_mb": kept_mb,
    }
