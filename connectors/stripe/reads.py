"""Reading Stripe objects: listings with `limit=100` and `starting_after`, objects by id, and the invoice
lines a listing leaves out.

An invoice embeds its first lines only (`lines.has_more`); the rest are read from `/v1/invoices/{id}/lines`,
100 a request, so a stored invoice always holds all its lines, however it was read (listing, event, lookup).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from connectors.kit.declaration import Cursor, StreamContext
from connectors.kit.errors import ProviderError
from connectors.kit.pagination import ListRequest, StartingAfterPagination
from connectors.kit.records import Page, RemoteRecord

PAGE_SIZE = 100


def listing(params: Mapping[str, Any] | None = None) -> StartingAfterPagination:
    return StartingAfterPagination(page_size=PAGE_SIZE, request=ListRequest(params=dict(params or {})))


async def complete_lines(ctx: StreamContext, invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice with every line, read past the embedded ones while Stripe says there are more."""
    lines = invoice.get("lines")
    if not isinstance(lines, dict) or not lines.get("has_more") or not invoice.get("id"):
        return invoice
    data = list(lines.get("data") or [])
    path = f"/v1/invoices/{quote(str(invoice['id']), safe='')}/lines"
    more = True
    while more and data:
        body = await ctx.session.get_json(path, {"limit": PAGE_SIZE, "starting_after": data[-1]["id"]})
        data.extend(body.get("data") or [])
        more = bool(body.get("has_more")) and bool(body.get("data"))
    return {**invoice, "lines": {**lines, "data": data, "has_more": False}}


@dataclass(frozen=True)
class InvoiceListing:
    """Invoices listed newest first, each completed with the lines its embedded list left out."""

    pages_of: StartingAfterPagination = field(default_factory=listing)

    async def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        async for page in self.pages_of.pages(ctx, cursor):
            page.records = [await _completed(ctx, record) for record in page.records]
            yield page


async def _completed(ctx: StreamContext, record: RemoteRecord) -> RemoteRecord:
    lines = record.raw.get("lines")
    if not isinstance(lines, dict) or not lines.get("has_more"):
        return record
    return ctx.to_record(await complete_lines(ctx, record.raw))


@dataclass(frozen=True)
class ById:
    """`GET <path>/{id}` for each id (Stripe reads no batch of ids), with the listing's `expand`; an id
    Stripe does not know, or a deleted object's stub (`"deleted": true`), is left out."""

    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    invoices: bool = False

    async def fetch(self, ctx: StreamContext, remote_ids: Sequence[str]) -> list[RemoteRecord]:
        found: list[RemoteRecord] = []
        for remote_id in dict.fromkeys(remote_ids):
            raw = await self.read(ctx, remote_id)
            if raw is not None:
                found.append(ctx.to_record(raw))
        return found

    async def read(self, ctx: StreamContext, remote_id: str) -> dict[str, Any] | None:
        try:
            raw = await ctx.session.get_json(f"{self.path}/{quote(remote_id, safe='')}", dict(self.params))
        except ProviderError as error:
            if error.status == 404:
                return None
            raise
        if not isinstance(raw, dict) or raw.get("deleted") is True:
            return None
        return await complete_lines(ctx, raw) if self.invoices else raw
