"""Outbound webhooks: the changes a platform's destination asks for, POSTed to its URL and signed.

**Enqueue.** Each enabled destination keeps a cursor, the last change sequence number handed to its
deliveries. Enqueueing reads the change log after the cursor (with the destination's filters), inserts
one delivery per change and advances the cursor, in one transaction: a crash leaves either both or
neither. On PostgreSQL the destination row is locked `FOR UPDATE SKIP LOCKED`, so several workers
never enqueue the same changes twice (one takes the destination, the others pass it by); on SQLite the
transaction starts with a write, which serializes it. The log is gap-free (`sync/cache/changes.py`), so a
reader that advances its cursor to what it has seen never skips a change committed later.

**Deliver.** One record's events go out one at a time, in order, while other records go in parallel
(bounded). Only the head of each record's queue is scheduled: a delivery enqueued behind a pending one
of the same record and destination waits with no `next_attempt_at`, and is given one when the one
before it settles (checked again after each commit, so a settle and an enqueue racing each other
cannot strand it). A claim therefore only ever looks at deliveries that could be sent, however long a
record's backlog. A worker claims due deliveries by moving `next_attempt_at` a lease ahead and counting
the attempt; the attempt count is the claim's token, so the outcome of a claim whose lease ran out and
was taken over is discarded. A worker that dies mid-send leaves the delivery to be tried again when
the lease ends: at least once.

**Fairness.** Claims take rows `FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers never wait for each
other. A worker hands its free slots round-robin to the platforms with due deliveries, each capped at
`per_platform` attempts in flight, so a platform's slow receiver or burst of changes holds at most its
own slots; enqueueing gives each destination one batch per turn, so a huge backlog is not copied
before another platform's change. Unexpected failures are logged once, then counted, not logged per
delivery.

A 2xx answer delivers; anything else, a timeout or a connection error schedules the next attempt after
an exponential backoff with full jitter. A delivery gives up (`failed`) when its next attempt would come
later than `give_up_after` from its creation; a failed delivery no longer holds back the record's later
ones. Replaying a destination moves its cursor back: the changes are enqueued again as new deliveries
with the same event ids.

**Signature.** `X-Xkit-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` with the
timestamp sent in `X-Xkit-Timestamp` (unix seconds); README, "Webhooks to your API", shows how to check it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx2
import orjson
from sqlalchemy import Select, and_, delete, exists, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.kit.egress import EgressPolicy
from connectors.kit.models import COMMON_MODELS, graphql_name
from sync.cache import changes
from sync.cache.changes import ChangeFilter
from sync.storage.crypto import SecretKeyError
from sync.storage.ids import change_cursor, to_global_id
from sync.storage.store import Store, utcnow
from sync.storage.tables import changes as change_table
from sync.storage.tables import webhook_deliveries, webhook_destinations

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
EVENT_TYPE = "record.changed"
SECRET_PREFIX = "whsec_"
USER_AGENT = "xkit-webhooks/1"
# Settled deliveries are kept this long for the API, then swept by the workers.
DELIVERY_RETENTION = timedelta(days=30)


# Records looked up per statement when scheduling the next delivery of each (SQLite bounds bound parameters).
_RECORDS_PER_STATEMENT = 400


@dataclass(frozen=True)
class Tunables:
    """Timings of delivery (tests shrink them)."""

    backoff_base: float = 2.0  # seconds: the first retry comes within this, then the ceiling doubles
    backoff_cap: float = 3600.0  # the ceiling stops doubling here
    give_up_after: timedelta = timedelta(days=3)  # from a delivery's creation
    timeout: float = 10.0  # a whole attempt: connect, send, answer
    lease: float = 60.0  # seconds a claimed delivery is reserved for its worker; longer than an attempt
    concurrency: int = 16  # attempts in flight per worker
    per_platform: int = 4  # of those, at most this many for one platform
    batch: int = 500  # changes enqueued per transaction
    repair_every: float = 60.0  # seconds between sweeps for waiting deliveries a crash left without a head

    def __post_init__(self) -> None:
        if self.lease <= self.timeout:
            raise ValueError("the lease must outlast an attempt (lease > timeout)")
        if self.concurrency < 1 or self.per_platform < 1:
            raise ValueError("webhook concurrency and its per-platform share must be at least 1")


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def event_id(destination_id: uuid.UUID, seq: int) -> str:
    """Stable per destination and change: every attempt and replay of an event carries the same id."""
    return f"evt_{uuid.uuid5(destination_id, str(seq)).hex}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def backoff(attempts: int, tunables: Tunables, rng: Callable[[], float] = random.random) -> float:
    """Seconds before the next try after `attempts` failed ones: full jitter under a doubling ceiling."""
    ceiling = min(tunables.backoff_cap, tunables.backoff_base * 2.0 ** max(attempts - 1, 0))
    return rng() * ceiling


def _bound_to(destination_id: uuid.UUID) -> str:
    return f"webhook_destination:{destination_id}"


def _filter(destination: Any) -> ChangeFilter:
    return ChangeFilter(
        models=tuple(destination.models) if destination.models is not None else None,
        connection_ids=tuple(uuid.UUID(c) for c in destination.connection_ids)
        if destination.connection_ids is not None
        else None,
        external_user_ids=tuple(destination.external_user_ids) if destination.external_user_ids is not None else None,
    )


# ---- destinations ----------------------------------------------------------------------------------


def _by_id(destination_id: uuid.UUID) -> Select[tuple[Any, ...]]:
    return select(webhook_destinations).where(webhook_destinations.c.id == destination_id)


@dataclass(frozen=True)
class NewDestination:
    platform_id: uuid.UUID
    url: str
    secret: str
    cursor: int  # deliver the changes after this one
    models: list[str] | None = None
    connection_ids: list[uuid.UUID] | None = None
    external_user_ids: list[str] | None = None


async def create_destination(store: Store, new: NewDestination) -> Row[Any]:
    destination_id = uuid.uuid4()
    async with store.engine.begin() as conn:
        await conn.execute(
            insert(webhook_destinations).values(
                id=destination_id,
                platform_id=new.platform_id,
                url=new.url,
                secret_encrypted=store.vault.encrypt(new.secret.encode(), bound_to=_bound_to(destination_id)),
                models=new.models,
                connection_ids=[str(c) for c in new.connection_ids] if new.connection_ids is not None else None,
                external_user_ids=new.external_user_ids,
                enabled=True,
                cursor=new.cursor,
                created_at=utcnow(),
            )
        )
        row: Row[Any] = (await conn.execute(_by_id(destination_id))).one()
        return row


async def list_destinations(store: Store, platform_id: uuid.UUID) -> list[Row[Any]]:
    async with store.reader.connect() as conn:
        rows = await conn.execute(
            select(webhook_destinations)
            .where(webhook_destinations.c.platform_id == platform_id)
            .order_by(webhook_destinations.c.created_at, webhook_destinations.c.id)
        )
        return list(rows.all())


async def get_destination(store: Store, platform_id: uuid.UUID, destination_id: uuid.UUID) -> Row[Any] | None:
    async with store.reader.connect() as conn:
        return (
            await conn.execute(
                select(webhook_destinations).where(
                    webhook_destinations.c.id == destination_id, webhook_destinations.c.platform_id == platform_id
                )
            )
        ).first()


async def delete_destination(store: Store, platform_id: uuid.UUID, destination_id: uuid.UUID) -> bool:
    """Delete a destination and its deliveries; an attempt in flight finishes and is forgotten."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            delete(webhook_destinations).where(
                webhook_destinations.c.id == destination_id, webhook_destinations.c.platform_id == platform_id
            )
        )
        if result.rowcount:
            # Explicitly as well as by cascade: SQLite cascades only with its foreign-keys pragma on.
            await conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.destination_id == destination_id))
    return bool(result.rowcount)


async def replay_destination(
    store: Store, platform_id: uuid.UUID, destination_id: uuid.UUID, after: int
) -> Row[Any] | None:
    """Send every change after `after` again (new deliveries, same event ids), then carry on live."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(webhook_destinations)
            .where(webhook_destinations.c.id == destination_id, webhook_destinations.c.platform_id == platform_id)
            .values(cursor=after)
        )
        if not result.rowcount:
            return None
        row: Row[Any] = (await conn.execute(_by_id(destination_id))).one()
        return row


async def list_deliveries(
    store: Store, platform_id: uuid.UUID, destination_id: uuid.UUID, first: int, status: str | None
) -> list[Row[Any]]:
    """A destination's deliveries, newest first."""
    stmt = select(webhook_deliveries).where(
        webhook_deliveries.c.destination_id == destination_id, webhook_deliveries.c.platform_id == platform_id
    )
    if status is not None:
        stmt = stmt.where(webhook_deliveries.c.status == status)
    async with store.reader.connect() as conn:
        rows = await conn.execute(stmt.order_by(webhook_deliveries.c.id.desc()).limit(first))
        return list(rows.all())


async def purge(store: Store, retention: timedelta = DELIVERY_RETENTION) -> int:
    """Forget settled deliveries older than the retention (pending ones stay, whatever their age)."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            delete(webhook_deliveries).where(
                webhook_deliveries.c.status != PENDING, webhook_deliveries.c.created_at < utcnow() - retention
            )
        )
    return int(result.rowcount or 0)


# ---- the event ---------------------------------------------------------------------------------------


def _data(model_name: str | None, common: dict[str, Any] | None) -> dict[str, Any] | None:
    """The common fields under their GraphQL names; relations as remote ids (`companyRemoteId`)."""
    if common is None:
        return None
    model = COMMON_MODELS.get(model_name or "")
    return {graphql_name(model.input_name(k) if model else k): v for k, v in common.items()}


def event_body(event: str, change: Any, record: Any) -> bytes:
    """The JSON body of one event: the change (a row of CHANGE_COLUMNS) and its record as cached now."""
    payload = {
        "id": event,
        "type": EVENT_TYPE,
        "cursor": change_cursor(change.seq),
        "op": change.op,
        "object": change.model or change.stream,
        "connectionId": to_global_id("Connection", change.connection_id),
        "remoteId": change.remote_id,
        "changedFields": [graphql_name(name) for name in change.changed_fields or []],
        "occurredAt": change.occurred_at,
        "data": _data(change.model, record.common) if record is not None else None,
        # Stored as JSON text: embedded as it is, never parsed.
        "raw": orjson.Fragment(record.raw) if record is not None else None,
    }
    return orjson.dumps(payload)


# ---- the delivery engine -------------------------------------------------------------------------------


class BoundedLog:
    """Logs an unexpected failure with its traceback once per `every` seconds; those in between are counted
    and reported with the next one, so a storm of failing deliveries writes a line a minute, not a line each."""

    def __init__(self, logger: logging.Logger, every: float = 60.0) -> None:
        self.logger = logger
        self.every = every
        self._next = 0.0
        self._quiet = 0

    def exception(self, message: str) -> None:
        now = time.monotonic()
        if now < self._next:
            self._quiet += 1
            return
        suffix = f" ({self._quiet} more since the last report)" if self._quiet else ""
        self.logger.exception("%s%s", message, suffix)
        self._next, self._quiet = now + self.every, 0


@dataclass
class Attempt:
    """A claimed delivery, ready to send."""

    delivery_id: int
    attempts: int  # the claim's token
    created_at: datetime
    event_id: str
    platform_id: uuid.UUID
    destination_id: uuid.UUID
    record_key: str
    url: str | None = None
    secret: str | None = None
    body: bytes | None = None
    error: str | None = None  # set when it cannot be sent now
    final: bool = False  # and never will be


@dataclass
class Result:
    delivered: bool
    status_code: int | None = None
    error: str | None = None


@dataclass
class Outbound:
    """Enqueues and delivers every destination's events. One per worker; tests drive it step by step."""

    store: Store
    tunables: Tunables = field(default_factory=Tunables)
    clock: Callable[[], datetime] = utcnow
    rng: Callable[[], float] = random.random
    # Called when an attempt started by `run` finishes (the worker looks for due work again).
    wake: Callable[[], None] | None = None
    # Whether any destination was enabled at the last enqueue (the worker then wakes on every append).
    has_destinations: bool = field(default=False, init=False)
    # Whether destinations were still behind when the last enqueue stopped (the worker comes back at once).
    behind: bool = field(default=False, init=False)
    # Every delivery connects through it: a destination's URL is anyone's choice and its DNS may change.
    egress: EgressPolicy = field(kw_only=True)
    _client: httpx2.AsyncClient | None = field(default=None, init=False, repr=False)
    _inflight: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    # Outcomes being written: never cancelled midway (a transaction cut short by a cancellation can leave
    # its pooled connection unreturned); `aclose` waits for them.
    _settling: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    # Attempts in flight per platform (the per-platform cap), and where the round-robin starts next.
    _busy: Counter[uuid.UUID] = field(default_factory=Counter, init=False, repr=False)
    _turn: int = field(default=0, init=False, repr=False)
    _next_repair: float = field(default=0.0, init=False, repr=False)
    _trouble: BoundedLog = field(default_factory=lambda: BoundedLog(log), init=False, repr=False)

    @property
    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = self.egress.client(
                timeout=self.tunables.timeout,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                limits=httpx2.Limits(max_connections=self.tunables.concurrency * 2),
            )
        return self._client

    async def __aenter__(self) -> Outbound:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        await asyncio.gather(*self._settling, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- what the worker and the tests call

    async def run(self) -> None:
        """One turn of the worker loop: enqueue, then start due attempts in the free slots without waiting
        for them (a slow receiver never holds up the worker). Never raises for a destination's sake."""
        try:
            # One batch per destination per turn: a destination far behind does not hold up the sending.
            await self.enqueue(passes=1)
            if time.monotonic() >= self._next_repair:
                self._next_repair = time.monotonic() + self.tunables.repair_every
                await self.promote_waiting()
        except Exception:
            self._trouble.exception("enqueueing webhook deliveries failed")
        room = self.tunables.concurrency - len(self._inflight)
        if room > 0:
            for attempt in await self.prepare(await self.claim(room, busy=self._busy)):
                self._busy[attempt.platform_id] += 1
                task = asyncio.create_task(self._attempt(attempt))
                self._inflight.add(task)
                task.add_done_callback(functools.partial(self._done, attempt.platform_id))
        if self.behind and self.wake is not None:
            self.wake()

    def _done(self, platform_id: uuid.UUID, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._busy[platform_id] -= 1
        if self._busy[platform_id] <= 0:
            del self._busy[platform_id]
        if self.wake is not None:
            self.wake()  # a freed slot, and perhaps the record's next event is due now

    async def step(self) -> int:
        """Enqueue, then send everything due now and wait for it; returns the attempts made."""
        await self.enqueue()
        return await self.deliver_due()

    async def deliver_due(self, rounds: int = 1000) -> int:
        """Claim and send due deliveries until none is due (at most `rounds` claims); returns the attempts."""
        made = 0
        for _ in range(rounds):
            claimed = await self.claim(self.tunables.concurrency)
            if not claimed:
                break
            await asyncio.gather(*(self._attempt(a) for a in await self.prepare(claimed)))
            made += len(claimed)
        return made

    # -- enqueue

    async def enqueue(self, *, passes: int | None = None) -> int:
        """Hand the new changes of every enabled destination to deliveries, one batch per destination per
        pass, until none is behind or `passes` are made (then `behind` says so); returns how many were
        created."""
        async with self.store.reader.connect() as conn:
            latest = await changes.latest(conn)
            behind = (
                await conn.execute(
                    select(webhook_destinations.c.id).where(
                        webhook_destinations.c.enabled.is_(True), webhook_destinations.c.cursor < latest
                    )
                )
            ).scalars()
            destination_ids = list(behind)
            self.has_destinations = bool(destination_ids) or bool(
                (await conn.execute(select(exists().where(webhook_destinations.c.enabled.is_(True))))).scalar()
            )
        created, made = 0, 0
        while destination_ids and (passes is None or made < passes):
            made += 1
            full: list[uuid.UUID] = []
            for destination_id in destination_ids:
                try:
                    count, more = await self._enqueue_batch(destination_id)
                except Exception:
                    self._trouble.exception("enqueueing deliveries for a webhook destination failed")
                    continue
                created += count
                if more:
                    full.append(destination_id)
            destination_ids = full
        self.behind = bool(destination_ids)
        return created

    async def _enqueue_batch(self, destination_id: uuid.UUID) -> tuple[int, bool]:
        """One batch of a destination's changes; returns how many, and whether more may follow."""
        waiting_behind: set[str] = set()
        async with self.store.engine.begin() as conn:
            destination = await self._lock(conn, destination_id)
            if destination is None:
                return 0, False  # gone, disabled, or another worker has it
            # Everything up to `latest` is committed (the log is a gap-free prefix), so the read below
            # sees all of it: with less than a batch found, the cursor may skip to there.
            latest = await changes.latest(conn)
            rows = await changes.read(
                conn, destination.platform_id, destination.cursor, self.tunables.batch, _filter(destination)
            )
            if rows:
                waiting_behind = await self._insert(conn, destination, rows)
            full = len(rows) == self.tunables.batch
            cursor = rows[-1].seq if full else max(latest, destination.cursor, rows[-1].seq if rows else 0)
            if cursor != destination.cursor:
                await conn.execute(
                    update(webhook_destinations)
                    .where(webhook_destinations.c.id == destination_id)
                    .values(cursor=cursor)
                )
        if waiting_behind:
            # After the commit: the delivery they wait for may have settled meanwhile (see the docstring).
            await self.promote_waiting(destination_id, waiting_behind)
        return len(rows), full

    @staticmethod
    async def _lock(conn: AsyncConnection, destination_id: uuid.UUID) -> Any:
        mine = and_(webhook_destinations.c.id == destination_id, webhook_destinations.c.enabled.is_(True))
        stmt = select(webhook_destinations).where(mine)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        else:
            # Write first: SQLite then holds its one write lock for the whole transaction.
            await conn.execute(update(webhook_destinations).where(mine).values(cursor=webhook_destinations.c.cursor))
        return (await conn.execute(stmt)).first()

    async def _insert(self, conn: AsyncConnection, destination: Any, rows: Sequence[Any]) -> set[str]:
        """Insert the deliveries of `rows`: the first of each record is scheduled unless one of that record
        is already pending, the others wait behind it. Returns the records that wait behind a pending one."""
        now = self.clock()
        keys = [f"{row.connection_id}/{row.stream}/{row.remote_id}" for row in rows]
        pending = set(
            (
                await conn.execute(
                    select(webhook_deliveries.c.record_key)
                    .distinct()
                    .where(
                        webhook_deliveries.c.destination_id == destination.id,
                        webhook_deliveries.c.status == PENDING,
                        webhook_deliveries.c.record_key.in_(set(keys)),
                    )
                )
            ).scalars()
        )
        scheduled: set[str] = set()
        values: list[dict[str, Any]] = []
        for row, key in zip(rows, keys, strict=True):
            head = key not in pending and key not in scheduled
            if head:
                scheduled.add(key)
            values.append(
                {
                    "destination_id": destination.id,
                    "platform_id": destination.platform_id,
                    "change_seq": row.seq,
                    "record_key": key,
                    "event_id": event_id(destination.id, row.seq),
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now if head else None,
                    "created_at": now,
                }
            )
        await conn.execute(insert(webhook_deliveries), values)
        return pending

    async def promote_waiting(
        self, destination_id: uuid.UUID | None = None, record_keys: Collection[str] | None = None
    ) -> int:
        """Schedule the first waiting delivery of each record that has no scheduled pending one (of these
        records of this destination, or of all); returns how many were scheduled. Plain statements, one
        per record at most: no subquery per row, whatever the planner thinks of the table."""
        deliveries = webhook_deliveries.c
        pending = deliveries.status == PENDING
        if destination_id is None or record_keys is None:
            async with self.store.reader.connect() as conn:
                waiting = select(deliveries.destination_id, deliveries.record_key).distinct()
                waiting = waiting.where(pending, deliveries.next_attempt_at.is_(None))
                if destination_id is not None:
                    waiting = waiting.where(deliveries.destination_id == destination_id)
                records = [(row.destination_id, row.record_key) for row in await conn.execute(waiting)]
        else:
            records = [(destination_id, key) for key in record_keys]
        promoted = 0
        for start in range(0, len(records), _RECORDS_PER_STATEMENT):
            chunk = set(records[start : start + _RECORDS_PER_STATEMENT])
            async with self.store.reader.connect() as conn:
                queues = await conn.execute(
                    select(
                        deliveries.destination_id,
                        deliveries.record_key,
                        func.min(deliveries.change_seq).label("first"),
                        func.count(deliveries.next_attempt_at).label("scheduled"),
                    )
                    .where(
                        pending,
                        deliveries.destination_id.in_({d for d, _ in chunk}),
                        deliveries.record_key.in_({k for _, k in chunk}),
                    )
                    .group_by(deliveries.destination_id, deliveries.record_key)
                )
                headless = [
                    row for row in queues if row.scheduled == 0 and (row.destination_id, row.record_key) in chunk
                ]
            for row in headless:
                async with self.store.engine.begin() as conn:
                    result = await conn.execute(
                        update(webhook_deliveries)
                        .where(
                            deliveries.destination_id == row.destination_id,
                            deliveries.record_key == row.record_key,
                            deliveries.change_seq == row.first,
                            pending,
                            deliveries.next_attempt_at.is_(None),
                        )
                        .values(next_attempt_at=self.clock())
                    )
                promoted += int(result.rowcount or 0)
        return promoted

    # -- deliver

    async def claim(self, limit: int, *, busy: Mapping[uuid.UUID, int] | None = None) -> list[Row[Any]]:
        """Lease up to `limit` due deliveries, the slots handed round-robin to the platforms with due ones,
        none beyond `per_platform` in flight (`busy`: those already in flight, by platform)."""
        if limit <= 0:
            return []
        now = self.clock()
        deliveries = webhook_deliveries.c
        async with self.store.reader.connect() as conn:
            # A read first: the worker calls this every poll, and an UPDATE would take SQLite's write lock.
            due_platforms = select(deliveries.platform_id).distinct()
            due_platforms = due_platforms.where(deliveries.status == PENDING, deliveries.next_attempt_at <= now)
            platforms = sorted((await conn.execute(due_platforms)).scalars(), key=str)
        shares = self._shares(platforms, limit, busy or {})
        if not shares:
            return []
        claimed: list[Row[Any]] = []
        demoted: dict[uuid.UUID, set[str]] = {}
        async with self.store.engine.begin() as conn:
            if conn.dialect.name != "postgresql":
                # Write first: SQLite then holds its one write lock for the transaction, as the reads below
                # are followed by writes (a read transaction cannot always be upgraded).
                await conn.execute(update(webhook_deliveries).where(deliveries.id == -1).values(attempts=0))
            for platform_id, share in shares.items():
                claimed.extend(await self._claim_for(conn, platform_id, share, now, demoted))
        for destination_id, keys in demoted.items():
            await self.promote_waiting(destination_id, keys)
        return sorted(claimed, key=lambda row: row.id)

    def _shares(self, platforms: list[uuid.UUID], limit: int, busy: Mapping[uuid.UUID, int]) -> dict[uuid.UUID, int]:
        """Slots per platform: one each in turn, starting after where the last claim started."""
        if not platforms:
            return {}
        start = self._turn % len(platforms)
        self._turn += 1
        order = platforms[start:] + platforms[:start]
        room = {p: self.tunables.per_platform - busy.get(p, 0) for p in order}
        shares: Counter[uuid.UUID] = Counter()
        while limit > 0 and any(room[p] > shares[p] for p in order):
            for platform_id in order:
                if limit > 0 and room[platform_id] > shares[platform_id]:
                    shares[platform_id] += 1
                    limit -= 1
        return dict(shares)

    async def _claim_for(
        self,
        conn: AsyncConnection,
        platform_id: uuid.UUID,
        share: int,
        now: datetime,
        demoted: dict[uuid.UUID, set[str]],
    ) -> Sequence[Row[Any]]:
        """Lease the platform's `share` of due deliveries. Plain statements only (no subquery per row): a
        planner working from statistics taken before a burst must not turn a claim into a scan per row."""
        deliveries = webhook_deliveries.c
        due = (
            select(deliveries.id, deliveries.destination_id, deliveries.record_key, deliveries.change_seq)
            .where(
                deliveries.platform_id == platform_id, deliveries.status == PENDING, deliveries.next_attempt_at <= now
            )
            .order_by(deliveries.next_attempt_at, deliveries.id)
            .limit(share)
        )
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        candidates = (await conn.execute(due)).all()
        if not candidates:
            return []
        # Only a record's first pending delivery may go. Enqueue schedules only those; this also orders rows
        # scheduled before deliveries waited their turn, which then wait (and the first is scheduled).
        first = {
            (row.destination_id, row.record_key): row.first
            for row in await conn.execute(
                select(deliveries.destination_id, deliveries.record_key, func.min(deliveries.change_seq).label("first"))
                .where(
                    deliveries.destination_id.in_({c.destination_id for c in candidates}),
                    deliveries.record_key.in_({c.record_key for c in candidates}),
                    deliveries.status == PENDING,
                )
                .group_by(deliveries.destination_id, deliveries.record_key)
            )
        }
        ready = [c.id for c in candidates if c.change_seq <= first[(c.destination_id, c.record_key)]]
        behind = [c for c in candidates if c.change_seq > first[(c.destination_id, c.record_key)]]
        if behind:
            await conn.execute(
                update(webhook_deliveries).where(deliveries.id.in_([c.id for c in behind])).values(next_attempt_at=None)
            )
            for c in behind:
                demoted.setdefault(c.destination_id, set()).add(c.record_key)
        if not ready:
            return []
        claimed = await conn.execute(
            update(webhook_deliveries)
            .where(deliveries.id.in_(ready), deliveries.status == PENDING, deliveries.next_attempt_at <= now)
            .values(attempts=deliveries.attempts + 1, next_attempt_at=now + timedelta(seconds=self.tunables.lease))
            .returning(
                deliveries.id,
                deliveries.platform_id,
                deliveries.destination_id,
                deliveries.record_key,
                deliveries.change_seq,
                deliveries.event_id,
                deliveries.attempts,
                deliveries.created_at,
            )
        )
        return claimed.all()

    async def prepare(self, claimed: Sequence[Row[Any]]) -> list[Attempt]:
        """Build the requests of claimed deliveries: their destination, change and record, read at once."""
        if not claimed:
            return []
        async with self.store.reader.connect() as conn:
            destinations = {
                row.id: row
                for row in await conn.execute(
                    select(
                        webhook_destinations.c.id, webhook_destinations.c.url, webhook_destinations.c.secret_encrypted
                    ).where(webhook_destinations.c.id.in_({c.destination_id for c in claimed}))
                )
            }
            logged = {
                row.seq: row
                for row in await conn.execute(
                    select(*changes.CHANGE_COLUMNS).where(change_table.c.seq.in_({c.change_seq for c in claimed}))
                )
            }
            cached = await changes.record_rows(conn, [row.record_id for row in logged.values()])
        secrets_by_destination: dict[uuid.UUID, str] = {}
        attempts: list[Attempt] = []
        for claim in claimed:
            attempt = Attempt(
                claim.id,
                claim.attempts,
                claim.created_at,
                claim.event_id,
                claim.platform_id,
                claim.destination_id,
                claim.record_key,
            )
            attempts.append(attempt)
            destination = destinations.get(claim.destination_id)
            change = logged.get(claim.change_seq)
            if destination is None:
                attempt.error, attempt.final = "the destination was deleted", True
                continue
            if change is None:
                attempt.error = "the change is no longer in the change log (retention, or its connection was deleted)"
                attempt.final = True
                continue
            if claim.destination_id not in secrets_by_destination:
                try:
                    sealed = destination.secret_encrypted
                    secret = self.store.vault.decrypt(sealed, bound_to=_bound_to(claim.destination_id)).decode()
                except SecretKeyError:
                    attempt.error = "the destination's secret cannot be decrypted: was XKIT_SECRET_KEY changed?"
                    continue
                secrets_by_destination[claim.destination_id] = secret
            attempt.url = destination.url
            attempt.secret = secrets_by_destination[claim.destination_id]
            attempt.body = event_body(claim.event_id, change, cached.get(change.record_id))
        return attempts

    async def _attempt(self, attempt: Attempt) -> None:
        """Send once and record the outcome; errors are logged, never raised."""
        try:
            if attempt.error is not None:
                await self._settle_uncancelled(attempt, Result(False, error=attempt.error), final=attempt.final)
                return
            result = await self._send(attempt)
            await self._settle_uncancelled(attempt, result)
        except Exception:
            # The lease runs out and the delivery is tried again.
            self._trouble.exception("a webhook delivery failed unexpectedly")

    async def _settle_uncancelled(self, attempt: Attempt, result: Result, *, final: bool = False) -> None:
        settling = asyncio.ensure_future(self.settle(attempt, result, final=final))
        self._settling.add(settling)
        settling.add_done_callback(self._settling.discard)
        await asyncio.shield(settling)

    async def _send(self, attempt: Attempt) -> Result:
        assert attempt.url is not None and attempt.secret is not None and attempt.body is not None
        timestamp = int(self.clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "X-Xkit-Event-Id": attempt.event_id,
            "X-Xkit-Timestamp": str(timestamp),
            "X-Xkit-Signature": sign(attempt.secret, timestamp, attempt.body),
        }
        try:
            async with asyncio.timeout(self.tunables.timeout):
                async with self.client.stream("POST", attempt.url, content=attempt.body, headers=headers) as response:
                    status = response.status_code
        except (TimeoutError, httpx2.HTTPError):
            # One message for a refused target, a refused connection, a closed port and a timeout: lastError
            # must not tell a tenant which internal ports are open.
            return Result(False, error=f"the destination could not be reached within {self.tunables.timeout:g} s")
        if 200 <= status < 300:
            return Result(True, status)
        # The status only: the receiver's body is not ours to keep, nor to show.
        return Result(False, status, f"HTTP {status}")

    async def settle(self, attempt: Attempt, result: Result, *, final: bool = False) -> None:
        now = self.clock()
        values: dict[str, Any] = {"last_status_code": result.status_code, "last_error": result.error}
        if result.delivered:
            values.update(status=DELIVERED, delivered_at=now, next_attempt_at=None)
        else:
            retry_at = now + timedelta(seconds=backoff(attempt.attempts, self.tunables, self.rng))
            if final or retry_at > attempt.created_at + self.tunables.give_up_after:
                values.update(status=FAILED, next_attempt_at=None)
            else:
                values.update(next_attempt_at=retry_at)
        async with self.store.engine.begin() as conn:
            settled = await conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id == attempt.delivery_id,
                    webhook_deliveries.c.status == PENDING,
                    # Still our claim: a lease that ran out and was taken over leaves its outcome to the other.
                    webhook_deliveries.c.attempts == attempt.attempts,
                )
                .values(**values)
            )
        if settled.rowcount and values.get("status") in (DELIVERED, FAILED):
            # After the commit, the record's next event is due (see the docstring for why not before).
            await self.promote_waiting(attempt.destination_id, [attempt.record_key])
