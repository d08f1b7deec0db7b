"""The worker: claims due streams through leases in the database and runs them.

Any number of workers, in any number of processes, can share one PostgreSQL database: a stream is
claimed with a compare-and-set on its lease, so exactly one worker runs it at a time, and a worker
that dies loses its leases when they expire. Claims skip rows another worker is claiming instead of
waiting for it.

A worker shares its slots fairly: at most so many streams of one connection and of one platform run at
once, and free slots go first to the platforms that have the fewest streams running, so a slow provider
or a tenant with much due work cannot hold every slot.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update

from connectors.kit.http import HttpKit
from sync.cache import changes
from sync.cache.discovery import DiscoveryCache
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections, stream_states
from sync.tenancy.connections import ACTIVE, purge_expired_connect_links
from sync.tenancy.idempotency import purge_expired
from sync.webhooks import outbound
from sync.webhooks.intake import purge_receipts
from sync.webhooks.outbound import Outbound
from sync.worker.rederive import rederive_due
from sync.worker.runner import LEASE_TTL, RunLimits, StreamRun, new_worker_id

log = logging.getLogger(__name__)

# Expired idempotency keys, changes past retention and stale webhook receipts are swept this often.
PURGE_EVERY_SECONDS = 600.0


@dataclass(frozen=True)
class Fairness:
    """How many of one worker's slots one connection, and one platform, may hold at once."""

    max_running_per_connection: int = 2
    max_running_per_platform: int = 4


@dataclass(frozen=True)
class _Slot:
    connection_id: uuid.UUID
    platform_id: uuid.UUID


@dataclass(frozen=True)
class _Candidate:
    state_id: uuid.UUID
    connection_id: uuid.UUID
    platform_id: uuid.UUID
    next_run_at: datetime
    # Its place among the due streams of its platform, earliest first.
    in_platform: int


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
        fairness: Fairness | None = None,
        run_limits: RunLimits | None = None,
    ) -> None:
        self.store = store
        self.kit = kit
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.worker_id = worker_id or new_worker_id()
        self.fairness = fairness or Fairness()
        self.run_limits = run_limits or RunLimits()
        self._running: dict[asyncio.Task[None], _Slot] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self.discoveries = DiscoveryCache()
        self._rederive: asyncio.Task[None] | None = None
        self.change_retention = change_retention
        self._next_purge = 0.0
        # Outbound webhooks: enqueued and sent from this loop, attempts running beside it.
        self.outbound = Outbound(store, webhooks or outbound.Tunables(), wake=self.wake, egress=kit.egress)

    def _start_rederive(self) -> None:
        """Re-derive connections whose field mappings changed, beside the stream runs (one pass at a time)."""
        if self._rederive is None or self._rederive.done():
            self._rederive = asyncio.create_task(self._rederive_due())

    async def _rederive_due(self) -> None:
        try:
            await rederive_due(self.store, self.discoveries)
        except Exception:  # the connection stays due and is tried again at the next poll
            log.exception("re-deriving field mappings failed")

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
                    await purge_expired_connect_links(self.store)
            except Exception:
                log.exception("worker poll failed")
            self._start_rederive()
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
            run = StreamRun(self.store, self.kit, self.worker_id, connection, state, self.discoveries, self.run_limits)
            task = asyncio.create_task(run.execute())
            self._running[task] = _Slot(connection.id, connection.platform_id)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
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
        """Lease up to `limit` due streams, fairly (see the module's docstring); each with its connection."""
        now = utcnow()
        lease_free = or_(stream_states.c.lease_expires_at.is_(None), stream_states.c.lease_expires_at < now)
        chosen = self._fair_share(await self._candidates(now, lease_free, limit), limit)
        if not chosen:
            return []
        async with self.store.engine.begin() as conn:
            # Rows another worker is claiming right now are skipped, not waited for (PostgreSQL; SQLite has
            # one writer at a time and no row locks). The lease condition is checked again on each row.
            claimable = (
                select(stream_states.c.id)
                .where(stream_states.c.id.in_([c.state_id for c in chosen]), lease_free)
                .with_for_update(skip_locked=True)
            )
            leased = (
                await conn.execute(
                    update(stream_states)
                    .where(stream_states.c.id.in_(claimable), lease_free)
                    .values(lease_owner=self.worker_id, lease_expires_at=now + LEASE_TTL)
                    .returning(*stream_states.c)
                )
            ).all()
            if not leased:
                return []
            owners = {row.connection_id for row in leased}
            by_id = {row.id: row for row in await conn.execute(select(connections).where(connections.c.id.in_(owners)))}
        states = {row.id: row for row in leased}
        return [
            (by_id[states[c.state_id].connection_id], states[c.state_id])
            for c in chosen
            if c.state_id in states and states[c.state_id].connection_id in by_id
        ]

    async def _candidates(self, now: datetime, lease_free: ColumnElement[bool], limit: int) -> list[_Candidate]:
        """Due streams in turns: every platform's earliest first, then every platform's second, and so on,
        leaving out what the caps would refuse anyway. Enough of them that `limit` remain after the ones
        whose connection or platform already runs its share here are passed over."""
        fairness = self.fairness
        due = (
            select(
                stream_states.c.id,
                stream_states.c.connection_id,
                connections.c.platform_id,
                stream_states.c.next_run_at,
                func.row_number()
                .over(
                    partition_by=stream_states.c.connection_id,
                    order_by=(stream_states.c.next_run_at, stream_states.c.id),
                )
                .label("in_connection"),
            )
            .join(connections, connections.c.id == stream_states.c.connection_id)
            .where(connections.c.status == ACTIVE, stream_states.c.next_run_at <= now, lease_free)
            .subquery()
        )
        # Ranked in its platform among the streams its connection's cap lets through.
        within_connection_cap = (
            select(
                due.c.id,
                due.c.connection_id,
                due.c.platform_id,
                due.c.next_run_at,
                func.row_number()
                .over(partition_by=due.c.platform_id, order_by=(due.c.next_run_at, due.c.id))
                .label("in_platform"),
            )
            .where(due.c.in_connection <= fairness.max_running_per_connection)
            .subquery()
        )
        ranked = within_connection_cap.c
        passed_over_at_most = len(self._running) * fairness.max_running_per_platform
        async with self.store.reader.connect() as conn:
            rows = await conn.execute(
                select(ranked.id, ranked.connection_id, ranked.platform_id, ranked.next_run_at, ranked.in_platform)
                .where(ranked.in_platform <= fairness.max_running_per_platform)
                .order_by(ranked.in_platform, ranked.next_run_at, ranked.id)
                .limit(limit + passed_over_at_most)
            )
            return [_Candidate(*row) for row in rows]

    def _fair_share(self, candidates: list[_Candidate], limit: int) -> list[_Candidate]:
        """The candidates this worker starts: least-running platform first, within both caps."""
        by_connection = Counter(slot.connection_id for slot in self._running.values())
        by_platform = Counter(slot.platform_id for slot in self._running.values())
        candidates = sorted(candidates, key=lambda c: (by_platform[c.platform_id] + c.in_platform, c.next_run_at))
        chosen: list[_Candidate] = []
        for candidate in candidates:
            if len(chosen) == limit:
                break
            if (
                by_connection[candidate.connection_id] >= self.fairness.max_running_per_connection
                or by_platform[candidate.platform_id] >= self.fairness.max_running_per_platform
            ):
                continue
            by_connection[candidate.connection_id] += 1
            by_platform[candidate.platform_id] += 1
            chosen.append(candidate)
        return chosen

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._rederive is not None:  # a batch cut short rolls back; the pass resumes at the next start
            self._rederive.cancel()
            await asyncio.gather(self._rederive, return_exceptions=True)
        await self.outbound.aclose()


async def release_leases(store: Store, worker_id: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(stream_states)
            .where(stream_states.c.lease_owner == worker_id)
            .values(lease_owner=None, lease_expires_at=None)
        )


__all__ = ["Worker", "release_leases"]
