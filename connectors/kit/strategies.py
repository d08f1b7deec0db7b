"""Incremental and deletion strategies that several providers share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from connectors.kit.declaration import Cursor, Pagination, StreamContext
from connectors.kit.records import Page


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
