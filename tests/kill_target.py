"""A sync worker in its own process, for the test that kills one mid-backfill.

Usage: python -m tests.kill_target DATABASE_URL SECRET_KEY

Streams run one at a time, so a kill after the first commit always leaves work undone even when a
provider answers a whole stream in one page (Salesforce batches of 2,000).
"""

from __future__ import annotations

import asyncio
import sys

from connectors.kit.http import HttpKit
from sync.storage.crypto import Vault, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.store import Store
from sync.worker.scheduler import Worker
from tests.support import sandbox_egress


async def main(database_url: str, secret_key: str) -> None:
    store = Store(create_engine(database_url), Vault(parse_secret_key(secret_key)))
    kit = HttpKit(egress=sandbox_egress())
    await Worker(store, kit, concurrency=1).drain()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
