"""`make bench`: each benchmark in its own process (so peak RSS is its own), results printed as JSON."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from typing import Any

# Each benchmark: its module here and the arguments of the module's `run_<module>`. A module is imported only
# in the process that runs it, so each process holds what it measures alone.
BENCHMARKS: dict[str, tuple[str, dict[str, Any]]] = {
    "query": ("query", {}),
    "ingest": ("ingest", {"provider": "hubspot"}),
    "ingest-salesforce": ("ingest", {"provider": "salesforce"}),
    "ingest-zendesk": ("ingest", {"provider": "zendesk"}),
    "ingest-stripe": ("ingest", {"provider": "stripe"}),
    "salesforce-wide": ("salesforce_wide", {}),
    "writeback": ("writeback", {}),
    "fanout": ("fanout", {}),
    "freshness": ("freshness", {}),
    "freshness-stripe": ("freshness", {"provider": "stripe"}),
    "graphql-abuse": ("graphql_abuse", {}),
    "webhook-flood": ("webhook_flood", {}),
    "noisy-neighbour": ("noisy_neighbour", {}),
    "hostile-provider": ("hostile_provider", {}),
    "hubspot-wide": ("hubspot_wide", {}),
    "relation-filters": ("relation_filters", {}),
    "rederive": ("rederive", {}),
}


def run_one(name: str) -> dict[str, object]:
    module, arguments = BENCHMARKS[name]
    run = getattr(importlib.import_module(f"tests.benchmarks.{module}"), f"run_{module}")
    result: dict[str, object] = asyncio.run(run(**arguments))
    return result


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
