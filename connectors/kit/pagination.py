"""Pagination strategies shared by connectors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from connectors.kit.declaration import Cursor, StreamContext
from connectors.kit.jsonpath import dig
from connectors.kit.records import Page

Token = TypeVar("Token")


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


@dataclass(frozen=True)
class CursorPagination:
    """The next page's token sits in the body (`next_cursor`) and goes back as a query parameter."""

    records: str = "results"
    next_cursor: str = "paging.next.after"
    cursor_param: str = "after"
    size_param: str = "limit"
    page_size: int = 100

    async def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        def fetch(token: str | None) -> Awaitable[Any]:
            params = ctx.params(**{self.size_param: self.page_size})
            if token:
                params[self.cursor_param] = token
            return ctx.session.get_json(ctx.stream.path, params)

        def next_token(body: Any) -> str | None:
            return dig(body, self.next_cursor) or None

        async for body, token in chained_pages(
            ctx.page_budget.chain().fetching(fetch), next_token, (cursor or {}).get("after")
        ):
            records = [ctx.to_record(item) for item in dig(body, self.records) or []]
            yield Page(records, {"after": token} if token else None)
