"""Reading Zendesk records by id, in the shape the export gives them, for writebacks and webhooks; and the
listing of soft-deleted tickets."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.kit.declaration import StreamContext
from connectors.kit.jsonpath import dig
from connectors.kit.pagination import chained_pages
from connectors.kit.records import Page, RemoteRecord
from connectors.zendesk.export import comment_record

SHOW_MANY_LIMIT = 100
CURSOR_PAGE = 100


@dataclass(frozen=True)
class ShowMany:
    """`GET /api/v2/<resource>/show_many?ids=1,2,...` (100 ids a request); `keep` as the stream's export."""

    resource: str
    keep: Callable[[dict[str, Any]], bool] | None = None

    async def fetch(self, ctx: StreamContext, remote_ids: Sequence[str]) -> list[RemoteRecord]:
        wanted = [i for i in remote_ids if i.isdigit()]
        found: list[RemoteRecord] = []
        for start in range(0, len(wanted), SHOW_MANY_LIMIT):
            chunk = ",".join(wanted[start : start + SHOW_MANY_LIMIT])
            body = await ctx.session.get_json(f"/api/v2/{self.resource}/show_many", {"ids": chunk})
            found += [ctx.to_record(raw) for raw in body.get(self.resource) or [] if not self.keep or self.keep(raw)]
        return found


async def _cursor_listing(ctx: StreamContext, path: str, params: dict[str, Any], key: str) -> AsyncIterator[Any]:
    """Every item of a cursor-paged listing (`page[size]`, `page[after]`, `meta.has_more`)."""

    def fetch(after: str | None) -> Awaitable[Any]:
        return ctx.session.get_json(
            path, {**params, "page[size]": CURSOR_PAGE, **({"page[after]": after} if after else {})}
        )

    def next_after(body: Any) -> str | None:
        return dig(body, "meta.after_cursor") if dig(body, "meta.has_more") else None

    async for body, _ in chained_pages(ctx.page_budget.chain().fetching(fetch), next_after, None):
        for item in dig(body, key) or []:
            yield item


@dataclass(frozen=True)
class TicketComments:
    """Comments by `<ticket id>-<comment id>`: each named ticket's comments listed once."""

    async def fetch(self, ctx: StreamContext, remote_ids: Sequence[str]) -> list[RemoteRecord]:
        by_ticket: dict[str, set[str]] = defaultdict(set)
        for remote_id in remote_ids:
            ticket, _, comment = remote_id.partition("-")
            if ticket.isdigit() and comment.isdigit():
                by_ticket[ticket].add(comment)
        found: list[RemoteRecord] = []
        for ticket, comments in by_ticket.items():
            async for raw in _cursor_listing(ctx, f"/api/v2/tickets/{ticket}/comments", {}, "comments"):
                if str(raw.get("id")) in comments:
                    found.append(ctx.to_record(comment_record(raw, ticket_id=int(ticket), created_at=None)))
        return found


@dataclass(frozen=True)
class DeletedTickets:
    """`GET /api/v2/deleted_tickets`: soft-deleted tickets, read whole on each deletion scan."""

    async def pages(self, ctx: StreamContext) -> AsyncIterator[Page]:
        batch: list[RemoteRecord] = []
        async for raw in _cursor_listing(ctx, "/api/v2/deleted_tickets", {}, "deleted_tickets"):
            batch.append(ctx.to_record(raw, deleted=True))
            if len(batch) == CURSOR_PAGE:
                yield Page(batch, None)
                batch = []
        if batch:
            yield Page(batch, None)
