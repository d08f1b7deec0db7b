"""Ingest: backfill a sandbox's main stream into a fresh PostgreSQL database, rate limiting off. Records/s
and peak RSS.

One benchmark per provider, each with its sandbox in a process of its own: HubSpot pages 100,000 contacts
100 at a time through its list API, Salesforce 2,000 at a time through SOQL, Zendesk reads 100,000
tickets and their comments (about 250,000) through its incremental exports, 1,000 a page, with its users
and organizations, and Stripe lists 100,000 customers and as many invoices (each with its lines) 100 at a
time. The records each stream holds afterwards are checked against the sandbox's own count.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.stripe import STRIPE
from gateway.server import settle_garbage_collector
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from sync.storage.tables import records, stream_states, sync_runs
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.platforms import create_platform
from sync.worker.scheduler import Worker
from tests.benchmarks.common import free_port, fresh_postgres, subprocess_running
from tests.support import sandbox_egress

# The sandbox's own count of live records per stream, asked once the ingest is over and its peak RSS read.
Expected = Callable[[httpx2.AsyncClient, dict[str, Any]], Awaitable[dict[str, int]]]

ZENDESK_SEED = 42
ZENDESK_SUBDOMAIN = "xkit-demo"
STRIPE_SEED = 42


def _tokens_as_issued(tokens: dict[str, Any]) -> Credentials:
    return Credentials.from_token_response(tokens)


@dataclass(frozen=True)
class IngestSetup:
    """What one provider's ingest needs: its sandbox's command line and the port that says it is up, where
    to mint tokens, the connection's base URL and credential facts, and the streams it backfills (the
    connection's other streams are put off)."""

    sandbox_args: list[str]
    port: int
    control_url: str
    base_url: str | None
    streams: tuple[str, ...]
    expected: Expected
    credential_facts: dict[str, Any] = field(default_factory=dict)
    # The connection's credentials from the minted tokens: OAuth tokens, unless the provider's are keys.
    credentials: Callable[[dict[str, Any]], Credentials] = _tokens_as_issued


def _hubspot(size: int) -> IngestSetup:
    port = free_port()
    args = ["-m", "connectors.hubspot.sandbox", "--port", str(port), "--contacts", str(size)]
    args += ["--companies", "10", "--deals", "10", "--owners", "2", "--notes", "10", "--tasks", "10"]
    args += ["--no-rate-limit"]

    async def expected(client: httpx2.AsyncClient, tokens: dict[str, Any]) -> dict[str, int]:
        return {"contacts": size}

    url = f"http://127.0.0.1:{port}"
    return IngestSetup(args, port, url, url, ("contacts",), expected)


def _salesforce(size: int) -> IngestSetup:
    login, instance = free_port(), free_port()
    args = ["-m", "connectors.salesforce.sandbox", "--login-port", str(login), "--instance-port", str(instance)]
    args += ["--contacts", str(size), "--leads", "10", "--accounts", "10", "--opportunities", "10"]
    args += ["--users", "2", "--tasks", "10", "--notes", "10", "--no-limits"]
    url = f"http://127.0.0.1:{instance}"

    async def expected(client: httpx2.AsyncClient, tokens: dict[str, Any]) -> dict[str, int]:
        # Salesforce seeds some contacts already in the recycle bin: the live ones are what a query lists.
        response = await client.get(
            f"{url}/services/data/v60.0/query",
            params={"q": "SELECT Id FROM Contact"},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        return {"contacts": int(response.json()["totalSize"])}

    # The token names the instance: the connection needs no base URL of its own.
    return IngestSetup(args, instance, url, None, ("contacts",), expected)


def _zendesk(size: int) -> IngestSetup:
    # The sandbox's default numbers of users and organizations, named so the twin below is seeded the same.
    others = {"users": 80, "agents": 6, "organizations": 20}
    port = free_port()
    args = ["-m", "connectors.zendesk.sandbox", "--port", str(port), "--seed", str(ZENDESK_SEED)]
    args += ["--subdomain", ZENDESK_SUBDOMAIN, "--tickets", str(size), "--no-rate-limit"]
    args += [f"--{name}={count}" for name, count in others.items()]
    streams = ("tickets", "ticket_comments", "end_users", "agents", "organizations")

    async def expected(client: httpx2.AsyncClient, tokens: dict[str, Any]) -> dict[str, int]:
        # The sandbox serves no counts (nor does Zendesk of all comments); it is deterministic, so a twin seeded
        # alike in this process counts them (by the ids the conformance suite expects), after the peak RSS is
        # read: imported here, so the ingest does not carry the sandbox's modules.
        from connectors.zendesk.sandbox import SandboxSize, ZendeskSandbox
        from connectors.zendesk.sandbox.driver import STREAM_IDS

        sizes = SandboxSize(tickets=size, **others)
        with ZendeskSandbox(seed=ZENDESK_SEED, size=sizes, subdomains=(ZENDESK_SUBDOMAIN,)) as twin:
            return {stream: len(STREAM_IDS[stream](twin.account())) for stream in streams}

    url = f"http://127.0.0.1:{port}"
    # The subdomain names the account's host (the connection's base URL) and its webhooks.
    facts = {"subdomain": ZENDESK_SUBDOMAIN}
    return IngestSetup(args, port, url, f"{url}/{ZENDESK_SUBDOMAIN}", streams, expected, facts)


def _stripe(size: int) -> IngestSetup:
    # As many invoices as customers (each on a seeded customer), and few of the rest: the payment intents of
    # the finalized invoices and their charges are seeded all the same, in streams put off here.
    sizes = {"customers": size, "invoices": size, "subscriptions": 10, "payment_intents": 10}
    port = free_port()
    args = ["-m", "connectors.stripe.sandbox", "--port", str(port), "--seed", str(STRIPE_SEED), "--no-rate-limit"]
    args += [f"--{name}={count}" for name, count in sizes.items()]
    streams = ("customers", "invoices")

    async def expected(client: httpx2.AsyncClient, tokens: dict[str, Any]) -> dict[str, int]:
        # Stripe's lists carry no totals; the sandbox is deterministic, so a twin seeded alike in this process
        # counts the live objects, after the peak RSS is read (imported here for the same reason).
        from connectors.stripe.sandbox import SandboxSize, StripeSandbox

        with StripeSandbox(seed=STRIPE_SEED, size=SandboxSize(**sizes)) as twin:
            return {stream: sum(1 for _ in twin.account().collections[stream].live()) for stream in streams}

    def secret_key(tokens: dict[str, Any]) -> Credentials:
        # A Connect access token is a secret key of the account it was issued for: the connection is a key
        # connection, as `createConnection(credentials: {apiKey})` makes it, pinned to the connector's version.
        return Credentials(api_key=tokens["access_token"], extra=dict(STRIPE.pinned))

    url = f"http://127.0.0.1:{port}"
    return IngestSetup(args, port, url, url, streams, expected, credentials=secret_key)


# Each provider's setup for `size` records in its main stream.
SETUPS: dict[str, Callable[[int], IngestSetup]] = {
    "hubspot": _hubspot,
    "salesforce": _salesforce,
    "zendesk": _zendesk,
    "stripe": _stripe,
}


async def run_ingest(provider: str = "hubspot", size: int = 100_000) -> dict[str, Any]:
    setup = SETUPS[provider](size)
    with subprocess_running(setup.sandbox_args, setup.port) as sandbox:
        async with fresh_postgres("xkit_bench_ingest") as url, httpx2.AsyncClient() as client:
            engine = create_engine(url)
            await upgrade(engine)
            store = Store(engine, Vault(parse_secret_key(generate_secret_key())))
            tokens = (await client.post(f"{setup.control_url}/_sandbox/tokens")).json()
            platform_id = await create_platform(store, "bench")
            connection_id = await create_connection(
                store,
                NewConnection(
                    platform_id=platform_id,
                    provider=provider,
                    external_user_id="bench",
                    credentials=setup.credentials(tokens).with_extra(setup.credential_facts),
                    base_url=setup.base_url,
                    rate_limit={"requests": 0},
                ),
            )
            async with engine.begin() as conn:
                await conn.execute(
                    update(stream_states)
                    .where(stream_states.c.connection_id == connection_id, stream_states.c.stream.not_in(setup.streams))
                    .values(next_run_at=datetime.now(UTC) + timedelta(days=1))
                )
            # The sandboxes run without their rate limits here (what is measured is our ingest, not a plan's
            # allowance), so the client's narrower per-path windows (Zendesk's exports) are lifted too.
            kit = HttpKit(egress=sandbox_egress(), path_window_scale=0.0)
            database_before = await _database_cpu_seconds(engine)
            sandbox_before = _process_cpu_seconds(sandbox.pid)
            started, cpu_started = time.perf_counter(), _cpu_seconds(resource.RUSAGE_SELF)
            settle_garbage_collector()  # as `xkit worker` does once its runtime is built
            await Worker(store, kit).drain()
            elapsed, cpu = time.perf_counter() - started, _cpu_seconds(resource.RUSAGE_SELF) - cpu_started
            sandbox_serving = _process_cpu_seconds(sandbox.pid) - sandbox_before
            database = await _database_cpu_seconds(engine)
            postgres_cpu = sum(seconds - database_before.get(pid, 0.0) for pid, seconds in database.items())
            await kit.aclose()
            peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            streams = await _ingested_streams(engine, connection_id)
            await engine.dispose()
            expected = await setup.expected(client, tokens)
    # The sandbox has ended by now: its CPU time (seeding included) is what this process's children used.
    sandbox_cpu = _cpu_seconds(resource.RUSAGE_CHILDREN)
    live = {stream: counts["records"] - counts["deleted"] for stream, counts in streams.items()}
    assert live == expected, f"ingested {live}, the sandbox has {expected}"
    ingested = sum(counts["records"] for counts in streams.values())
    return {
        "provider": provider,
        "records": ingested,
        "seconds": round(elapsed, 2),
        "records_per_second": round(ingested / elapsed),
        "peak_rss_mb": round(peak_rss_mb, 1),
        # Where the time went on a machine the sandbox and PostgreSQL share with the ingest.
        "ingest_cpu_seconds": round(cpu, 1),
        "sandbox_cpu_seconds": round(sandbox_cpu, 1),
        "sandbox_serving_cpu_seconds": round(sandbox_serving, 1),
        "postgres_cpu_seconds": round(postgres_cpu, 1),
        "streams": streams,
    }


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_seconds(pid: int) -> float:
    """User and system CPU of a running process of this machine, from /proc (Linux: what the benchmarks run on)."""
    with open(f"/proc/{pid}/stat") as stat:
        # The fields after the command name (which may hold spaces), from the state on: utime and stime are 14th and
        # 15th of the whole line, in clock ticks.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _database_cpu_seconds(engine: AsyncEngine) -> dict[int, float]:
    """The CPU each PostgreSQL backend serving the benchmark's database has used, by pid. PostgreSQL runs on this
    machine; a backend that ended meanwhile (a connection the pool closed) is not counted, so the sum is a floor."""
    async with engine.connect() as conn:
        pids = (
            await conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
        ).scalars()
        found = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                found[int(pid)] = _process_cpu_seconds(int(pid))
    return found


async def _ingested_streams(engine: AsyncEngine, connection_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Per stream: the records it holds (and how many of them are tombstones), the span of its backfill's
    sync runs, and its records/s over that span (the streams run side by side, so each span is its own; the
    first polls, due once a backfill ends, are left out)."""
    async with engine.connect() as conn:
        held = (
            await conn.execute(
                select(records.c.stream, func.count(), func.count().filter(records.c.deleted))
                .where(records.c.connection_id == connection_id)
                .group_by(records.c.stream)
            )
        ).all()
        spans = {
            stream: (first, last)
            for stream, first, last in (
                await conn.execute(
                    select(sync_runs.c.stream, func.min(sync_runs.c.started_at), func.max(sync_runs.c.finished_at))
                    .where(sync_runs.c.connection_id == connection_id, sync_runs.c.phase == "backfill")
                    .group_by(sync_runs.c.stream)
                )
            ).all()
        }
    streams: dict[str, dict[str, Any]] = {}
    for stream, count, deleted in sorted(held):
        first, last = spans.get(stream, (None, None))
        seconds = (last - first).total_seconds() if first and last else None
        streams[stream] = {
            "records": count,
            "deleted": deleted,
            "seconds": round(seconds, 2) if seconds else None,
            "records_per_second": round(count / seconds) if seconds else None,
        }
    return streams
