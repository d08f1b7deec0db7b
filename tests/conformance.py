"""The conformance suite every connector passes against its sandbox, on SQLite and PostgreSQL.

Every registered connector gets it without wiring: tests/connectors/test_conformance.py runs it once per
`SandboxEntry` (connectors/kit/registry.py), with the driver the entry's `conformance` builds.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pytest
import pytest_asyncio
from sqlalchemy import select, update

from connectors import get_connector, sandbox_entries
from connectors.kit.http import HttpKit
from connectors.kit.jsonpath import dig
from connectors.kit.registry import SandboxDriver, Storm
from sync.storage.store import Store
from sync.storage.tables import connections, records, stream_states, sync_runs
from sync.tenancy.connections import NEEDS_REAUTH, unseal
from tests.support import (
    cached_ids,
    connect_sandbox,
    make_streams_due,
    new_tenant,
    row_count,
    run_everything_due,
    stream_errors,
)

# Every registered connector, by the sandbox entry it declares.
PROVIDERS = sorted(sandbox_entries())


@dataclass
class Synced:
    store: Store
    kit: HttpKit
    driver: SandboxDriver
    connection_id: uuid.UUID

    @property
    def streams(self) -> tuple[str, ...]:
        return get_connector(self.driver.provider).stream_names

    async def run(self) -> None:
        await run_everything_due(self.store, self.kit)

    async def again(self) -> None:
        await make_streams_due(self.store, self.connection_id)
        await self.run()

    async def stream_rows(self) -> int:
        """The main stream's cached records, deleted ones included."""
        live = await cached_ids(self.store, self.connection_id, self.driver.main_stream)
        return len(live) + len(await cached_ids(self.store, self.connection_id, self.driver.main_stream, deleted=True))

    async def incremental_changes(self) -> int:
        """Records the main stream's incremental runs changed, all runs together."""
        async with self.store.engine.connect() as conn:
            changed = await conn.execute(
                select(sync_runs.c.changed).where(
                    sync_runs.c.stream == self.driver.main_stream, sync_runs.c.phase == "incremental"
                )
            )
            return sum(changed.scalars())

    async def assert_complete(self) -> None:
        errors = await stream_errors(self.store, self.connection_id)
        assert errors == dict.fromkeys(self.streams), errors
        for stream in self.streams:
            assert await cached_ids(self.store, self.connection_id, stream) == self.driver.expected_ids(stream), stream


class ConnectorConformance:
    """The suite, once per registered connector (the test id names the provider, then the database)."""

    @pytest.fixture(params=PROVIDERS)
    def driver(self, request: pytest.FixtureRequest) -> SandboxDriver:
        return sandbox_entries()[request.param].conformance()

    @pytest_asyncio.fixture
    async def connected(self, store: Store, kit: HttpKit, driver: SandboxDriver) -> AsyncIterator[Synced]:
        with driver.serve() as endpoints:
            tenant = await new_tenant(store)
            connection_id = await connect_sandbox(store, tenant, driver, endpoints, external_user_id="conformance")
            yield Synced(store, kit, driver, connection_id)

    async def test_backfill_is_complete(self, connected: Synced) -> None:
        await connected.run()
        await connected.assert_complete()
        async with connected.store.engine.connect() as conn:
            phases = {
                row.phase
                for row in await conn.execute(
                    select(stream_states.c.phase).where(stream_states.c.connection_id == connected.connection_id)
                )
            }
            runs = (await conn.execute(select(sync_runs))).all()
        assert phases == {"incremental"}
        assert {run.status for run in runs} == {"succeeded"}

    @pytest.mark.parametrize("extra", [0, 1], ids=["exact-pages", "one-over"])
    async def test_pagination_boundaries(self, connected: Synced, extra: int) -> None:
        driver = connected.driver
        target = 2 * driver.page_size + extra
        current = driver.expected_ids(driver.main_stream)
        for surplus in sorted(current)[: max(0, len(current) - target)]:
            driver.delete(surplus)
        while len(driver.expected_ids(driver.main_stream)) < target:
            driver.create()
        await connected.run()
        assert await cached_ids(connected.store, connected.connection_id, driver.main_stream) == driver.expected_ids(
            driver.main_stream
        )
        async with connected.store.engine.connect() as conn:
            pages = (
                await conn.execute(select(sync_runs.c.pages).where(sync_runs.c.stream == driver.main_stream))
            ).scalar_one()
        assert pages == 2 + extra

    async def test_incremental_picks_up_creates_updates_and_deletes(self, connected: Synced) -> None:
        driver = connected.driver
        await connected.run()
        # The main stream's rows: a create may add records to other streams (a Zendesk ticket's first comment).
        before = await connected.stream_rows()
        created = driver.create()
        changed, gone = sorted(driver.expected_ids(driver.main_stream) - {created})[:2]
        async with connected.store.engine.connect() as conn:
            hash_before = (
                await conn.execute(select(records.c.content_hash).where(records.c.remote_id == changed))
            ).scalar_one()
        driver.update(changed)
        driver.delete(gone)

        await connected.again()
        if driver.search_lag_seconds:
            # The first run may have missed writes the provider had not indexed yet; one after the lag must not.
            await asyncio.sleep(driver.search_lag_seconds)
            await connected.again()

        live = await cached_ids(connected.store, connected.connection_id, driver.main_stream)
        assert live == driver.expected_ids(driver.main_stream)
        assert created in live and gone not in live
        assert gone in await cached_ids(connected.store, connected.connection_id, driver.main_stream, deleted=True)
        async with connected.store.engine.connect() as conn:
            hash_after = (
                await conn.execute(select(records.c.content_hash).where(records.c.remote_id == changed))
            ).scalar_one()
        assert hash_after != hash_before
        assert await connected.stream_rows() == before + 1
        # One created, one updated, one deleted: re-reads emit nothing.
        assert await connected.incremental_changes() == 3

    async def test_idle_runs_neither_miss_nor_repeat(self, connected: Synced) -> None:
        driver = connected.driver
        await connected.run()
        await connected.again()
        await connected.again()
        created = driver.create()
        await asyncio.sleep(driver.search_lag_seconds)
        await connected.again()
        assert created in await cached_ids(connected.store, connected.connection_id, driver.main_stream)
        assert await connected.incremental_changes() == 1

    async def test_unchanged_records_are_not_rewritten(self, connected: Synced) -> None:
        await connected.run()
        async with connected.store.engine.connect() as conn:
            before = dict((await conn.execute(select(records.c.id, records.c.synced_at))).all())
            first_runs = (await conn.execute(select(sync_runs.c.changed))).scalars().all()
        await connected.again()
        async with connected.store.engine.connect() as conn:
            after = dict((await conn.execute(select(records.c.id, records.c.synced_at))).all())
            later_runs = (
                (await conn.execute(select(sync_runs.c.changed).where(sync_runs.c.phase == "incremental")))
                .scalars()
                .all()
            )
        assert after == before
        assert sum(first_runs) == len(before)  # the backfill changed every record once
        assert later_runs and sum(later_runs) == 0

    async def test_resume_after_kill_loses_nothing(self, connected: Synced, database_url: str, secret_key: str) -> None:
        # Slow enough that the kill lands mid-backfill even on a loaded machine.
        connected.driver.latency(60)
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.kill_target", database_url, secret_key
        )
        try:
            deadline = time.monotonic() + 60
            while await row_count(connected.store, connected.connection_id) == 0:
                assert time.monotonic() < deadline and worker.returncode is None, "the worker never got going"
                await asyncio.sleep(0.01)
        finally:
            worker.send_signal(signal.SIGKILL)  # no cleanup, no rollback: a crash
            await worker.wait()
        expected = sum(len(connected.driver.expected_ids(s)) for s in connected.streams)
        assert 0 < await row_count(connected.store, connected.connection_id) < expected

        # The dead worker's leases run out; another worker resumes from the saved cursors.
        async with connected.store.engine.begin() as conn:
            await conn.execute(update(stream_states).values(lease_expires_at=None, lease_owner=None))
        connected.driver.latency(0)
        await connected.run()
        await connected.assert_complete()
        assert await row_count(connected.store, connected.connection_id) == expected

    async def test_one_refresh_serves_many_concurrent_requests(self, connected: Synced) -> None:
        _skip_without_token_use(connected)
        connected.driver.expire_tokens()
        refreshes = connected.driver.token_refreshes()
        await connected.run()
        assert connected.driver.token_refreshes() == refreshes + 1
        await connected.assert_complete()

    async def test_revoked_grant_marks_the_connection_for_reauth(self, connected: Synced) -> None:
        _skip_without_token_use(connected)
        async with connected.store.engine.connect() as conn:
            sealed = (
                await conn.execute(
                    select(connections.c.credentials_encrypted).where(connections.c.id == connected.connection_id)
                )
            ).scalar_one()
        refresh_token = unseal(connected.store, connected.connection_id, sealed).refresh_token
        assert refresh_token
        connected.driver.revoke_refresh_token(refresh_token)
        connected.driver.expire_tokens()
        await connected.run()
        async with connected.store.engine.connect() as conn:
            status, reason = (
                await conn.execute(
                    select(connections.c.status, connections.c.status_reason).where(
                        connections.c.id == connected.connection_id
                    )
                )
            ).one()
        assert status == NEEDS_REAUTH and reason
        # A connection that needs a person to reconnect is left alone.
        refreshes = connected.driver.token_refreshes()
        await connected.again()
        assert connected.driver.token_refreshes() == refreshes

    @pytest.mark.parametrize("storm", ["rate_limited", "server_errors"])
    async def test_backfill_survives_storms(self, connected: Synced, storm: Storm) -> None:
        connected.driver.storm(storm, 0.3)
        await connected.run()
        # At this rate one request in a few thousand still fails every retry; its stream then stops after
        # storing what it read and the next run resumes it. Nothing may be lost or doubled either way.
        for _ in range(2):
            if not any((await stream_errors(connected.store, connected.connection_id)).values()):
                break
            await connected.again()
        await connected.assert_complete()

    async def test_mapping_fits_the_common_models(self, connected: Synced) -> None:
        await connected.run()
        connector = get_connector(connected.driver.provider)
        mapped = {s.name: s.mapping.model for s in connector.streams if s.mapping is not None}
        async with connected.store.engine.connect() as conn:
            rows = (await conn.execute(select(records.c.stream, records.c.model, records.c.common))).all()
        assert rows
        for row in rows:
            model = mapped.get(row.stream)
            if model is None:  # a stream kept as raw records only (`records(stream:)`): no model, no common fields
                assert row.model is None and row.common is None, row.stream
                continue
            assert row.model == model.name
            model.validate(_revive(row.common, model))

    async def test_custom_fields_are_in_raw(self, connected: Synced) -> None:
        await connected.run()
        async with connected.store.engine.connect() as conn:
            raws = (
                await conn.execute(select(records.c.raw).where(records.c.stream == connected.driver.main_stream))
            ).scalars()
            values = [dig(orjson.loads(raw), connected.driver.custom_field_path) for raw in raws]
        assert values and any(value not in (None, "") for value in values)


def _revive(common: dict[str, Any], model: Any) -> dict[str, Any]:
    """Common fields come back from JSON storage with datetimes as text; the model wants datetimes."""
    revived = dict(common)
    for field in model.fields:
        if field.type is datetime and isinstance(revived.get(field.name), str):
            revived[field.name] = datetime.fromisoformat(revived[field.name])
    return revived


def _skip_without_token_use(connected: Synced) -> None:
    """A connector whose OAuth connections send the platform's own key (Stripe Connect) never refreshes a
    token: its connect tests say what expiring and revoking do there."""
    if get_connector(connected.driver.provider).oauth_requests is not None:
        pytest.skip(f"{connected.driver.provider} sends the platform's key, never the connection's token")
