"""One run of one stream of one connection: backfill or incremental, page by page, crash-safe."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors import get_connector
from connectors.kit.declaration import Stream, StreamContext
from connectors.kit.errors import PageBudgetSpent, RateLimited, ReauthRequired, XkitError
from connectors.kit.http import HttpKit
from connectors.kit.page_budget import PageBudget
from connectors.kit.records import Page
from sync.cache.discovery import DiscoveryCache
from sync.cache.field_catalog import refresh_after_run
from sync.cache.records import StaleOverlay, StreamTarget, mark_deleted, upsert_records
from sync.storage.store import Store, utcnow
from sync.storage.tables import stream_states, sync_runs
from sync.tenancy.connections import BACKFILL, INCREMENTAL, NEEDS_REAUTH, connection_access, set_status

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(seconds=90)
# Pages fetched ahead of the one being written: the provider and the database work at the same time.
PREFETCH_PAGES = 6
PREFETCH_RECORDS = 1000
DELETION_SCAN_EVERY = timedelta(seconds=60)
RUN_HISTORY = timedelta(days=7)
MAX_ERROR_BACKOFF = timedelta(minutes=15)
TRUNCATED_IDS_SHOWN = 10


class LeaseLost(Exception):
    """Another worker owns this stream now (our lease ran out); stop without writing."""


@dataclass(frozen=True)
class RunLimits:
    """How much one run may read from a provider (the size of each answer and record is the kit's to bound)."""

    max_pages: int = 10_000


@dataclass
class RunTally:
    pages: int = 0
    records: int = 0
    changed: int = 0
    truncated: list[str] = field(default_factory=list)

    def note(self) -> str | None:
        """What a run that succeeded should still tell: records it could only store truncated."""
        if not self.truncated:
            return None
        shown = ", ".join(self.truncated[:TRUNCATED_IDS_SHOWN])
        more = (
            f" and {len(self.truncated) - TRUNCATED_IDS_SHOWN} more"
            if len(self.truncated) > TRUNCATED_IDS_SHOWN
            else ""
        )
        count = len(self.truncated)
        return f"{count} records over the size limit stored truncated (raw replaced by a marker): {shown}{more}"


async def prefetch(pages: AsyncIterator[Page]) -> AsyncIterator[list[Page]]:
    """Fetch ahead while writing, and hand over every page fetched so far as one batch.

    A slow database thus gets fewer, bigger commits; a slow provider gets each page committed as it
    arrives. Either way a batch commits with the cursor after its last page. Fetching ahead stops at
    PREFETCH_PAGES pages or PREFETCH_RECORDS records, whichever comes first, so memory stays flat whether
    a provider pages by 100 or by 2,000.
    """
    queue: deque[Page] = deque()
    queued_records = 0
    finished = False
    failure: Exception | None = None
    changed = asyncio.Condition()

    def room() -> bool:
        return not queue or (len(queue) < PREFETCH_PAGES and queued_records < PREFETCH_RECORDS)

    async def produce() -> None:
        nonlocal queued_records, finished, failure
        try:
            async for page in pages:
                async with changed:
                    await changed.wait_for(room)
                    queue.append(page)
                    queued_records += len(page.records)
                    changed.notify_all()
        except Exception as exc:
            failure = exc
        async with changed:
            finished = True
            changed.notify_all()

    task = asyncio.create_task(produce())
    try:
        while True:
            async with changed:
                await changed.wait_for(lambda: bool(queue) or finished)
                batch = list(queue)
                queue.clear()
                queued_records = 0
                changed.notify_all()
            if batch:
                yield batch
            elif finished:
                break
        if failure is not None:
            raise failure
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class StreamRun:
    def __init__(
        self,
        store: Store,
        kit: HttpKit,
        worker_id: str,
        connection: Row[Any],
        state: Row[Any],
        discoveries: DiscoveryCache | None = None,
        limits: RunLimits | None = None,
    ) -> None:
        self.store = store
        self.limits = limits or RunLimits()
        self.kit = kit
        self.discoveries = discoveries or DiscoveryCache()
        self.worker_id = worker_id
        self.connection = connection
        self.state = state
        self.tally = RunTally()
        # How long the provider asked us to stay away, when a run ends rate limited.
        self.retry_after: float | None = None
        # A run that read its most pages (a large backfill) goes on after the usual interval: the longer
        # error backoff is for what went wrong.
        self.budget_spent = False
        self.run_id: int | None = None
        connector = get_connector(connection.provider)
        self.stream: Stream = connector.stream(state.stream)
        self.min_interval_seconds = connector.min_sync_interval_seconds
        self.target = StreamTarget.of(connection, self.stream, max_record_bytes=kit.max_record_bytes)

    async def execute(self) -> None:
        try:
            run_id = self.run_id = await self._start_run()
        except SQLAlchemyError:  # e.g. the connection was deleted after the claim
            log.info("%s/%s: could not start a run", self.connection.id, self.stream.name, exc_info=True)
            return
        error = await self._run()
        try:
            await self._finish(run_id, error)
        except SQLAlchemyError:
            log.warning("%s/%s: could not record the end of run %s", self.connection.id, self.stream.name, run_id)

    async def _run(self) -> str | None:
        """Run the stream; the error, described for people, or None."""
        error: str | None = None
        try:
            access = await connection_access(self.store, self.connection)
            session = self.kit.session(access)
            ctx = await self.discoveries.context(session, self.stream, self.connection.id, store=self.store)
            ctx.page_budget = PageBudget(self.limits.max_pages)
            if ctx.overlay is not None:  # pages derived with these mappings are stored only while they hold
                self.target = replace(self.target, overlay_revision=ctx.overlay.revision)
            if self.state.phase == BACKFILL:
                await self._backfill(ctx)
            else:
                await self._incremental(ctx)
            # The mapping picker's field catalog follows the sync; failing to read it never fails the run.
            await refresh_after_run(self.store, ctx, self.connection)
        except StaleOverlay as exc:  # the next run reads with the new mappings
            error = str(exc)
            log.info("%s/%s: %s", self.connection.id, self.stream.name, error)
        except LeaseLost:
            error = "lease lost to another worker"
            log.warning("%s/%s: %s", self.connection.id, self.stream.name, error)
        except ReauthRequired as exc:
            error = exc.message
            await set_status(self.store, self.connection.id, NEEDS_REAUTH, exc.message)
        except RateLimited as exc:
            error = _describe(exc)
            self.retry_after = exc.retry_after
        except PageBudgetSpent as exc:
            error = _describe(exc)
            self.budget_spent = True
        except (XkitError, ValueError, KeyError, TypeError) as exc:
            error = _describe(exc)
        except Exception as exc:  # one broken stream must never stop the worker
            log.exception("%s/%s failed", self.connection.id, self.stream.name)
            error = _describe(exc)
        return error

    async def _backfill(self, ctx: StreamContext) -> None:
        started_at: datetime = self.state.backfill_started_at or utcnow()
        cursor = self.state.cursor or None
        async for batch in prefetch(self.stream.pagination.pages(ctx, cursor)):
            last = batch[-1]
            after: dict[str, Any]
            if last.cursor is None and self.stream.incremental is not None:
                after = {"phase": INCREMENTAL, "cursor": self.stream.incremental.initial_cursor(started_at)}
            elif last.cursor is None:
                after = {"phase": BACKFILL, "cursor": None, "backfill_started_at": None}
            else:
                after = {"cursor": last.cursor, "backfill_started_at": started_at}
            await self._commit(batch, after)

    async def _incremental(self, ctx: StreamContext) -> None:
        incremental = self.stream.incremental
        if incremental is None:  # a stream without change tracking is re-read in full every run
            await self._commit([], {"phase": BACKFILL, "cursor": None})
            return
        cursor = self.state.cursor or incremental.initial_cursor(utcnow())
        async for batch in prefetch(incremental.pages(ctx, cursor)):
            await self._commit(batch, {"cursor": batch[-1].cursor})
        checked = self.state.deletions_checked_at
        if self.stream.deletions is not None and (checked is None or utcnow() - checked >= DELETION_SCAN_EVERY):
            # Listing every deleted record costs requests; once a minute keeps deletions within the
            # two-minute freshness promise without spending the provider's quota every 15 seconds.
            scan_started = utcnow()
            async for batch in prefetch(self.stream.deletions.pages(ctx)):
                await self._commit(batch, {})
            await self._commit([], {"deletions_checked_at": scan_started})

    async def _commit(self, batch: list[Page], state_changes: dict[str, Any]) -> None:
        """The pages' records and the cursor after the last of them, in one transaction (invariant 1)."""
        now = utcnow()
        live = [record for page in batch for record in page.records if not record.deleted]
        tombstones = [record for page in batch for record in page.records if record.deleted]
        async with self.store.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # A page can always be fetched again, and its cursor commits with it, so a crash that
                # loses the last unflushed commits only repeats pages: no fsync wait per page.
                await conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            await self._renew_lease(conn, now, state_changes)
            upserted = await upsert_records(conn, self.target, live, now)
            self.tally.truncated += upserted.truncated
            changed = upserted.changed + await mark_deleted(conn, self.target, tombstones, now)
            self.tally.pages += len(batch)
            self.tally.records += len(live) + len(tombstones)
            self.tally.changed += changed
            if self.run_id is not None and batch:  # progress, for syncProgress subscribers
                await conn.execute(
                    update(sync_runs)
                    .where(sync_runs.c.id == self.run_id)
                    .values(pages=self.tally.pages, records=self.tally.records, changed=self.tally.changed)
                )
        if changed:
            self.store.changes_appended.notify()

    async def _renew_lease(self, conn: AsyncConnection, now: datetime, changes: dict[str, Any]) -> None:
        result = await conn.execute(
            update(stream_states)
            .where(stream_states.c.id == self.state.id, stream_states.c.lease_owner == self.worker_id)
            .values(lease_expires_at=now + LEASE_TTL, **changes)
        )
        if result.rowcount != 1:
            raise LeaseLost

    async def _start_run(self) -> int:
        async with self.store.engine.begin() as conn:
            result = await conn.execute(
                insert(sync_runs)
                .values(
                    platform_id=self.connection.platform_id,
                    connection_id=self.connection.id,
                    stream=self.stream.name,
                    phase=self.state.phase,
                    status="running",
                    started_at=utcnow(),
                    pages=0,
                    records=0,
                )
                .returning(sync_runs.c.id)
            )
            return int(result.scalar_one())

    async def _finish(self, run_id: int, error: str | None) -> None:
        now = utcnow()
        interval = timedelta(seconds=max(self.connection.sync_interval_seconds, self.min_interval_seconds))
        state_values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
        if error is None:
            state_values |= {"last_success_at": now, "last_error": None, "next_run_at": now + interval}
        else:
            backoff = max(min(MAX_ERROR_BACKOFF, interval * 4), timedelta(seconds=self.retry_after or 0))
            state_values |= {
                "last_error": error,
                "last_error_at": now,
                "next_run_at": now + (interval if self.budget_spent else backoff),
            }
        async with self.store.engine.begin() as conn:
            await conn.execute(
                update(stream_states)
                .where(stream_states.c.id == self.state.id, stream_states.c.lease_owner == self.worker_id)
                .values(**state_values)
            )
            await close_run(
                conn,
                run_id,
                now,
                stream=(self.connection.id, self.stream.name),
                counts=(self.tally.pages, self.tally.records, self.tally.changed),
                failed=error is not None,
                error=error or self.tally.note(),
            )


async def close_run(
    conn: AsyncConnection,
    run_id: int,
    now: datetime,
    *,
    stream: tuple[uuid.UUID, str],
    counts: tuple[int, int, int],
    failed: bool,
    error: str | None,
) -> None:
    """End a run (`counts`: pages or batches, records seen, records changed) and forget the stream's runs older
    than RUN_HISTORY: what a sync run and a re-derive pass both do when they finish."""
    connection_id, name = stream
    pages, seen, changed = counts
    await conn.execute(
        delete(sync_runs).where(
            sync_runs.c.connection_id == connection_id,
            sync_runs.c.stream == name,
            sync_runs.c.started_at < now - RUN_HISTORY,
        )
    )
    await conn.execute(
        update(sync_runs)
        .where(sync_runs.c.id == run_id)
        .values(
            status="failed" if failed else "succeeded",
            finished_at=now,
            pages=pages,
            records=seen,
            changed=changed,
            error=error,
        )
    )


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {message}"


def new_worker_id() -> str:
    return f"worker-{uuid.uuid4().hex[:12]}"
