"""Hostile provider: how long another tenant's HubSpot sync takes while three connections trickle.

Finding 5 of issue 10: three connections to a provider sending a byte every 5 s stopped every other
tenant's sync. Here the attacker's provider trickles on every stream of three connections (18 streams), with
the production settings (deadline, worker concurrency and fairness caps), on PostgreSQL; the victim is a
HubSpot sandbox connection of another tenant. Reported: the victim's full sync alone and under the attack,
and how many of the attacker's answers were open at once (its share of the worker's slots).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from gateway.settings import Settings
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from sync.storage.tables import stream_states
from sync.worker.runner import RunLimits
from sync.worker.scheduler import Fairness, Worker
from tests.benchmarks.common import fresh_postgres
from tests.support import connect_hubspot, new_tenant, sandbox_egress

TRICKLE_EVERY_SECONDS = 5.0
VICTIM_SIZE = SandboxSize(contacts=2000, companies=200, deals=300, owners=8, notes=400, tasks=300)


class Trickler:
    """A HubSpot-shaped provider whose every list answer sends a byte every few seconds and never ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.most_open = 0
        self.answers = 0

    def app(self) -> Starlette:
        async def properties(request: Request) -> Response:
            return JSONResponse({"results": []})

        async def listing(request: Request) -> Response:
            return StreamingResponse(self._trickle(), media_type="application/json")

        return Starlette(
            routes=[
                Route("/crm/v3/properties/{object_type}", properties),
                Route("/crm/v3/objects/{object_type}", listing),
                Route("/crm/v3/owners", listing),
            ]
        )

    async def _trickle(self) -> AsyncIterator[bytes]:
        with self.lock:
            self.answers += 1
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        try:
            yield b'{"results": ['
            while True:
                await asyncio.sleep(TRICKLE_EVERY_SECONDS)
                yield b" "
        finally:
            with self.lock:
                self.open -= 1


async def _synced(store: Store, connection_id: uuid.UUID) -> bool:
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(stream_states.c.last_success_at).where(stream_states.c.connection_id == connection_id)
            )
        ).all()
    return bool(rows) and all(row.last_success_at is not None for row in rows)


async def _victim_sync_seconds(attacked: bool, trickler: Trickler, trickler_url: str) -> float:
    settings = Settings()
    sandbox = HubSpotSandbox(seed=11, size=VICTIM_SIZE)
    sandbox.faults.rate_limit_enabled = False
    async with fresh_postgres("xkit_bench_hostile") as url:
        engine = create_engine(url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(generate_secret_key())))
        kit = HttpKit(
            egress=sandbox_egress(),
            timeout=settings.http_timeout_seconds,
            request_deadline=settings.provider_request_deadline_seconds,
            max_response_bytes=settings.provider_response_max_bytes,
            max_record_bytes=settings.max_record_bytes,
        )
        worker = Worker(
            store,
            kit,
            concurrency=settings.worker_concurrency,
            fairness=Fairness(settings.worker_max_running_per_connection, settings.worker_max_running_per_platform),
            run_limits=RunLimits(settings.max_pages_per_run),
        )
        with serve_in_thread(create_app(sandbox)) as sandbox_url:
            if attacked:
                attacker = await new_tenant(store, "attacker")
                for user in ("a", "b", "c"):
                    await connect_hubspot(store, attacker, sandbox, trickler_url, external_user_id=user)
            victim = await new_tenant(store, "victim")
            victim_connection = await connect_hubspot(store, victim, sandbox, sandbox_url)
            running = asyncio.create_task(worker.run_forever())
            started = time.perf_counter()
            try:
                while True:
                    if await _synced(store, victim_connection):
                        return time.perf_counter() - started
                    await asyncio.sleep(0.02)  # the victim's progress is in the database only
            finally:
                await worker.stop()
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
                await kit.aclose()
                await engine.dispose()


async def run_hostile_provider() -> dict[str, Any]:
    trickler = Trickler()
    with serve_in_thread(trickler.app()) as trickler_url:
        alone = await _victim_sync_seconds(False, trickler, trickler_url)
        attacked = await _victim_sync_seconds(True, trickler, trickler_url)
    settings = Settings()
    return {
        "victim_records": VICTIM_SIZE.contacts
        + VICTIM_SIZE.companies
        + VICTIM_SIZE.deals
        + VICTIM_SIZE.owners
        + VICTIM_SIZE.notes
        + VICTIM_SIZE.tasks,
        "victim_sync_alone_seconds": round(alone, 2),
        "victim_sync_under_attack_seconds": round(attacked, 2),
        "attacker_answers_open_at_most": trickler.most_open,
        "attacker_answers": trickler.answers,
        "worker_slots": settings.worker_concurrency,
        "per_platform_cap": settings.worker_max_running_per_platform,
    }
