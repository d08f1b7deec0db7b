"""`make bench`: each benchmark in its own process (so peak RSS is its own), results printed as JSON."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

BENCHMARKS = (
    "query",
    "ingest",
    "ingest-salesforce",
    "salesforce-wide",
    "writeback",
    "fanout",
    "freshness",
    "graphql-abuse",
    "webhook-flood",
    "noisy-neighbour",
    "hostile-provider",
    "hubspot-wide",
)


def run_one(name: str) -> dict[str, object]:
    if name == "query":
        from tests.benchmarks.query import run_query

        return asyncio.run(run_query())
    if name == "salesforce-wide":
        from tests.benchmarks.salesforce_wide import run_salesforce_wide

        return asyncio.run(run_salesforce_wide())
    if name == "graphql-abuse":
        from tests.benchmarks.graphql_abuse import run_graphql_abuse

        return asyncio.run(run_graphql_abuse())
    if name == "webhook-flood":
        from tests.benchmarks.webhook_flood import run_webhook_flood

        return asyncio.run(run_webhook_flood())
    if name == "noisy-neighbour":
        from tests.benchmarks.noisy_neighbour import run_noisy_neighbour

        return asyncio.run(run_noisy_neighbour())
    if name == "hostile-provider":
        from tests.benchmarks.hostile_provider import run_hostile_provider

        return asyncio.run(run_hostile_provider())
    if name == "hubspot-wide":
        from tests.benchmarks.hubspot_wide import run_hubspot_wide

        return asyncio.run(run_hubspot_wide())
    if name == "freshness":
        from tests.benchmarks.freshness import run_freshness

        return asyncio.run(run_freshness())
    if name == "fanout":
        from tests.benchmarks.fanout import run_fanout

        return asyncio.run(run_fanout())
    if name == "writeback":
        from tests.benchmarks.writeback import run_writeback

        return asyncio.run(run_writeback())
    from tests.benchmarks.ingest import run_ingest

    return asyncio.run(run_ingest("salesforce" if name == "ingest-salesforce" else "hubspot"))


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(run_one(sys.argv[1])))
        return
    results = {}
    for name in BENCHMARKS:
        out = subprocess.run(  # noqa: S603 - our own module
            [sys.executable, "-m", "tests.benchmarks", name], check=True, capture_output=True, text=True
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name}: {json.dumps(results[name])}", flush=True)


if __name__ == "__main__":
    main()
