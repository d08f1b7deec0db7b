"""The kit's incremental strategies against sandboxes that filter and feed the way their providers do:
Pipedrive v2's `updated_since` listing, Zendesk's cursor-based incremental export, Stripe's `/v1/events`
(shapes from shared/providers/{pipedrive,zendesk,stripe}.md)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.kit.declaration import Cursor, Incremental, Stream, StreamContext
from connectors.kit.pagination import CursorPagination
from connectors.kit.records import Page
from connectors.kit.strategies import EventFeed, UpdatedSince
from tests.connectors.kit_sessions import RecordingProvider, sandbox_session

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Provider(RecordingProvider):
    persons: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)  # the export, in generated order
    events: list[dict[str, Any]] = field(default_factory=list)  # Stripe's events, oldest first

    def routes(self) -> list[Route]:
        return [
            Route("/api/v2/persons", self.pipedrive_persons),
            Route("/api/v2/incremental/tickets/cursor.json", self.zendesk_export),
            Route("/v1/events", self.stripe_events),
        ]

    async def pipedrive_persons(self, request: Request) -> Response:
        query = self.seen(request)
        if "created[gt]" in query:  # an exclusive filter in Unix seconds, as Stripe's `created[gt]`
            after = datetime.fromtimestamp(int(query["created[gt]"]), UTC)
            found = [p for p in self.persons if p["update_time"] > rfc3339(after)]
        else:  # Pipedrive's `updated_since`: inclusive (>=), RFC 3339
            since = datetime.fromisoformat(query["updated_since"])
            found = [p for p in self.persons if p["update_time"] >= rfc3339(since)]
        matching = sorted(found, key=lambda p: p["update_time"])
        start, limit = int(query.get("cursor") or 0), int(query["limit"])
        following = start + limit if start + limit < len(matching) else None
        return JSONResponse(
            {
                "success": True,
                "data": matching[start : start + limit],
                "additional_data": {"next_cursor": str(following) if following is not None else None},
            }
        )

    async def zendesk_export(self, request: Request) -> Response:
        query = self.seen(request)
        if "cursor" in query:
            start = int(query["cursor"])
        else:
            since = int(query["start_time"])
            start = next(
                (n for n, t in enumerate(self.tickets) if t["generated_timestamp"] >= since), len(self.tickets)
            )
        size = int(query["per_page"])
        page = self.tickets[start : start + size]
        after = str(start + len(page))
        return JSONResponse(
            {
                "tickets": page,
                "after_cursor": after,
                "after_url": f"{request.base_url}api/v2/incremental/tickets/cursor.json?cursor={after}",
                "before_cursor": None,
                "before_url": None,
                "end_of_stream": start + size >= len(self.tickets),
            }
        )

    async def stripe_events(self, request: Request) -> Response:
        query = self.seen(request)
        gte = int(query.get("created[gte]", 0))
        newest_first = [e for e in reversed(self.events) if e["created"] >= gte]
        ids = [e["id"] for e in newest_first]
        limit = int(query["limit"])
        if "ending_before" in query:  # the page just newer than the given event
            end = ids.index(query["ending_before"])
            page, more = newest_first[max(0, end - limit) : end], end - limit > 0
        else:
            start = ids.index(query["starting_after"]) + 1 if "starting_after" in query else 0
            page, more = newest_first[start : start + limit], start + limit < len(ids)
        return JSONResponse({"object": "list", "url": "/v1/events", "has_more": more, "data": page})


@contextlib.asynccontextmanager
async def sandbox(provider: Provider) -> AsyncIterator[Callable[[Incremental], StreamContext]]:
    async with sandbox_session(provider.app()) as session:

        def context(incremental: Incremental) -> StreamContext:
            stream = Stream(
                name="things",
                path="/api/v2/persons",
                pagination=PERSONS_PAGE,
                incremental=incremental,
                updated_at="update_time",
            )
            return StreamContext(session=session, stream=stream)

        yield context


async def run(context: Callable[[Incremental], StreamContext], incremental: Incremental, cursor: Cursor) -> list[Page]:
    return [page async for page in incremental.pages(context(incremental), cursor)]


def ids(pages: list[Page]) -> list[str]:
    return [record.remote_id for page in pages for record in page.records]


PERSONS_PAGE = CursorPagination(
    records="data", next_cursor="additional_data.next_cursor", cursor_param="cursor", size_param="limit", page_size=2
)


def person(n: int, updated: datetime) -> dict[str, Any]:
    return {"id": n, "name": f"Person {n}", "update_time": rfc3339(updated)}


async def test_updated_since_reads_what_changed_and_moves_the_cursor_to_the_newest_change_seen() -> None:
    provider = Provider(persons=[person(n, T0 + n * DAY) for n in range(1, 6)])
    incremental = UpdatedSince(PERSONS_PAGE, param="updated_since")
    async with sandbox(provider) as context:
        cursor = incremental.initial_cursor(T0 + 3 * DAY)
        pages = await run(context, incremental, cursor)
        assert ids(pages) == ["3", "4", "5"]
        assert provider.queries[0]["updated_since"] == "2026-01-04T00:00:00Z"
        # A run cut short after its first page resumes inside the same listing, with the same filter.
        resumed = await run(context, incremental, pages[0].cursor or {})
        assert ids(resumed) == ["5"] and provider.queries[-1]["updated_since"] == "2026-01-04T00:00:00Z"
        done = pages[-1].cursor or {}
        assert done == {"since": (T0 + 5 * DAY).isoformat()} and pages[-1].high_water == T0 + 5 * DAY

        # The filter is inclusive: the newest record is read again (the cache's hash drops it), and a
        # record the provider returns with an older modification time never moves the cursor back.
        provider.persons.append(person(9, T0 + 6 * DAY))
        provider.persons[0]["update_time"] = rfc3339(T0 + 6 * DAY)
        later = await run(context, incremental, done)
        assert sorted(ids(later)) == ["1", "5", "9"]
        assert later[-1].cursor == {"since": (T0 + 6 * DAY).isoformat()}
        provider.persons[:] = [person(1, T0)]
        stale = await run(context, incremental, {"since": (T0 + 6 * DAY).isoformat()})
        assert ids(stale) == [] and stale[-1].cursor == {"since": (T0 + 6 * DAY).isoformat()}


async def test_updated_since_widens_an_exclusive_filter_and_the_overlap_in_the_provider_s_format() -> None:
    at = T0 + DAY
    provider = Provider(
        persons=[person(1, at - timedelta(minutes=2)), person(2, at - timedelta(seconds=30)), person(3, at)]
    )
    exclusive = UpdatedSince(
        PERSONS_PAGE, param="created[gt]", time_format="epoch", inclusive=False, overlap=timedelta(minutes=1)
    )
    async with sandbox(provider) as context:
        pages = await run(context, exclusive, {"since": at.isoformat()})
    # The record at the cursor's own instant and the one within the overlap are read; the older one is not.
    assert ids(pages) == ["2", "3"]
    assert provider.queries[-1]["created[gt]"] == str(int(at.timestamp()) - 61)


async def test_updated_since_over_a_listing_sorted_by_change_resumes_from_the_newest_change_stored() -> None:
    """Salesforce's shape: the listing's cursors expire, so a run cut short filters again from the newest
    change it stored (in SOQL's millisecond literals), read from the field the filter compares."""
    hour = timedelta(hours=1)
    provider = Provider(
        persons=[{**person(n, T0 + n * DAY), "system": {"stamp": rfc3339(T0 + n * DAY + hour)}} for n in range(1, 6)]
    )
    incremental = UpdatedSince(
        PERSONS_PAGE,
        param="updated_since",
        time_format="iso_millis",
        overlap=timedelta(minutes=2),
        modified_at="system.stamp",
        resume_from_newest=True,
    )
    async with sandbox(provider) as context:
        pages = await run(context, incremental, incremental.initial_cursor(T0 + 3 * DAY))
        assert ids(pages) == ["3", "4", "5"]
        assert provider.queries[0]["updated_since"] == "2026-01-03T23:58:00.000Z"
        # The first page (3 and 4) leaves the newest change it stored, and no place inside the listing.
        assert pages[0].cursor == {"since": (T0 + 3 * DAY).isoformat(), "newest": (T0 + 4 * DAY + hour).isoformat()}
        resumed = await run(context, incremental, pages[0].cursor or {})
        assert ids(resumed) == ["5"]
        assert provider.queries[-1] == {"updated_since": "2026-01-05T01:00:00.000Z", "limit": "2"}
        # The cursor follows the compared field, an hour past each record's update_time.
        assert resumed[-1].cursor == pages[-1].cursor == {"since": (T0 + 5 * DAY + hour).isoformat()}


def ticket(n: int, generated: datetime, status: str = "open") -> dict[str, Any]:
    return {"id": n, "status": status, "generated_timestamp": int(generated.timestamp()), "update_time": None}


ZENDESK_EXPORT = EventFeed(
    path="/api/v2/incremental/tickets/cursor.json",
    items="tickets",
    start_param="start_time",
    cursor_param="cursor",
    next_cursor="after_cursor",
    size_param="per_page",
    page_size=2,
    deleted_when=lambda item: item.get("status") == "deleted",
)


async def test_an_export_feed_is_followed_from_the_backfill_start_then_from_its_saved_cursor() -> None:
    provider = Provider(tickets=[ticket(n, T0 + n * DAY) for n in range(1, 5)])
    provider.tickets.append(ticket(2, T0 + 5 * DAY, status="deleted"))
    async with sandbox(provider) as context:
        pages = await run(context, ZENDESK_EXPORT, ZENDESK_EXPORT.initial_cursor(T0 + 2 * DAY))
        assert provider.queries[0] == {"per_page": "2", "start_time": str(int((T0 + 2 * DAY).timestamp()))}
        assert [(r.remote_id, r.deleted) for p in pages for r in p.records] == [
            ("2", False),
            ("3", False),
            ("4", False),
            ("2", True),
        ]
        assert pages[-1].cursor == {"after": "5"}
        # The next poll goes on from where the stream ended, and only reads what came since.
        provider.tickets.append(ticket(7, T0 + 6 * DAY))
        later = await run(context, ZENDESK_EXPORT, pages[-1].cursor or {})
        assert ids(later) == ["7"] and later[-1].cursor == {"after": "6"}
        assert provider.queries[-1] == {"per_page": "2", "cursor": "5"}


STRIPE_EVENTS = EventFeed(
    path="/v1/events",
    items="data",
    record="data.object",
    start_param="created[gte]",
    cursor_param="ending_before",
    newest_first=True,
    size_param="limit",
    page_size=2,
    deleted_when=lambda event: str(event["type"]).endswith(".deleted"),
)


def event(n: int, kind: str, customer: str, name: str) -> dict[str, Any]:
    created = int((T0 + n * DAY).timestamp())
    snapshot = {"id": customer, "object": "customer", "name": name, "update_time": None}
    return {"id": f"evt_{n}", "object": "event", "created": created, "type": kind, "data": {"object": snapshot}}


async def test_a_newest_first_event_list_is_applied_oldest_first_and_followed_by_its_newest_event() -> None:
    provider = Provider(
        events=[
            event(1, "customer.created", "cus_a", "Ann"),
            event(2, "customer.created", "cus_b", "Bob"),
            event(3, "customer.updated", "cus_a", "Ann Lee"),
            event(4, "customer.updated", "cus_b", "Bob Ray"),
            event(5, "customer.deleted", "cus_b", "Bob Ray"),
        ]
    )
    async with sandbox(provider) as context:
        pages = await run(context, STRIPE_EVENTS, STRIPE_EVENTS.initial_cursor(T0 + 2 * DAY))
        applied = [(r.remote_id, r.raw["name"], r.deleted) for p in pages for r in p.records]
        assert applied == [
            ("cus_b", "Bob", False),
            ("cus_a", "Ann Lee", False),
            ("cus_b", "Bob Ray", False),
            ("cus_b", "Bob Ray", True),
        ]
        assert pages[-1].cursor == {"after": "evt_5"}
        provider.events += [event(n, "customer.updated", "cus_a", f"Ann {n}") for n in range(6, 11)]
        later = await run(context, STRIPE_EVENTS, pages[-1].cursor or {})
        assert [r.raw["name"] for p in later for r in p.records] == [f"Ann {n}" for n in range(6, 11)]
        assert later[-1].cursor == {"after": "evt_10"}
        again = await run(context, STRIPE_EVENTS, later[-1].cursor or {})
        assert ids(again) == [] and again[-1].cursor == {"after": "evt_10"}
