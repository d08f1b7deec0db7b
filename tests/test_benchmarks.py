"""The Stripe benchmarks (tests/benchmarks/), run at a tiny size so they keep working between `make bench` runs:
the ingest's counts are checked against the sandbox by the benchmark itself, and every timed change of the
freshness benchmark must reach the subscriber, through webhooks and through polling (HubSpot's too, since
the freshness benchmark is shared)."""

from __future__ import annotations

import pytest

from tests.benchmarks.freshness import run_freshness
from tests.benchmarks.ingest import run_ingest

# The benchmarks make their own PostgreSQL databases: this only skips them where PostgreSQL is not running.
pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def test_stripe_ingest_backfills_every_customer_and_invoice_of_the_sandbox(backend: str) -> None:
    result = await run_ingest("stripe", size=300)
    assert result["records"] == 600
    assert {stream: counts["records"] for stream, counts in result["streams"].items()} == {
        "customers": 300,
        "invoices": 300,
    }
    assert result["records_per_second"] > 0 and result["peak_rss_mb"] > 0
    assert result["sandbox_cpu_seconds"] > 0


@pytest.mark.parametrize("provider", ["stripe", "hubspot"])
async def test_freshness_times_every_change_through_webhooks_and_polling(backend: str, provider: str) -> None:
    result = await run_freshness(provider, webhook_samples=3, poll_samples=2)
    assert result["provider"] == provider
    assert result["webhook"]["samples"] == 3 and result["polling"]["samples"] == 2
    # A webhook is applied at once; a polled change waits for the next run of a 5 s interval at most.
    assert result["webhook"]["max_ms"] < result["polling"]["interval_s"] * 1000
    assert result["polling"]["max_ms"] < result["polling"]["interval_s"] * 1000 * 3
