"""The server the benchmarks run against: xkit's app (optionally with its syncer) plus, for the query
benchmark, a minimal hand-written endpoint that returns the same page (asyncpg + orjson), in one
uvicorn process."""

from __future__ import annotations

import argparse
import uuid

import asyncpg
import orjson
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.app import Runtime, create_app, server_config
from gateway.auth import ApiKeyAuthenticator
from gateway.settings import Settings
from resolvers.ids import CursorCodec, Position, to_global_id
from sync.storage.crypto import parse_secret_key
from tests.support import SANDBOX_EGRESS

RAW_SQL = """
SELECT id, remote_id, common, raw, remote_created_at, remote_updated_at
FROM records
WHERE platform_id = $1 AND model = 'Contact' AND deleted = false
ORDER BY remote_updated_at DESC, id DESC
LIMIT 101
"""

FIELDS = ("first_name", "last_name", "email", "phone", "job_title", "lifecycle_stage")
CAMEL = {
    "first_name": "firstName",
    "last_name": "lastName",
    "job_title": "jobTitle",
    "lifecycle_stage": "lifecycleStage",
}


def build(database_url: str, secret_key: str, *, worker: bool = False, port: int = 8000) -> Starlette:
    settings = Settings(
        database_url=database_url,
        secret_key=SecretStr(secret_key),
        run_worker=worker,
        worker_poll_seconds=0.2,
        # The syncer (freshness benchmark) reaches the sandbox on this machine.
        egress_allow=list(SANDBOX_EGRESS),
        port=port,
        # One key hammers the server on purpose: its rate and cost budget must not be what is measured.
        graphql_requests_per_second=1e9,
        graphql_request_burst=1_000_000_000,
        graphql_cost_budget=10**15,
        # The fan-out benchmark opens a thousand subscriptions with that one key.
        graphql_max_subscriptions_per_key=100_000,
    )
    runtime = Runtime.build(settings, run_worker=worker)
    app = create_app(runtime)
    authenticator = ApiKeyAuthenticator.configured(runtime.store, settings)
    codec = CursorCodec(parse_secret_key(secret_key))
    pool: list[asyncpg.Pool] = []

    async def raw_contacts(request: Request) -> Response:
        identity = await authenticator.identify(request)
        if identity is None:
            return Response(status_code=401)
        platform_id = identity.platform_id
        if not pool:
            dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
            pool.append(await asyncpg.create_pool(dsn, min_size=2, max_size=10))
        rows = await pool[0].fetch(RAW_SQL, uuid.UUID(str(platform_id)))
        edges = []
        for row in rows[:100]:
            common = orjson.loads(row["common"])
            node = {
                "id": to_global_id("Contact", row["id"]),
                "remoteId": row["remote_id"],
                "createdAt": row["remote_created_at"].isoformat() if row["remote_created_at"] else None,
                "updatedAt": row["remote_updated_at"].isoformat() if row["remote_updated_at"] else None,
                **{CAMEL.get(f, f): common.get(f) for f in FIELDS},
                "raw": orjson.Fragment(row["raw"]),
            }
            cursor = codec.encode("Contact:desc", Position(row["remote_updated_at"], row["id"]))
            edges.append({"cursor": cursor, "node": node})
        page_info = {"hasNextPage": len(rows) > 100, "endCursor": edges[-1]["cursor"] if edges else None}
        body = {"data": {"contacts": {"edges": edges, "pageInfo": page_info}}}
        return Response(orjson.dumps(body), media_type="application/json")

    app.router.routes.append(Route("/raw/contacts", raw_contacts))
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--worker", action="store_true", help="also run the syncer (freshness benchmark)")
    args = parser.parse_args()
    app = build(args.database_url, args.secret_key, worker=args.worker, port=args.port)
    # Served as `xkit serve` serves (XKIT_WEBSOCKET_COMPRESSION and all), on this port.
    settings = Settings(host="127.0.0.1", port=args.port)
    uvicorn.Server(server_config(app, settings, log_level="warning")).run()


if __name__ == "__main__":
    main()
