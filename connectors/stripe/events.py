"""Stripe's change feed: `/v1/events`, filtered to a stream's event types (`types[]`), applied oldest first.

Stripe's lists have no "updated since" filter, so after the backfill every change comes from events
(docs.stripe.com/api/events). The first poll reads the window since the backfill started
(`created[gte]`, paged back with `starting_after`: the list is newest first), so nothing created or
changed while the backfill ran is missed; later polls go forward from the newest event applied
(`ending_before`, paged towards newer events with the id of each page's newest).

Each event's `data.object` is the object as it was then. Within a page only an object's latest event is
applied, and an object whose event copy is not what a listing stores (an invoice with more lines than the
event embeds, a payment intent whose listing expands its charge) is read again. Deletions come from the
stream's `*.deleted` types; `customer.subscription.deleted` is a cancellation, kept as an update.

Events are kept 30 days. A cursor older than that (or an `ending_before` event Stripe no longer knows)
cannot be followed: the stream is listed again whole, saying so in the log, and events are read from the
re-listing's start. A stream quiet for weeks moves its cursor to a recent instant instead, so quiet is
never mistaken for expiry.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.kit.declaration import Cursor, Pagination, StreamContext
from connectors.kit.errors import ProviderError
from connectors.kit.pagination import chained_pages
from connectors.kit.records import Page, RemoteRecord

log = logging.getLogger(__name__)

EVENTS = "/v1/events"
RETENTION = timedelta(days=30)
# A quiet stream's cursor moves to this long before now, well inside the retention; an event Stripe writes
# a little late (its `created` is when it happened) is still inside the window.
QUIET_LAG = timedelta(minutes=10)
# A cursor this old with nothing new since moves forward (at QUIET_LAG before now) before it expires.
QUIET_AFTER = timedelta(days=7)
PAGE_SIZE = 100

Refetch = Callable[[StreamContext, str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class StripeEvents:
    """The incremental strategy of one Stripe stream. `deleted_types` are the event types that delete
    their object; `stale_when` says which event copies must be read again (through `refetch`);
    `relist` is the stream's listing, read whole when the events cannot be followed."""

    types: tuple[str, ...]
    relist: Pagination
    refetch: Refetch
    deleted_types: frozenset[str] = frozenset()
    stale_when: Callable[[dict[str, Any]], bool] | None = None
    # The id of the object an event changes, when it is not `data.object.id` (an invoice item's invoice).
    subject_of: Mapping[str, str] = field(default_factory=dict)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        if not 0 < len(self.types) <= 20:
            raise ValueError("Stripe filters events by 1 to 20 types")

    def initial_cursor(self, backfill_started_at: datetime) -> Cursor:
        return {"since": _stamp(backfill_started_at)}

    async def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        if "relist" in cursor or self._expired(cursor):
            async for page in self._relisted(ctx, cursor):
                yield page
            return
        try:
            if cursor.get("after"):
                async for page in self._forward(ctx, cursor):
                    yield page
            else:
                async for page in self._window(ctx, cursor):
                    yield page
        except ProviderError as error:
            if error.status != 404 or error.field not in ("ending_before", "starting_after"):
                raise
            log.warning("%s: Stripe no longer has the event the cursor names: listing again", ctx.stream.name)
            async for page in self._relisted(ctx, {}):
                yield page

    # ---- the two ways of reading events ---------------------------------------------------------

    async def _window(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        """Every event since `since`, newest first across pages: collected, then applied oldest first."""
        since = int(cursor["since"])
        collected: list[dict[str, Any]] = []

        def fetch(older_than: str | None) -> Awaitable[Any]:
            params = {**self._params(), "created[gte]": since}
            if older_than is not None:
                params["starting_after"] = older_than
            return ctx.session.get_json(EVENTS, params)

        def next_older(body: Any) -> str | None:
            data = body.get("data") or []
            return str(data[-1]["id"]) if data and body.get("has_more") else None

        async for body, _ in chained_pages(ctx.page_budget.chain().fetching(fetch), next_older, None):
            collected.extend(body.get("data") or [])
        if not collected:
            yield Page([], self._quiet(cursor, since))
            return
        oldest_first = list(reversed(collected))
        for start in range(0, len(oldest_first), PAGE_SIZE):
            chunk = oldest_first[start : start + PAGE_SIZE]
            yield Page(await self._records(ctx, chunk), _after(chunk[-1]))

    async def _forward(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        """The events newer than the cursor's, a page at a time, each page applied oldest first."""

        def fetch(newer_than: str | None) -> Awaitable[Any]:
            return ctx.session.get_json(EVENTS, {**self._params(), "ending_before": newer_than})

        def next_newer(body: Any) -> str | None:
            data = body.get("data") or []
            return str(data[0]["id"]) if data and body.get("has_more") else None

        found = False
        async for body, _ in chained_pages(ctx.page_budget.chain().fetching(fetch), next_newer, cursor["after"]):
            data = body.get("data") or []
            if data:
                found = True
                oldest_first = list(reversed(data))
                yield Page(await self._records(ctx, oldest_first), _after(oldest_first[-1]))
        if not found:
            yield Page([], self._quiet(cursor, int(cursor.get("at") or 0)))

    # ---- re-listing -----------------------------------------------------------------------------

    async def _relisted(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        """The whole stream listed again, resumably; events are then read from the re-listing's start."""
        started = int(cursor.get("since") or 0) if "relist" in cursor else _stamp(self.now())
        if "relist" not in cursor:
            log.warning(
                "%s: the event cursor is older than Stripe keeps events (30 days): listing the stream again",
                ctx.stream.name,
            )
        async for page in self.relist.pages(ctx, cursor.get("relist") or None):
            listing = page.cursor
            page.cursor = {"relist": listing, "since": started} if listing else {"since": started}
            yield page

    # ---- helpers --------------------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        return {"limit": PAGE_SIZE, "types[]": list(self.types)}

    def _expired(self, cursor: Cursor) -> bool:
        newest = cursor.get("at") if cursor.get("after") else cursor.get("since")
        if newest is None:
            return False
        return datetime.fromtimestamp(int(newest), tz=UTC) < self.now() - RETENTION

    def _quiet(self, cursor: Cursor, newest: int) -> Cursor:
        """The cursor after a poll that found nothing: unchanged, unless it is old enough to be mistaken
        for an expired one later; then the recent past, which nothing newer than it can precede."""
        if datetime.fromtimestamp(newest, tz=UTC) >= self.now() - QUIET_AFTER:
            return dict(cursor)
        return {"since": _stamp(self.now() - QUIET_LAG)}

    async def _records(self, ctx: StreamContext, events: list[dict[str, Any]]) -> list[RemoteRecord]:
        """The records the events leave behind, oldest first: each object's latest event only."""
        latest: dict[str, dict[str, Any]] = {}
        for event in events:
            subject = self._subject(event)
            if subject is not None:
                latest.pop(subject, None)  # re-inserted last: the order of latest changes
                latest[subject] = event
        records: list[RemoteRecord] = []
        for subject, event in latest.items():
            kind = str(event.get("type"))
            obj = event["data"]["object"]
            if kind in self.deleted_types:
                records.append(RemoteRecord(subject, obj, deleted=True, deleted_at=_instant(event)))
                continue
            if kind in self.subject_of or (self.stale_when is not None and self.stale_when(obj)):
                fresh = await self.refetch(ctx, subject)
                if fresh is None:  # gone since: its deletion event follows
                    continue
                obj = fresh
            records.append(ctx.to_record(obj))
        return records

    def _subject(self, event: dict[str, Any]) -> str | None:
        obj = (event.get("data") or {}).get("object")
        if not isinstance(obj, dict):
            return None
        subject = obj.get(self.subject_of.get(str(event.get("type")), "id"))
        return subject if isinstance(subject, str) and subject else None


def _stamp(moment: datetime) -> int:
    return int(moment.timestamp())


def _instant(event: dict[str, Any]) -> datetime | None:
    created = event.get("created")
    return datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else None


def _after(event: dict[str, Any]) -> Cursor:
    return {"after": str(event["id"]), "at": int(event.get("created") or 0)}
