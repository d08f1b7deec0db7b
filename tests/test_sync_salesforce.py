"""Salesforce specifics beyond the conformance suite: SOQL injection, the login host, limits, wide orgs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import orjson
import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors import get_connector
from connectors.kit.declaration import StreamContext
from connectors.kit.errors import PageBudgetSpent
from connectors.kit.http import HttpKit
from connectors.kit.page_budget import PageBudget
from connectors.kit.sandbox import serve_in_thread
from connectors.salesforce.query import API, QueryLimits, SoqlIncremental, query_url_bytes, select_records
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from connectors.salesforce.soql import select as soql_select
from connectors.salesforce.writes import SoqlLookup
from sync.cache.discovery import DiscoveryCache
from sync.storage.store import Store
from sync.storage.tables import connections, records, stream_states
from sync.tenancy.connections import connection_access
from tests.support import (
    cached_ids,
    connect_salesforce,
    make_streams_due,
    new_tenant,
    run_everything_due,
    sandbox_egress,
    stream_errors,
)

HOSTILE = "x' OR Name != '"


@pytest.fixture
def org() -> Iterator[tuple[SalesforceSandbox, str]]:
    sandbox = SalesforceSandbox(
        seed=4, size=SalesforceSize(contacts=30, leads=5, accounts=5, opportunities=5, users=2, tasks=5, notes=5)
    )
    with serve_sandbox(sandbox) as (login_url, _instance_url):
        yield sandbox, login_url


async def connect(store: Store, sandbox: SalesforceSandbox, login_url: str) -> tuple[object, object]:
    tenant = await new_tenant(store)
    return tenant, await connect_salesforce(store, tenant, sandbox, login_url)


async def test_a_hostile_cursor_value_stays_a_literal(
    store: Store, kit: HttpKit, org: tuple[SalesforceSandbox, str]
) -> None:
    sandbox, login_url = org
    _, connection_id = await connect(store, sandbox, login_url)
    async with store.engine.begin() as conn:
        await conn.execute(
            update(stream_states)
            .where(stream_states.c.connection_id == connection_id, stream_states.c.stream == "contacts")
            .values(cursor={"after_id": HOSTILE})
        )
    await run_everything_due(store, kit)
    # Had the quote closed the literal, `OR Name != ''` would have matched every contact. As one literal,
    # the whole string is the value compared with Id, and Salesforce refuses it as an id.
    error = (await stream_errors(store, connection_id))["contacts"]
    assert error is not None and f"invalid ID field: {HOSTILE}" in error
    assert await cached_ids(store, connection_id, "contacts") == set()
    assert await cached_ids(store, connection_id, "accounts") == sandbox.all_ids("Account")


async def test_tokens_come_from_the_login_host_and_data_from_the_instance(
    store: Store, kit: HttpKit, org: tuple[SalesforceSandbox, str]
) -> None:
    sandbox, login_url = org
    _, connection_id = await connect(store, sandbox, login_url)
    sandbox.expire_sessions()
    await run_everything_due(store, kit)
    assert await cached_ids(store, connection_id, "contacts") == sandbox.all_ids("Contact")
    assert sandbox.stats.token_refreshes == 1
    async with store.engine.connect() as conn:
        base_url = (
            await conn.execute(select(connections.c.base_url).where(connections.c.id == connection_id))
        ).scalar()
    assert base_url is None  # the instance comes from the token, not from configuration
    assert login_url != sandbox.instance_url


async def test_the_daily_allowance_stops_the_sync_with_a_clear_error(
    store: Store, org: tuple[SalesforceSandbox, str]
) -> None:
    sandbox, login_url = org
    _, connection_id = await connect(store, sandbox, login_url)
    sandbox.faults.daily_api_limit = 3
    patient = HttpKit(egress=sandbox_egress(), max_retries=1, backoff_base=0.01, backoff_max=0.02)
    try:
        await run_everything_due(store, patient)
    finally:
        await patient.aclose()
    errors = await stream_errors(store, connection_id)
    assert any(
        error and "REQUEST_LIMIT_EXCEEDED" not in error and "Limit" in error for error in errors.values()
    ) or any(error and "RateLimited" in error for error in errors.values())


# ---- a wide org: 500 Contact fields, whose SELECT does not fit in a URL ---------------------------

WIDE = SalesforceSize(contacts=40, leads=3, accounts=4, opportunities=3, users=2, tasks=3, notes=3, contact_fields=500)
COMPOSITE = "POST /services/data/v60.0/composite"


@pytest.fixture
def wide_org() -> Iterator[tuple[SalesforceSandbox, str]]:
    sandbox = SalesforceSandbox(seed=6, size=WIDE)
    with serve_sandbox(sandbox) as (login_url, _instance_url):
        yield sandbox, login_url


async def _contacts_raw(store: Store, connection_id: object) -> dict[str, dict[str, Any]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(records.c.remote_id, records.c.raw).where(
                records.c.connection_id == connection_id, records.c.stream == "contacts"
            )
        )
        return {row.remote_id: orjson.loads(row.raw) for row in rows}


async def _context(store: Store, kit: HttpKit, connection_id: Any) -> StreamContext:
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(connections).where(connections.c.id == connection_id))).one()
    stream = get_connector("salesforce").stream("contacts")
    ctx = await DiscoveryCache().context(kit.session(await connection_access(store, row)), stream, connection_id)
    ctx.page_budget = PageBudget(None)
    return ctx


def _canonical(raw: dict[str, Any]) -> bytes:
    return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)


async def test_a_wide_org_backfills_increments_and_reads_back_through_composite(
    store: Store, kit: HttpKit, wide_org: tuple[SalesforceSandbox, str]
) -> None:
    sandbox, login_url = wide_org
    _, connection_id = await connect(store, sandbox, login_url)
    await run_everything_due(store, kit)
    assert set((await stream_errors(store, connection_id)).values()) == {None}
    assert await cached_ids(store, connection_id, "contacts") == sandbox.all_ids("Contact")
    cached = await _contacts_raw(store, connection_id)
    some_id = min(cached)
    # Every field arrives, compound addresses with their components, as the record's own GET gives them.
    assert _canonical(cached[some_id]) == _canonical(sandbox.get("Contact", some_id))
    assert len(cached[some_id]) == 1 + 500  # attributes and every field
    with_address = [raw for raw in cached.values() if raw["MailingAddress"]]
    assert with_address and all(raw["MailingAddress"]["city"] == raw["MailingCity"] for raw in with_address)
    # Only the first page of each query went through Composite: one POST per stream, no 414 or 431.
    assert sandbox.stats.requests[COMPOSITE] == 1
    assert not {414, 431} & set(sandbox.stats.responses_by_status)

    changed = min(sandbox.all_ids("Contact") - {some_id})
    sandbox.update("Contact", changed, {"Marketing_Status__c": "Approved", "MailingCity": "Lyon"})
    sandbox.delete("Contact", some_id)
    await make_streams_due(store, connection_id)
    await run_everything_due(store, kit)
    assert set((await stream_errors(store, connection_id)).values()) == {None}
    assert some_id in await cached_ids(store, connection_id, "contacts", deleted=True)
    after = (await _contacts_raw(store, connection_id))[changed]
    assert after["Marketing_Status__c"] == "Approved" and after["MailingAddress"]["city"] == "Lyon"
    assert sandbox.stats.requests[COMPOSITE] == 2

    # The writeback read-back looks records up by Id with the same SELECT: the same raw.
    ctx = await _context(store, kit, connection_id)
    looked_up = await SoqlLookup("Contact").fetch(ctx, [changed])
    assert [_canonical(r.raw) for r in looked_up] == [_canonical(after)]
    assert sandbox.stats.requests[COMPOSITE] == 3


async def test_past_the_soql_length_limit_field_chunks_merge_by_id_into_the_same_records(
    store: Store, kit: HttpKit, wide_org: tuple[SalesforceSandbox, str]
) -> None:
    sandbox, login_url = wide_org
    _, connection_id = await connect(store, sandbox, login_url)
    ctx = await _context(store, kit, connection_id)
    fields = ctx.discovered_params["fields"]
    whole: list[dict[str, Any]] = []
    async for batch, _ in select_records(ctx, "queryAll", "Contact", fields, order_by="Id ASC"):
        whole.extend(batch)
    # A statement limit of 8,000 characters splits the 500 fields (about 15,500 characters) into several queries.
    short = QueryLimits(soql_chars=8_000)
    chunked: list[dict[str, Any]] = []
    before = sandbox.stats.requests[COMPOSITE]
    async for batch, _ in select_records(ctx, "queryAll", "Contact", fields, order_by="Id ASC", limits=short):
        chunked.extend(batch)
    assert [orjson.dumps(r) for r in chunked] == [orjson.dumps(r) for r in whole]  # same fields, same order
    assert sandbox.stats.requests[COMPOSITE] - before > 1
    # The incremental query too: deletions and all.
    sandbox.delete("Contact", whole[0]["Id"])
    incremental = dataclasses.replace(SoqlIncremental("Contact"), limits=short)
    cursor = incremental.initial_cursor(datetime(2025, 12, 1, tzinfo=UTC))
    seen = {r.remote_id: r for page in [p async for p in incremental.pages(ctx, cursor)] for r in page.records}
    assert seen[whole[0]["Id"]].deleted


def test_a_too_long_query_url_gets_salesforces_414_and_a_long_uri_with_headers_431(
    wide_org: tuple[SalesforceSandbox, str],
) -> None:
    sandbox, _ = wide_org
    fields = [f.name for f in sandbox.org.schema.sobjects["Contact"].fields]
    soql = soql_select(fields, "Contact")
    assert query_url_bytes("query", soql) > 16_384
    token = sandbox.mint_tokens()["access_token"]
    with httpx2.Client(base_url=sandbox.instance_url, headers={"Authorization": f"Bearer {token}"}) as api:
        used = sandbox.usage.used()
        too_long = api.get(f"{API}/query", params={"q": soql})
        assert too_long.status_code == 414
        assert too_long.text == "<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>"
        # Under the limit by itself, over it with the headers.
        short_enough = soql_select(fields[:400], "Contact")
        url_bytes = query_url_bytes("query", short_enough)
        assert url_bytes < 16_384
        padded = api.get(f"{API}/query", params={"q": short_enough}, headers={"X-Pad": "x" * (16_384 - url_bytes)})
        assert padded.status_code == 431
        assert padded.text == "<h1>Bad Message 431</h1><pre>reason: Request Header Fields Too Large</pre>"
        assert api.get(f"{API}/query", params={"q": short_enough}).status_code == 200
        assert sandbox.usage.used() == used + 1  # the front end's refusals use no API allowance


async def test_a_split_query_whose_follow_up_never_ends_stops_at_the_page_budget(
    store: Store, kit: HttpKit, org: tuple[SalesforceSandbox, str]
) -> None:
    """Past the SOQL length limit the other field chunks come by Id; an instance that answers those with
    `done: false` and ever new locators is stopped by the run's page budget, never followed for ever."""
    sandbox, login_url = org
    _, connection_id = await connect(store, sandbox, login_url)
    followed: list[str] = []

    def result(records: list[dict[str, Any]], locator: str | None) -> dict[str, Any]:
        more = {"nextRecordsUrl": f"{API}/query/{locator}"} if locator else {}
        return {"totalSize": len(records), "done": locator is None, "records": records, **more}

    async def composite(request: Request) -> Response:
        answers = []
        for sub in orjson.loads(await request.body())["compositeRequest"]:
            first_chunk = "WHERE Id IN" not in sub["url"].replace("+", " ").replace("%20", " ")
            body = result([{"Id": "003000000000001AAA", "IsDeleted": False}], None if first_chunk else "01g-1")
            answers.append({"body": body, "httpHeaders": {}, "httpStatusCode": 200, "referenceId": sub["referenceId"]})
        return JSONResponse({"compositeResponse": answers})

    async def query_more(request: Request) -> Response:
        followed.append(request.path_params["locator"])
        return JSONResponse(result([{"Id": "003000000000001AAA"}], f"01g-{len(followed) + 1}"))

    endless = Starlette(
        routes=[
            Route(f"{API}/composite", composite, methods=["POST"]),
            Route(f"{API}/query/{{locator}}", query_more, methods=["GET"]),
        ]
    )
    ctx = await _context(store, kit, connection_id)
    with serve_in_thread(endless) as url:
        hostile = dataclasses.replace(
            ctx.session.access, base_url=url, base_url_key=None, key=f"{ctx.session.access.key}-endless"
        )
        # About 6,000 characters of fields: over the 5,000 allowed below, so the query splits.
        fields = ["Id", "IsDeleted", *(f"Loyalty_Program_Field_{n:03}__c" for n in range(200))]
        short = QueryLimits(soql_chars=5_000)
        endless_ctx = StreamContext(kit.session(hostile), ctx.stream, {"fields": fields}, PageBudget(5))
        with pytest.raises(PageBudgetSpent):
            async for _ in select_records(endless_ctx, "queryAll", "Contact", fields, limits=short):
                pass
    assert 0 < len(followed) <= 5
