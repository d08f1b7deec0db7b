"""HubSpot's list reads with every property the account defines, in URLs of bounded length.

The list API takes the properties to return in its query string, and a real account has hundreds of
them: HubSpot answers 414 once the URL passes about 16 KB. When the full list fits `URL_BUDGET_BYTES`,
one GET per page reads everything. Otherwise the GET asks for ids and associations only and a `batch/read`
(properties in its JSON body, up to 100 ids) brings the properties, merged by id into exactly what the
list would have answered. That costs two requests a page whatever the width. Splitting the properties
over several list pagings merged by id costs one request a page per chunk, as many or more as the width
grows (tests/benchmarks/hubspot_wide.py measures both), and can merge a record's chunks from different
moments into a version that never existed; one batch read answers with one version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

from connectors.hubspot.search import complete_listed_associations
from connectors.hubspot.writes import BATCH_READ_LIMIT
from connectors.kit.declaration import Cursor, StreamContext
from connectors.kit.jsonpath import dig
from connectors.kit.pagination import chained_pages
from connectors.kit.records import Page

# Half the ~16 KB HubSpot was measured to accept, and the size at which other integrators' URLs began
# to fail: room for whatever proxies stand between.
URL_BUDGET_BYTES = 8_000
# Room for the page cursor, which is short (an encoded id) but not known in advance.
CURSOR_ALLOWANCE = "x" * 64


@dataclass(frozen=True)
class PropertiesListing:
    """Pages of the list API with every discovered property, never in a URL over `budget` bytes, and every
    association, even past the 100 per target type the list answers with."""

    object_type: str
    page_size: int = 100
    budget: int = URL_BUDGET_BYTES

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= BATCH_READ_LIMIT:
            raise ValueError(f"page_size must be between 1 and {BATCH_READ_LIMIT}, the batch read limit")

    async def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        names: list[str] = list(ctx.discovered_params.get("properties", []))
        base = {**ctx.stream.params, "limit": self.page_size}
        everything = {**base, "properties": ",".join(names)} if names else base
        one_request = (
            ctx.session.request_target_bytes(ctx.stream.path, {**everything, "after": CURSOR_ALLOWANCE}) <= self.budget
        )

        def fetch(token: str | None) -> Awaitable[Any]:
            after = {"after": token} if token else {}
            if one_request:
                return ctx.session.get_json(ctx.stream.path, {**everything, **after})
            return self._ids_then_properties(ctx, {**base, "properties": "hs_object_id", **after}, names)

        async for body, token in chained_pages(
            ctx.page_budget.chain().fetching(fetch), _next_after, (cursor or {}).get("after")
        ):
            results: list[dict[str, Any]] = body.get("results") or []
            await complete_listed_associations(ctx, self.object_type, results)
            records = [ctx.to_record(raw) for raw in results]
            yield Page(records, {"after": token} if token else None)

    async def _ids_then_properties(self, ctx: StreamContext, params: dict[str, Any], names: list[str]) -> Any:
        listed = await ctx.session.get_json(ctx.stream.path, params)
        results: list[dict[str, Any]] = listed.get("results") or []
        if not results:
            return listed
        read = await ctx.session.post_json(
            f"{ctx.stream.path}/batch/read",
            {"properties": names, "inputs": [{"id": str(raw["id"])} for raw in results]},
        )
        full = {str(raw["id"]): raw for raw in read.get("results") or []}
        merged = []
        for raw in results:
            record = full.get(str(raw["id"]))
            if record is None:  # archived between the two requests: the deletion scan reports it
                continue
            if "associations" in raw:
                record["associations"] = raw["associations"]
            merged.append(record)
        return {**listed, "results": merged}


def _next_after(body: Any) -> str | None:
    return dig(body, "paging.next.after") or None
