"""Reading Salesforce: describe for the field list, SOQL for the records.

Backfill walks each object in Id order, so the cursor is the last Id committed and a resumed backfill
starts a fresh query after it (query locators expire; Ids do not). Incremental runs ask `queryAll` for
everything whose SystemModstamp moved since the cursor, which brings deletions (IsDeleted) in the same pass.

Bounded URLs. A query selects every described field, and a wide org's SOQL does not fit in a URL:
Salesforce refuses a URI over 16,384 bytes (414) or a URI and headers over it together (431), and
recommends URIs under 2,000 characters (Help article 000386264). A query whose URL fits that budget is a
plain `GET query?q=`; a longer one goes in the body of a Composite request (`POST /composite`, one query
subrequest), which Salesforce itself recommends for long SOQL and counts as one API call. Its answer
is the query's own first page; the following pages are plain GETs of `nextRecordsUrl`, which is short.
Composite costs one request a page, as a short query does; splitting the fields into chunks that each
fit a URL and merging them by Id costs a request per chunk and per group of Ids (measured in
tests/benchmarks/salesforce_wide.py). Chunks remain for what Composite cannot carry: a SOQL statement
over Salesforce's 100,000-character limit (help article 000386440 advises splitting the fields).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx2
import orjson

from connectors.kit.declaration import Cursor, Stream, StreamContext
from connectors.kit.errors import ProviderError
from connectors.kit.http import ProviderSession, request_target_bytes
from connectors.kit.pagination import chained_pages
from connectors.kit.records import Page
from connectors.kit.strategies import UpdatedSince
from connectors.salesforce.errors import parse_error
from connectors.salesforce.soql import quote, select

API_VERSION = "60.0"
API = f"/services/data/v{API_VERSION}"
# Binary fields can only be read one record at a time. Compound fields (MailingAddress, a geolocation)
# are selected with their components, as the record's own GET returns both (API v30+).
UNSELECTABLE = frozenset({"base64"})
# Fields the sync reads from every record: the first chunk of a split query carries them.
KEY_FIELDS = ("Id", "IsDeleted", "SystemModstamp")
# Composite takes at most 5 query subrequests in one request.
COMPOSITE_QUERIES = 5
# Ids per `Id IN (...)` when the rest of a split query's fields are fetched.
IDS_PER_QUERY = 200
# The parameter the incremental hands the SOQL listing its SystemModstamp bound in.
SINCE = "since"


@dataclass(frozen=True)
class QueryLimits:
    """How long a query may be before it changes form."""

    # A plain GET when the whole query URL is within this many bytes (Salesforce's recommended maximum).
    url_bytes: int = 2_000
    # Salesforce's default maximum SOQL statement length.
    soql_chars: int = 100_000
    # Longer queries in a Composite body; False splits them into field chunks that each fit `url_bytes`.
    composite: bool = True


LIMITS = QueryLimits()


@dataclass(frozen=True)
class DescribeFields:
    """Select every field the org defines for the object, custom `__c` fields included."""

    sobject: str

    async def params(self, session: ProviderSession, stream: Stream) -> dict[str, Any]:
        body = await session.get_json(f"{API}/sobjects/{self.sobject}/describe")
        return {"fields": [f["name"] for f in body["fields"] if f.get("type") not in UNSELECTABLE]}


def query_url_bytes(resource: str, soql: str) -> int:
    """The length of `GET {API}/{resource}?q=...` as sent, before the host."""
    return request_target_bytes(f"{API}/{resource}", {"q": soql})


async def composite_queries(session: ProviderSession, queries: Sequence[tuple[str, str]]) -> list[Any]:
    """The first page of each (resource, SOQL), sent in Composite requests of up to five queries each.
    A refused subrequest raises the error the same query would have raised as a GET."""
    answers: list[Any] = []
    for start in range(0, len(queries), COMPOSITE_QUERIES):
        group = queries[start : start + COMPOSITE_QUERIES]
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {"method": "GET", "url": f"{API}/{resource}?{urlencode({'q': soql})}", "referenceId": f"q{i}"}
                for i, (resource, soql) in enumerate(group)
            ],
        }
        answer = await session.post_json(f"{API}/composite", body)
        results = {result.get("referenceId"): result for result in answer.get("compositeResponse", [])}
        for i in range(len(group)):
            result = results.get(f"q{i}")
            if result is None:
                raise ProviderError("Salesforce's composite answer lacks a query's result")
            status = int(result.get("httpStatusCode", 500))
            if status >= 400:
                raise parse_error(httpx2.Response(status, content=orjson.dumps(result.get("body"))))
            answers.append(result.get("body"))
    return answers


async def first_page(ctx: StreamContext, resource: str, soql: str, limits: QueryLimits) -> Any:
    if query_url_bytes(resource, soql) <= limits.url_bytes or not limits.composite:
        return await ctx.session.get_json(f"{API}/{resource}", {"q": soql})
    (body,) = await composite_queries(ctx.session, [(resource, soql)])
    return body


async def run_query(
    ctx: StreamContext, resource: str, soql: str, limits: QueryLimits = LIMITS
) -> AsyncIterator[tuple[list[dict[str, Any]], bool]]:
    """Each batch of a SOQL query and whether it is the last, following `nextRecordsUrl` (fetched ahead)."""

    def fetch(next_url: str | None) -> Awaitable[Any]:
        return ctx.session.get_json(next_url) if next_url else first_page(ctx, resource, soql, limits)

    def next_url(body: Any) -> str | None:
        return None if body.get("done", True) else body.get("nextRecordsUrl") or None

    async for body, following in chained_pages(ctx.page_budget.chain().fetching(fetch), next_url, None):
        yield body.get("records", []), following is None


def _fits(resource: str, soql: str, limits: QueryLimits) -> bool:
    if len(soql) > limits.soql_chars:
        return False
    return limits.composite or query_url_bytes(resource, soql) <= limits.url_bytes


def _id_list(count: int) -> str:
    """The longest `Id IN (...)` a follow-up query can carry, for measuring."""
    return f"Id IN ({', '.join([quote('0' * 18)] * count)})"


def field_chunks(
    fields: Sequence[str], sobject: str, where: str | None, order_by: str | None, limits: QueryLimits
) -> list[list[str]]:
    """The fields in chunks whose queries fit the limits: the first (with the key fields) under `where`
    and `order_by`, the others with `Id` under an `Id IN (...)` of IDS_PER_QUERY Ids. One chunk when the
    whole query fits."""
    if _fits("queryAll", select(fields, sobject, where, order_by), limits):
        return [list(fields)]
    keys = [f for f in KEY_FIELDS if f in fields]
    rest = [f for f in fields if f not in keys]
    chunks: list[list[str]] = [keys]
    follow_where = _id_list(IDS_PER_QUERY)
    for name in rest:
        chunk = chunks[-1]
        if len(chunks) == 1:
            fits = _fits("queryAll", select([*chunk, name], sobject, where, order_by), limits)
        else:
            fits = _fits("queryAll", select([*chunk, name], sobject, follow_where), limits)
        if not fits:
            chunk = ["Id"]
            chunks.append(chunk)
            if not _fits("queryAll", select([*chunk, name], sobject, follow_where), limits):
                raise ProviderError(f"Salesforce field {name} does not fit in a query within the URL limit")
        chunk.append(name)
    return chunks


async def select_records(
    ctx: StreamContext,
    resource: str,
    sobject: str,
    fields: Sequence[str],
    where: str | None = None,
    order_by: str | None = None,
    limits: QueryLimits = LIMITS,
) -> AsyncIterator[tuple[list[dict[str, Any]], bool]]:
    """The records a SELECT of `fields` would give, batch by batch (with whether it is the last), as one
    query when it fits, otherwise as field chunks merged by Id: the first chunk walks the records, and
    each batch's other fields come by Id through queryAll (so a record deleted meanwhile is still found).
    Each record's fields are in `fields` order, as the single query would give them."""
    chunks = field_chunks(fields, sobject, where, order_by, limits)
    if len(chunks) == 1:
        async for batch, done in run_query(ctx, resource, select(fields, sobject, where, order_by), limits):
            yield batch, done
        return
    async for batch, done in run_query(ctx, resource, select(chunks[0], sobject, where, order_by), limits):
        yield await _completed(ctx, batch, chunks[1:], fields, sobject, limits), done


async def _completed(
    ctx: StreamContext,
    batch: list[dict[str, Any]],
    chunks: list[list[str]],
    fields: Sequence[str],
    sobject: str,
    limits: QueryLimits,
) -> list[dict[str, Any]]:
    ids = [str(record["Id"]) for record in batch]
    queries = [
        (
            "queryAll",
            select(chunk, sobject, f"Id IN ({', '.join(quote(i) for i in ids[start : start + IDS_PER_QUERY])})"),
        )
        for chunk in chunks
        for start in range(0, len(ids), IDS_PER_QUERY)
    ]
    found: dict[str, dict[str, Any]] = {i: {} for i in ids}
    if limits.composite:
        firsts = await composite_queries(ctx.session, queries)
    else:
        firsts = [await ctx.session.get_json(f"{API}/{resource}", {"q": soql}) for resource, soql in queries]
    for body in firsts:
        # Counted against the run's page budget: a provider that never says `done` cannot hold the run.
        chain = ctx.page_budget.chain()
        while True:
            for record in body.get("records", []):
                found.setdefault(str(record["Id"]), {}).update(record)
            if body.get("done", True) or not body.get("nextRecordsUrl"):
                break
            chain.follow(body["nextRecordsUrl"])
            body = await ctx.session.get_json(body["nextRecordsUrl"])
    merged = []
    for record in batch:
        parts = {**found[str(record["Id"])], **record}
        # A record missing from a chunk was purged between the queries: it is gone, not incomplete.
        if all(name in parts for name in fields):
            merged.append({"attributes": record.get("attributes"), **{name: parts[name] for name in fields}})
    return merged


@dataclass(frozen=True)
class SoqlBackfill:
    sobject: str
    limits: QueryLimits = LIMITS

    async def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        after_id = (cursor or {}).get("after_id")
        where = f"Id > {quote(after_id)}" if after_id else None
        fields = ctx.discovered_params["fields"]
        async for batch, done in select_records(ctx, "query", self.sobject, fields, where, "Id ASC", self.limits):
            records = [ctx.to_record(raw) for raw in batch]
            if batch:
                after_id = str(batch[-1]["Id"])
            yield Page(records, None if done else {"after_id": after_id})


@dataclass(frozen=True)
class SoqlChanges:
    """Every record whose SystemModstamp is at or after the instant in the `since` parameter, oldest change
    first, deletions (IsDeleted) included: queryAll sees the recycle bin."""

    sobject: str
    limits: QueryLimits = LIMITS

    async def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]:
        where = f"SystemModstamp >= {ctx.discovered_params[SINCE]}"
        fields = ctx.discovered_params["fields"]
        order_by = "SystemModstamp ASC, Id ASC"
        async for batch, done in select_records(ctx, "queryAll", self.sobject, fields, where, order_by, self.limits):
            records = [ctx.to_record(raw, deleted=bool(raw.get("IsDeleted"))) for raw in batch]
            # Resumed by the incremental from the newest change stored, so a page needs no place of its own.
            yield Page(records, None if done else {})


@dataclass(frozen=True)
class SoqlIncremental:
    """Changes since the cursor by SystemModstamp, deletions included: the kit's `UpdatedSince` over
    `SoqlChanges`, resumed from the newest change stored when a run is cut short (locators expire).

    `overlap` re-reads a short window each run: a record saved in a long transaction can commit with a
    SystemModstamp older than records we already saw. The cache's content hash drops the repeats.
    """

    sobject: str
    overlap: timedelta = timedelta(minutes=2)
    limits: QueryLimits = LIMITS

    @property
    def updated_since(self) -> UpdatedSince:
        return UpdatedSince(
            SoqlChanges(self.sobject, self.limits),
            SINCE,
            "iso_millis",
            overlap=self.overlap,
            modified_at="SystemModstamp",
            resume_from_newest=True,
        )

    def initial_cursor(self, backfill_started_at: datetime) -> Cursor:
        return self.updated_since.initial_cursor(backfill_started_at)

    def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        return self.updated_since.pages(ctx, cursor)
