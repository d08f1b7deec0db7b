"""The kit's paginations and incremental strategies, each against a sandbox that pages the way its provider
does (shapes from shared/providers/{zendesk,stripe,pipedrive,mailchimp}.md)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.kit.declaration import Pagination, Stream, StreamContext
from connectors.kit.errors import PageBudgetSpent, PaginationStopped
from connectors.kit.page_budget import PageBudget
from connectors.kit.pagination import (
    CursorPagination,
    ListRequest,
    NextLinkPagination,
    OffsetPagination,
    StartingAfterPagination,
    link_target,
)
from connectors.kit.records import Page
from tests.connectors.kit_sessions import RecordingProvider, sandbox_session

# Seven records, three a page: pages of 3, 3 and 1.
RECORDS = [{"id": f"r{n}", "updated_at": f"2026-01-0{n}T00:00:00Z"} for n in range(1, 8)]
SIZE = 3


@dataclass
class Provider(RecordingProvider):
    """A sandbox answering every listing shape at once; it remembers the query of every request."""

    # Set to make every page name the same cursor, offset or URL again (a provider stuck on one page).
    stuck: bool = False
    # Set to make every page name a fresh cursor for ever.
    endless: bool = False

    def routes(self) -> list[Route]:
        return [
            Route("/zendesk/tickets", self.zendesk_cursor),
            Route("/zendesk/offset", self.zendesk_offset),
            Route("/stripe/customers", self.stripe),
            Route("/mailchimp/members", self.mailchimp),
            Route("/pipedrive/persons", self.pipedrive),
            Route("/linked", self.linked),
        ]

    def _window(self, start: int, size: int) -> tuple[list[dict[str, str]], bool]:
        if self.stuck:
            return RECORDS[:size], True
        if self.endless:
            return [{"id": f"x{start + n}", "updated_at": "2026-01-01T00:00:00Z"} for n in range(size)], True
        return RECORDS[start : start + size], start + size < len(RECORDS)

    async def zendesk_cursor(self, request: Request) -> Response:
        query = self.seen(request)
        start = int(query.get("page[after]", "c0").removeprefix("c").rstrip("x"))
        items, more = self._window(start, int(query["page[size]"]))
        after = f"c{start + len(items)}" if not self.stuck else "c0x"
        # The last page still names cursors; only `has_more` says it is the last.
        return JSONResponse({"tickets": items, "meta": {"has_more": more, "after_cursor": after, "before_cursor": "b"}})

    async def zendesk_offset(self, request: Request) -> Response:
        query = self.seen(request)
        page, size = int(query.get("page", "1")), int(query["per_page"])
        items, more = self._window((page - 1) * size, size)
        following = 1 if self.stuck else page + 1
        next_page = f"{request.base_url}zendesk/offset?page={following}&per_page={size}" if more else None
        return JSONResponse({"users": items, "next_page": next_page, "previous_page": None, "count": len(RECORDS)})

    async def stripe(self, request: Request) -> Response:
        query = self.seen(request)
        after = query.get("starting_after")
        start = 0 if after is None or self.stuck else int(after.lstrip("rx")) if self.endless else int(after[1:])
        items, more = self._window(start, int(query["limit"]))
        return JSONResponse({"object": "list", "url": "/v1/customers", "has_more": more, "data": items})

    async def mailchimp(self, request: Request) -> Response:
        query = self.seen(request)
        offset = 0 if self.stuck else int(query["offset"])
        items, _ = self._window(offset, int(query["count"]))
        total = 10**9 if self.endless else len(RECORDS)
        return JSONResponse({"members": items, "list_id": "l1", "total_items": total, "_links": []})

    async def pipedrive(self, request: Request) -> Response:
        query = self.seen(request)
        start, limit = int(query["start"]), int(query["limit"])
        items, more = self._window(start, limit)
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start if self.stuck else start + len(items)
        return JSONResponse({"success": True, "data": items, "additional_data": {"pagination": pagination}})

    async def linked(self, request: Request) -> Response:
        query = self.seen(request)
        page = int(query.get("page", "1"))
        items, more = self._window((page - 1) * SIZE, SIZE)
        following = 1 if self.stuck else page + 1
        links = [f'<{request.base_url}linked?page=1>; rel="first"']
        if more:
            links.append(f'<{request.base_url}linked?page={following}>; rel="next"')
        return JSONResponse(items, headers={"Link": ", ".join(links)})


PAGINATIONS: dict[str, tuple[str, Pagination]] = {
    "zendesk cursor": (
        "/zendesk/tickets",
        CursorPagination(
            records="tickets",
            next_cursor="meta.after_cursor",
            cursor_param="page[after]",
            size_param="page[size]",
            page_size=SIZE,
            has_more="meta.has_more",
        ),
    ),
    "zendesk next_page": ("/zendesk/offset", NextLinkPagination(records="users", page_size=SIZE)),
    "stripe starting_after": ("/stripe/customers", StartingAfterPagination(page_size=SIZE)),
    "mailchimp total_items": (
        "/mailchimp/members",
        OffsetPagination(records="members", page_size=SIZE, total="total_items"),
    ),
    "pipedrive next_start": (
        "/pipedrive/persons",
        OffsetPagination(
            records="data",
            offset_param="start",
            size_param="limit",
            page_size=SIZE,
            more="additional_data.pagination.more_items_in_collection",
            next_offset="additional_data.pagination.next_start",
        ),
    ),
    "link header": ("/linked", NextLinkPagination(records="", next_url=None, size_param=None)),
}


@contextlib.asynccontextmanager
async def sandbox(provider: Provider) -> AsyncIterator[Callable[..., StreamContext]]:
    async with sandbox_session(provider.app()) as session:

        def context(path: str, pagination: Pagination, max_pages: int | None = None, **stream: Any) -> StreamContext:
            return StreamContext(
                session=session,
                stream=Stream(name="things", path=path, pagination=pagination, updated_at="updated_at", **stream),
                page_budget=PageBudget(max_pages),
            )

        yield context


async def collect(pages: AsyncIterator[Page]) -> list[Page]:
    return [page async for page in pages]


def ids(pages: list[Page]) -> list[str]:
    return [record.remote_id for page in pages for record in page.records]


@pytest.mark.parametrize("shape", list(PAGINATIONS))
async def test_each_pagination_reads_every_record_once_and_resumes_after_any_page(shape: str) -> None:
    path, pagination = PAGINATIONS[shape]
    provider = Provider()
    async with sandbox(provider) as context:
        pages = await collect(pagination.pages(context(path, pagination), None))
        assert ids(pages) == [r["id"] for r in RECORDS]
        assert [len(p.records) for p in pages] == [3, 3, 1]
        assert pages[-1].cursor is None and all(p.cursor for p in pages[:-1])
        # A run cut short after the first page resumes with the second, without asking for the first again.
        asked = len(provider.queries)
        resumed = await collect(pagination.pages(context(path, pagination), pages[0].cursor))
        assert ids(resumed) == [r["id"] for r in RECORDS[SIZE:]]
        assert len(provider.queries) - asked == 2


async def pages_before(error: type[Exception], provider: Provider, shape: str, **context: Any) -> list[Page]:
    """The pages a pagination of `shape` yields before it raises `error`."""
    path, pagination = PAGINATIONS[shape]
    seen: list[Page] = []
    async with sandbox(provider) as contexts:
        with pytest.raises(error):
            async for page in pagination.pages(contexts(path, pagination, **context), None):
                seen.append(page)
    return seen


# Mailchimp's offsets are the client's own count, so a provider cannot name one again.
@pytest.mark.parametrize("shape", [s for s in PAGINATIONS if s != "mailchimp total_items"])
async def test_a_provider_naming_the_same_page_again_is_stopped_after_the_pages_before(shape: str) -> None:
    provider = Provider(stuck=True)
    seen = await pages_before(PaginationStopped, provider, shape)
    assert 1 <= len(seen) <= 2 and len(provider.queries) <= 3


@pytest.mark.parametrize("shape", list(PAGINATIONS))
async def test_a_provider_paging_for_ever_is_stopped_by_the_run_budget(shape: str) -> None:
    provider = Provider(endless=True)
    seen = await pages_before(PageBudgetSpent, provider, shape, max_pages=5)
    assert len(seen) == 5 and len(provider.queries) == 5


async def test_listing_parameters_go_with_or_without_the_stream_s_own() -> None:
    path, _ = PAGINATIONS["stripe starting_after"]
    provider = Provider()
    async with sandbox(provider) as context:
        own = StartingAfterPagination(page_size=SIZE, request=ListRequest(params={"expand[]": "data.customer"}))
        await collect(own.pages(context(path, own, params={"email": "a@b.c"}), None))
        assert provider.queries[0] == {"email": "a@b.c", "expand[]": "data.customer", "limit": "3"}
        provider.queries.clear()
        bare = StartingAfterPagination(page_size=SIZE, request=ListRequest(stream_params=False, deleted=True))
        pages = await collect(bare.pages(context(path, bare, params={"email": "a@b.c"}), None))
        assert provider.queries[0] == {"limit": "3"}
        assert all(record.deleted for page in pages for record in page.records)


def test_link_header_targets_are_read_by_relation() -> None:
    header = '<https://a.example/x?page=1>; rel="first", <https://a.example/x?page=3,4>; rel="last next"'
    assert link_target(header, "next") == "https://a.example/x?page=3,4"
    assert link_target(header, "first") == "https://a.example/x?page=1"
    assert link_target(header, "prev") is None
    assert link_target(None, "next") is None
