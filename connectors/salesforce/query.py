"""Reading Salesforce: describe for the field list, SOQL for the records.

Backfill walks each object in Id order, so the cursor is the last Id committed and a resumed backfill
starts a fresh query after it (query locators expire; Ids do not). Incremental runs ask `queryAll` for
everything whose SystemModstamp moved since the cursor, which brings deletions (IsDeleted) in the same pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.kit.convert import iso_millis, parse_datetime
from connectors.kit.declaration import Cursor, Stream, StreamContext
from connectors.kit.http import ProviderSession
from connectors.kit.pagination import chained_pages
from connectors.kit.records import Page
from connectors.salesforce.soql import datetime_literal, quote, select

API = "/services/data/v60.0"
# Compound and binary fields cannot be selected with the rest (their parts are, and are).
UNSELECTABLE = frozenset({"address", "location", "base64"})


@dataclass(frozen=True)
class DescribeFields:
    """Select every field the org defines for the object, custom `__c` fields included."""

    sobject: str

    async def params(self, session: ProviderSession, stream: Stream) -> dict[str, Any]:
        body = await session.get_json(f"{API}/sobjects/{self.sobject}/describe")
        return {"fields": [f["name"] for f in body["fields"] if f.get("type") not in UNSELECTABLE]}


async def run_query(ctx: StreamContext, resource: str, soql: str) -> AsyncIterator[tuple[list[dict[str, Any]], bool]]:
    """Each batch of a SOQL query and whether it is the last, following `nextRecordsUrl` (fetched ahead)."""

    def fetch(next_url: str | None) -> Awaitable[Any]:
        return ctx.session.get_json(next_url) if next_url else ctx.session.get_json(f"{API}/{resource}", {"q": soql})

    def next_url(body: Any) -> str | None:
        return None if body.get("done", True) else body.get("nextRecordsUrl") or None

    async for body, following in chained_pages(ctx.page_budget.chain().fetching(fetch), next_url, None):
        yield body.get("records", []), following is None


@dataclass(frozen=True)
class SoqlBackfill:
    sobject: str

    async def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        after_id = (cursor or {}).get("after_id")
        soql = select(
            ctx.discovered_params["fields"],
            self.sobject,
            where=f"Id > {quote(after_id)}" if after_id else None,
            order_by="Id ASC",
        )
        async for batch, done in run_query(ctx, "query", soql):
            records = [ctx.to_record(raw) for raw in batch]
            if records:
                after_id = records[-1].remote_id
            yield Page(records, None if done else {"after_id": after_id})


@dataclass(frozen=True)
class SoqlIncremental:
    """Changes since the cursor by SystemModstamp, deletions included.

    `overlap` re-reads a short window each run: a record saved in a long transaction can commit with a
    SystemModstamp older than records we already saw. The cache's content hash drops the repeats.
    """

    sobject: str
    overlap: timedelta = timedelta(minutes=2)

    def initial_cursor(self, backfill_started_at: datetime) -> Cursor:
        return {"since": iso_millis(backfill_started_at - self.overlap)}

    async def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        since = parse_datetime(cursor["since"])
        assert since is not None
        soql = select(
            ctx.discovered_params["fields"],
            self.sobject,
            where=f"SystemModstamp >= {datetime_literal(since)}",
            order_by="SystemModstamp ASC, Id ASC",
        )
        newest = since
        async for batch, done in run_query(ctx, "queryAll", soql):
            records = [ctx.to_record(raw, deleted=bool(raw.get("IsDeleted"))) for raw in batch]
            for raw in batch:
                stamp = parse_datetime(raw.get("SystemModstamp"))
                if stamp is not None and stamp > newest:
                    newest = stamp
            resume_from = newest - self.overlap if done else newest
            yield Page(records, {"since": iso_millis(resume_from)}, high_water=newest)
