"""Incremental and deletion strategies that several providers share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from connectors.kit.convert import iso_millis, parse_datetime
from connectors.kit.declaration import Cursor, Pagination, StreamContext
from connectors.kit.jsonpath import dig
from connectors.kit.pagination import chained_pages
from connectors.kit.records import Page, RemoteRecord


@dataclass(frozen=True)
class FullRefresh:
    """Re-read the whole (small) stream every run; the cache's content hash keeps it quiet."""

    pagination: Pagination

    def initial_cursor(self, backfill_started_at: datetime) -> Cursor:
        return {}

    async def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        async for page in self.pagination.pages(ctx, cursor.get("page")):
            page.cursor = {"page": page.cursor} if page.cursor else {}
            yield page


@dataclass(frozen=True)
class ListedDeletions:
    """Deletions read by walking a listing of deleted records from its start (HubSpot's `archived=true`);
    its pagination maps them as tombstones (`ListRequest(deleted=True)`)."""

    pagination: Pagination

    async def pages(self, ctx: StreamContext) -> AsyncIterator[Page]:
        async for page in self.pagination.pages(ctx, None):
            page.cursor = None  # a scan always starts over: nothing to resume
            yield page


TimeFormat = Literal["iso", "iso_millis", "epoch"]


def format_instant(instant: datetime, time_format: TimeFormat) -> str:
    """An instant as providers take it in a filter: RFC 3339 in UTC to the second or the millisecond
    (Salesforce's SOQL datetime literals), or Unix seconds."""
    if time_format == "epoch":
        return str(int(instant.timestamp()))
    if time_format == "iso_millis":
        return iso_millis(instant)
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class UpdatedSince:
    """Read what changed since the newest modification seen, through a listing filtered by a parameter
    (Pipedrive v2 `updated_since`, RFC 3339, inclusive; Mailchimp `since_last_changed`, ISO 8601).

    The parameter holds the cursor less `overlap` (a provider may index a write after its modification
    time; records read again are dropped by the cache's hash), and one second less again when the filter
    is exclusive, so records sharing the cursor's instant are never skipped. The cursor becomes the newest
    modification time seen (each record's `updated_at`, or the field at `modified_at` when the filter
    compares another one), and never moves back. A run cut short resumes inside its listing with the same
    filter value; or, with `resume_from_newest`, for a listing sorted oldest change first whose cursors
    expire (Salesforce's query locators), by filtering from the newest modification it stored.
    """

    pagination: Pagination
    param: str
    time_format: TimeFormat = "iso"
    inclusive: bool = True
    overlap: timedelta = timedelta(0)
    # The dotted path of the modification time the filter compares, when it is not the stream's
    # `updated_at` (Salesforce filters on SystemModstamp, which system changes and deletions move too).
    modified_at: str | None = None
    resume_from_newest: bool = False

    def initial_cursor(self, backfill_started_at: datetime) -> Cursor:
        return {"since": backfill_started_at.astimezone(UTC).isoformat()}

    async def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        since = parse_datetime(cursor["since"])
        if since is None:
            raise ValueError(f"stream {ctx.stream.name}: an UpdatedSince cursor without `since`: {cursor}")
        stored = parse_datetime(cursor.get("newest"))
        newest = stored or since
        start = stored if self.resume_from_newest and stored else since - self.overlap
        sent = start - (timedelta(0) if self.inclusive else timedelta(seconds=1))
        filtered = replace(
            ctx, discovered_params={**ctx.discovered_params, self.param: format_instant(sent, self.time_format)}
        )
        async for page in self.pagination.pages(filtered, None if self.resume_from_newest else cursor.get("page")):
            newest = max([newest, *self._modified(page)])
            if page.cursor is None:  # the listing is done: the next run filters from the newest seen
                page.cursor = {"since": newest.isoformat()}
                page.high_water = newest
            else:
                listing = {} if self.resume_from_newest else {"page": page.cursor}
                page.cursor = {"since": since.isoformat(), "newest": newest.isoformat(), **listing}
            yield page

    def _modified(self, page: Page) -> list[datetime]:
        if self.modified_at is None:
            return [r.updated_at for r in page.records if r.updated_at is not None]
        stamps = (parse_datetime(dig(r.raw, self.modified_at)) for r in page.records)
        return [stamp for stamp in stamps if stamp is not None]


@dataclass(frozen=True)
class EventFeed:
    """Follow a provider's change feed from a saved cursor and store the record each item names.

    Two shapes of feed are read, both forward from the saved cursor (`cursor_param`):
    - an export whose body names the cursor after each page (`next_cursor`) and says when it is drained
      (`end_of_stream`): Zendesk's cursor-based incremental export, `after_cursor` and `end_of_stream`;
    - a list newest first (`newest_first`), paged towards newer items with the id of a page's first item
      while `has_more`: Stripe's `/v1/events` with `ending_before` (docs.stripe.com/api/pagination).
    With no saved cursor yet, the first poll asks for everything since the backfill started
    (`start_param`, in `time_format`; Zendesk `start_time`, Stripe `created[gte]`); a newest-first list
    then pages back through that window (`starting_after` the last id) and applies it oldest first.
    The cursor the feed ends on is kept for the next poll. `record` is the record inside an item (Stripe:
    `data.object`; "" for the item itself); an item is a deletion when `deleted_when` says so. `params` go
    with every request (Stripe: the stream's event `types[]`).
    """

    path: str
    items: str
    start_param: str
    cursor_param: str
    record: str = ""
    next_cursor: str | None = None
    end_of_stream: str = "end_of_stream"
    newest_first: bool = False
    has_more: str = "has_more"
    back_param: str = "starting_after"
    id_path: str = "id"
    time_format: TimeFormat = "epoch"
    size_param: str | None = None
    page_size: int = 100
    deleted_when: Callable[[dict[str, Any]], bool] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def initial_cursor(self, backfill_started_at: datetime) -> Cursor:
        return {"since": backfill_started_at.astimezone(UTC).isoformat()}

    async def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        saved: str | None = cursor.get("after")
        if saved is None and self.newest_first:
            page, saved = await self._window(ctx, cursor)
            yield page
            if saved is None:
                return

        def fetch(token: str | None) -> Awaitable[Any]:
            return ctx.session.get_json(self.path, self._params(cursor, token))

        def ends_on(body: Any) -> str | None:
            if not self.newest_first:
                return dig(body, self.next_cursor or "after_cursor") or None
            items = dig(body, self.items) or []
            return str(dig(items[0], self.id_path)) if items else None

        def next_token(body: Any) -> str | None:
            drained = not dig(body, self.has_more) if self.newest_first else bool(dig(body, self.end_of_stream))
            return None if drained else ends_on(body)

        last = saved
        chain = ctx.page_budget.chain()
        async for body, _ in chained_pages(chain.fetching(fetch), next_token, saved):
            last = ends_on(body) or last
            items = dig(body, self.items) or []
            yield Page(self._records(ctx, items), {"after": last} if last else dict(cursor))

    async def _window(self, ctx: StreamContext, cursor: Cursor) -> tuple[Page, str | None]:
        """A newest-first feed's items since the start, paged backwards and applied oldest first; and the
        newest item's id, where later polls go on from."""
        collected: list[dict[str, Any]] = []

        def fetch(token: str | None) -> Awaitable[Any]:
            params = self._params(cursor, None)
            if token is not None:
                params[self.back_param] = token
            return ctx.session.get_json(self.path, params)

        def older(body: Any) -> str | None:
            items = dig(body, self.items) or []
            return str(dig(items[-1], self.id_path)) if items and dig(body, self.has_more) else None

        async for body, _ in chained_pages(ctx.page_budget.chain().fetching(fetch), older, None):
            collected.extend(dig(body, self.items) or [])
        newest = str(dig(collected[0], self.id_path)) if collected else None
        return Page(self._records(ctx, collected), {"after": newest} if newest else dict(cursor)), newest

    def _params(self, cursor: Cursor, token: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {**self.params, **({self.size_param: self.page_size} if self.size_param else {})}
        if token is not None:
            params[self.cursor_param] = token
            return params
        since = parse_datetime(cursor.get("since"))
        if since is None:
            raise ValueError(f"an event feed cursor names neither a place nor a start: {cursor}")
        params[self.start_param] = format_instant(since, self.time_format)
        return params

    def _records(self, ctx: StreamContext, items: list[dict[str, Any]]) -> list[RemoteRecord]:
        ordered = list(reversed(items)) if self.newest_first else items
        return [
            ctx.to_record(
                dig(item, self.record) if self.record else item,
                deleted=bool(self.deleted_when and self.deleted_when(item)),
            )
            for item in ordered
        ]
