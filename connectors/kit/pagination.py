"""Pagination strategies shared by connectors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from connectors.kit.declaration import Cursor, StreamContext
from connectors.kit.jsonpath import dig
from connectors.kit.records import Page


@dataclass(frozen=True)
class CursorPagination:
    """The next page's token sits in the body (`next_cursor`) and goes back as a query parameter."""

    records: str = "results"
    next_cursor: str = "paging.next.after"
    cursor_param: str = "after"
    size_param: str = "limit"
    page_size: int = 100

    async def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        token = (cursor or {}).get("after")
        while True:
            params = ctx.params(**{self.size_param: self.page_size})
            if token:
                params[self.cursor_param] = token
            body = await ctx.session.get_json(ctx.stream.path, params)
            records = [ctx.stream.to_record(item) for item in dig(body, self.records) or []]
            token = dig(body, self.next_cursor)
            yield Page(records, {"after": token} if token else None)
            if not token:
                return
