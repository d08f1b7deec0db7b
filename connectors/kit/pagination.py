"""Pagination strategies shared by connectors.

Each one names how a provider hands out its next page; they all walk through `walk_pages`, which asks the
run's page budget before each request (a repeated cursor or offset stops the walk, the budget bounds a
provider that pages for ever) and asks for the next page while the one in hand is mapped and stored.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from connectors.kit.declaration import Cursor, StreamContext
from connectors.kit.jsonpath import dig
from connectors.kit.records import Page

Token = TypeVar("Token")
HashableToken = TypeVar("HashableToken", bound=Hashable)


async def chained_pages(
    fetch: Callable[[Token | None], Awaitable[Any]], next_token: Callable[[Any], Token | None], first: Token | None
) -> AsyncIterator[tuple[Any, Token | None]]:
    """The bodies of a chain of pages, each with the token of the page after it (None on the last).

    The request for the next page goes out before a body is handed over, so the provider's latency
    overlaps the mapping (and, through the runner's prefetch, the storing) of the page in hand. A
    consumer that stops early leaves at most that one request, cancelled.
    """
    pending = asyncio.ensure_future(fetch(first))
    try:
        while True:
            body = await pending
            token = next_token(body)
            if token is not None:
                pending = asyncio.ensure_future(fetch(token))
                await asyncio.sleep(0)  # let the request go out now, not at the consumer's next await
            yield body, token
            if token is None:
                return
    finally:
        pending.cancel()  # nothing when it is done


async def walk_pages(
    ctx: StreamContext,
    fetch: Callable[[HashableToken | None], Awaitable[Any]],
    next_token: Callable[[Any], HashableToken | None],
    first: HashableToken | None,
    *,
    records: Callable[[Any], list[Any]],
    resume: Callable[[HashableToken], Cursor],
    deleted: bool = False,
) -> AsyncIterator[Page]:
    """The pages of one pagination, every request counted against the run's page budget: each page's
    records mapped through the stream, and the cursor (`resume(token)`) that resumes after it."""
    async for body, token in chained_pages(ctx.page_budget.chain().fetching(fetch), next_token, first):
        mapped = [ctx.to_record(item, deleted=deleted) for item in records(body)]
        yield Page(mapped, resume(token) if token is not None else None)


@dataclass(frozen=True)
class ListRequest:
    """What every listing sends besides its paging parameters."""

    # Parameters sent on every page, e.g. {"archived": "true"}.
    params: Mapping[str, Any] = field(default_factory=dict)
    # Whether the stream's declared and discovered parameters go along too.
    stream_params: bool = True
    # Whether the records listed are tombstones (a listing of deleted records).
    deleted: bool = False

    def query(self, ctx: StreamContext, **paging: Any) -> dict[str, Any]:
        base = ctx.params() if self.stream_params else {}
        return {**base, **self.params, **paging}


@dataclass(frozen=True)
class CursorPagination:
    """The next page's token sits in the body (`next_cursor`) and goes back as a query parameter.

    HubSpot: `paging.next.after` -> `after`. Zendesk's cursor pagination: `meta.after_cursor` ->
    `page[after]` with `page[size]`, and `meta.has_more` false on the last page (its cursor is still set).
    """

    records: str = "results"
    next_cursor: str = "paging.next.after"
    cursor_param: str = "after"
    size_param: str = "limit"
    page_size: int = 100
    # A body flag that is false on the last page, when the provider still names a cursor there.
    has_more: str | None = None
    request: ListRequest = ListRequest()

    def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        def next_token(body: Any) -> str | None:
            if self.has_more is not None and not dig(body, self.has_more):
                return None
            return dig(body, self.next_cursor) or None

        return _token_in_query(
            ctx, cursor, self.request, {self.size_param: self.page_size}, self.cursor_param, self.records, next_token
        )


@dataclass(frozen=True)
class StartingAfterPagination:
    """The next page starts after the last record's id, while the body says there is more (Stripe:
    `data`, `has_more`, `starting_after=<data[-1].id>`, `limit` 1-100; docs.stripe.com/api/pagination)."""

    records: str = "data"
    has_more: str = "has_more"
    id_path: str = "id"
    cursor_param: str = "starting_after"
    size_param: str = "limit"
    page_size: int = 100
    request: ListRequest = ListRequest()

    def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        def next_token(body: Any) -> str | None:
            items = dig(body, self.records) or []
            if not items or not dig(body, self.has_more):
                return None
            return str(dig(items[-1], self.id_path))

        return _token_in_query(
            ctx, cursor, self.request, {self.size_param: self.page_size}, self.cursor_param, self.records, next_token
        )


def _token_in_query(
    ctx: StreamContext,
    cursor: Cursor | None,
    request: ListRequest,
    paging: dict[str, Any],
    cursor_param: str,
    records: str,
    next_token: Callable[[Any], str | None],
) -> AsyncIterator[Page]:
    """The pages of a listing whose next page is asked for with a token in the query (none on the first)."""

    def fetch(token: str | None) -> Awaitable[Any]:
        query = request.query(ctx, **paging, **({cursor_param: token} if token else {}))
        return ctx.session.get_json(ctx.stream.path, query)

    return walk_pages(
        ctx,
        fetch,
        next_token,
        (cursor or {}).get("after"),
        records=lambda body: dig(body, records) or [],
        resume=lambda token: {"after": token},
        deleted=request.deleted,
    )


@dataclass(frozen=True)
class OffsetPagination:
    """Pages by position: `offset_param` counts records skipped, `size_param` asks for a page size.

    The end is known one of three ways, whichever the provider gives: a total (Mailchimp: `offset`,
    `count`, `total_items`), a more-flag with the next start (Pipedrive v1: `start`, `limit`,
    `additional_data.pagination.more_items_in_collection` and `.next_start`), or else a short page.
    An empty page always ends the walk.
    """

    records: str
    offset_param: str = "offset"
    size_param: str = "count"
    page_size: int = 100
    total: str | None = None
    more: str | None = None
    next_offset: str | None = None
    request: ListRequest = ListRequest()

    async def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        # Each body is paired with the offset it was asked at, so the next one can be worked out.
        async def fetch(offset: int | None) -> tuple[int, Any]:
            at = offset or 0
            query = self.request.query(ctx, **{self.offset_param: at, self.size_param: self.page_size})
            return at, await ctx.session.get_json(ctx.stream.path, query)

        def next_token(answer: tuple[int, Any]) -> int | None:
            at, body = answer
            count = len(dig(body, self.records) or [])
            if count == 0:
                return None
            if self.more is not None:
                if not dig(body, self.more):
                    return None
                given = dig(body, self.next_offset) if self.next_offset else None
                return int(given) if given is not None else at + count
            if self.total is not None:
                return at + count if at + count < int(dig(body, self.total) or 0) else None
            return at + count if count >= self.page_size else None

        async for page in walk_pages(
            ctx,
            fetch,
            next_token,
            (cursor or {}).get("offset"),
            records=lambda answer: dig(answer[1], self.records) or [],
            resume=lambda offset: {"offset": offset},
            deleted=self.request.deleted,
        ):
            yield page


@dataclass(frozen=True)
class NextLinkPagination:
    """The next page is a whole URL: a body field (`next_page`, Zendesk's offset pagination; null on the
    last page) or, with `next_url=None`, the `Link` header's `rel="next"` target (RFC 8288). The URL
    carries every parameter, so it is followed as given; the session refuses one naming another host.
    `records=""` reads a body that is the list itself, as link-header APIs often answer."""

    records: str
    next_url: str | None = "next_page"
    size_param: str | None = "per_page"
    page_size: int = 100
    request: ListRequest = ListRequest()

    async def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        async def fetch(url: str | None) -> tuple[str | None, Any]:
            if url is None:
                paging = {self.size_param: self.page_size} if self.size_param else {}
                response = await ctx.session.request("GET", ctx.stream.path, params=self.request.query(ctx, **paging))
            else:
                response = await ctx.session.request("GET", url)
            body = orjson.loads(response.content)
            if self.next_url is not None:
                return dig(body, self.next_url) or None, body
            return link_target(response.headers.get("link"), "next"), body

        async for page in walk_pages(
            ctx,
            fetch,
            lambda answer: answer[0],
            (cursor or {}).get("next"),
            records=lambda answer: (dig(answer[1], self.records) if self.records else answer[1]) or [],
            resume=lambda url: {"next": url},
            deleted=self.request.deleted,
        ):
            yield page


def link_target(header: str | None, relation: str) -> str | None:
    """The target of the first link in a `Link` header whose `rel` names `relation` (RFC 8288: links are
    comma-separated `<uri>; param=value` entries, and `rel` may hold several space-separated types)."""
    for match in _LINK.finditer(header or ""):
        for param in match.group(2).split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "rel" and relation in value.strip().strip('"').lower().split():
                return match.group(1)
    return None


# `<uri>` then its `; name=value` parameters (a quoted value may not hold `;` or `,` here, which no rel does).
_LINK = re.compile(r"<([^>]*)>((?:\s*;[^;,]*)*)")
