"""Salesforce specifics beyond the conformance suite: SOQL injection, the login host, limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from connectors.kit.http import HttpKit
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from sync.store import Store
from sync.tables import connections, stream_states
from tests.support import (
    cached_ids,
    connect_salesforce,
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
