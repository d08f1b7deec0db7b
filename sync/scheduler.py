"""The worker: claims due streams through leases in the database and runs them.

Any number of workers, in any number of processes, can share one PostgreSQL database: a stream is
claimed with a compare-and-set on its lease, so exactly one worker runs it at a time, and a worker
that dies loses its leases when they expire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from connectors.kit.http import HttpKit
from sync import changes, outbound
from sync.connections import ACTIVE
from sync.idempotency import purge_expired
from sync.intake import purge_receipts
from sync.outbound import Outbound
from sync.runner import LEASE_TTL, DiscoveryCache, StreamRun, new_worker_id
from sync.store import Store, utcnow
from sync.tables import connections, stream_states

log = logging.getLogger(__name__)

# Expired idempotency keys, changes past retention and stale webhook receipts are swept this often.
PURGE_EVERY_SECONDS = 600.0


class Worker:
    def __init__(
        self,
        store: Store,
        kit: HttpKit,
        *,
        concurrency: int = 8,
        poll_interval: float = 1.0,
        worker_id: str | None = None,
        change_retention: timedelta = changes.DEFAULT_RETENTION,
        webhooks: outbound.Tunables | None = None,
    ) -> None:
        self.store = store
        self.kit = kit
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.worker_id = worker_id or new_worker_id()
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self.discoveries = DiscoveryCache()
        self.change_retention = change_retention
        self._next_purge = 0.0
        # Outbound webhooks: enqueued and sent from this loop, attempts running beside it.
        self.outbound = Outbound(store, webhooks or outbound.Tunables(), wake=self.wake)

    def wake(self) -> None:
        """Look for due work now rather than at the next poll (after syncNow, a new connection...)."""
        self._wake.set()

    async def run_forever(self) -> None:
        while not self._stopping:
            # Cleared before the work, so a wake-up that comes during it is not lost.
            self._wake.clear()
            appended = self.store.changes_appended.ticket()
            try:
                await self.run_due()
                if time.monotonic() >= self._next_purge:
                    self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                    await purge_expired(self.store)
                    await changes.prune(self.store, self.change_retention)
                    await outbound.purge(self.store)
                    await purge_receipts(self.store)
            except Exception:
                log.exception("worker poll failed")
            try:
                await self.outbound.run()  # cheap when nothing is due; never waits for a receiver
            except Exception:
                log.exception("outbound webhooks failed")
            await self._idle(appended)

    async def _idle(self, appended: asyncio.Event) -> None:
        """Until woken, a change is appended (when there are webhooks to send it to) or the poll interval passes."""
        waits = [asyncio.ensure_future(self._wake.wait())]
        if self.outbound.has_destinations:
            waits.append(asyncio.ensure_future(appended.wait()))
        try:
            await asyncio.wait(waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def run_due(self) -> int:
        """Claim and start every due stream this worker has room for; returns how many it started."""
        room = self.concurrency - len(self._running)
        if room <= 0:
            return 0
        claimed = await self.claim(room)
        for connection, state in claimed:
            task = asyncio.create_task(
                StreamRun(self.store, self.kit, self.worker_id, connection, state, self.discoveries).execute()
            )
            self._running.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        # A finished stream frees a slot; look again at once.
        self._wake.set()

    async def drain(self) -> None:
        """Run until nothing is due and nothing is running (tests and `xkit dev`'s first backfill)."""
        while True:
            await self.run_due()
            if not self._running:
                return
            await asyncio.wait(set(self._running), return_when=asyncio.FIRST_COMPLETED)

    async def claim(self, limit: int) -> list[tuple[Any, Any]]:
        now = utcnow()
        lease_free = or_(stream_states.c.lease_expires_at.is_(None), stream_states.c.lease_expires_at < now)
        async with self.store.reader.connect() as conn:
            candidates = (
                await conn.execute(
                    select(stream_states.c.id)
                    .join(connections, connections.c.id == stream_states.c.connection_id)
                    .where(connections.c.status == ACTIVE, stream_states.c.next_run_at <= now, lease_free)
                    .order_by(stream_states.c.next_run_at)
                    .limit(limit)
                )
            ).all()
        claimed: list[tuple[Any, Any]] = []
        for (state_id,) in candidates:
            async with self.store.engine.begin() as conn:
                result = await conn.execute(
                    update(stream_states)
                    .where(stream_states.c.id == state_id, lease_free)
                    .values(lease_owner=self.worker_id, lease_expires_at=now + LEASE_TTL)
                )
                if result.rowcount != 1:
                    continue  # another worker was faster
                state = (await conn.execute(select(stream_states).where(stream_states.c.id == state_id))).one()
                connection = (
                    await conn.execute(select(connections).where(connections.c.id == state.connection_id))
                ).one()
            claimed.append((connection, state))
        return claimed

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self.outbound.aclose()


async def release_leases(store: Store, worker_id: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(stream_states)
            .where(stream_states.c.lease_owner == worker_id)
            .values(lease_owner=None, lease_expires_at=None)
        )


__all__ = ["Worker", "release_leases"]
