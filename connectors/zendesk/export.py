"""Zendesk's incremental exports, for the backfill (from the epoch) and for every later poll.

Two shapes: the cursor-based export (tickets, users: `?start_time=` once, then `?cursor=<after_cursor>`)
and the time-based one (organizations, ticket events: `?start_time=<end_time of the last page>`). Both
say `end_of_stream: true` on their last page, where the cursor to poll from next is still given.

`start_time` must be a minute in the past, so the first poll after a backfill starts 61 s before the
backfill did (records read twice are dropped by the cache's content hash). The export allows 10
requests a minute, apart from the account's limit: its 429 carries Retry-After, which the kit honours
by holding the connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.kit.convert import parse_datetime
from connectors.kit.declaration import Cursor, StreamContext
from connectors.kit.jsonpath import dig
from connectors.kit.pagination import chained_pages
from connectors.kit.records import Page

START_TIME_LAG = timedelta(seconds=61)
Items = Callable[[Any], list[dict[str, Any]]]


@dataclass(frozen=True)
class Export:
    """One export endpoint. `items` picks the records out of a page (by default its `key` list); `keep`
    drops records that belong to another stream (users of another role); `deleted_when` marks tombstones."""

    path: str
    key: str
    cursor_based: bool = True
    per_page: int = 1000
    params: Mapping[str, Any] = field(default_factory=dict)
    items: Items | None = None
    keep: Callable[[dict[str, Any]], bool] | None = None
    deleted_when: Callable[[dict[str, Any]], bool] | None = None

    async def read(self, ctx: StreamContext, start: int | None, token: Any, *, backfill: bool) -> AsyncIterator[Page]:
        """Pages from `token` (a cursor or a start time) or else from `start`; on the last page the cursor is
        None for a backfill and the place to poll from for an incremental run."""

        def fetch(place: Any) -> Awaitable[Any]:
            query: dict[str, Any] = {**self.params, "per_page": self.per_page}
            if place is not None and self.cursor_based:
                query["cursor"] = place
            else:
                query["start_time"] = place if place is not None else start
            return ctx.session.get_json(self.path, query)

        def ends_on(body: Any) -> Any:
            return dig(body, "after_cursor") if self.cursor_based else dig(body, "end_time")

        def next_token(body: Any) -> Any:
            return None if dig(body, "end_of_stream") else ends_on(body)

        last = token
        async for body, following in chained_pages(ctx.page_budget.chain().fetching(fetch), next_token, token):
            last = ends_on(body) if ends_on(body) is not None else last
            records = [
                ctx.to_record(raw, deleted=bool(self.deleted_when and self.deleted_when(raw)))
                for raw in (self.items(body) if self.items else dig(body, self.key) or [])
                if self.keep is None or self.keep(raw)
            ]
            if following is not None:
                yield Page(records, {"place": following})
            else:
                yield Page(records, None if backfill or last is None else {"place": last})


@dataclass(frozen=True)
class ExportBackfill:
    """The whole export from the epoch, resumable at any page."""

    export: Export

    def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        return self.export.read(ctx, 0, (cursor or {}).get("place"), backfill=True)


@dataclass(frozen=True)
class ExportIncremental:
    """What changed since the last poll: the cursor (or end time) the export ended on, kept between polls."""

    export: Export

    def initial_cursor(self, backfill_started_at: datetime) -> Cursor:
        return {"since": (backfill_started_at - START_TIME_LAG).astimezone(UTC).isoformat()}

    def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        since = parse_datetime(cursor.get("since"))
        start = int(min(since, datetime.now(UTC) - START_TIME_LAG).timestamp()) if since else None
        if start is None and cursor.get("place") is None:
            raise ValueError(f"stream {ctx.stream.name}: an export cursor names neither a place nor a start: {cursor}")
        return self.export.read(ctx, start, cursor.get("place"), backfill=False)


def comments_of(body: Any) -> list[dict[str, Any]]:
    """The comments inside a ticket events page (`include=comment_events`), each in the shape the comment
    lookup gives too: the child event with its ticket and time."""
    found: list[dict[str, Any]] = []
    for event in dig(body, "ticket_events") or []:
        for child in event.get("child_events") or []:
            if child.get("event_type") == "Comment" and child.get("id") is not None:
                found.append(
                    comment_record(child, ticket_id=event.get("ticket_id"), created_at=event.get("created_at"))
                )
    return found


COMMENT_FIELDS = ("id", "author_id", "body", "html_body", "plain_body", "public", "attachments")


def comment_record(comment: dict[str, Any], *, ticket_id: Any, created_at: Any) -> dict[str, Any]:
    """A comment as xkit keeps it, whichever endpoint it came from. Zendesk addresses comments only through
    their ticket, so its id here is `<ticket id>-<comment id>`: a lookup can find it again."""
    kept = {name: comment.get(name) for name in COMMENT_FIELDS if name in comment}
    return {
        **kept,
        "ticket_id": ticket_id,
        "created_at": comment.get("created_at") or created_at,
        "ticket_comment_id": f"{ticket_id}-{comment.get('id')}",
    }
