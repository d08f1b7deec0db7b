"""The Starlette application assembled: /graphql, the OAuth pages, webhook intake, health, and the
lifespan that runs the worker and the change listener.

`Runtime` and `server_config` are re-exported for the callers that import them from here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from gateway.connect_pages import oauth_callback, oauth_start
from gateway.graphql_app import XkitGraphQL
from gateway.ide import graphiql_page
from gateway.runtime import Runtime
from gateway.server import server_config
from gateway.sse import STREAM_PATH
from gateway.webhooks_in import provider_webhook
from sync.cache.listen import change_listener

__all__ = ["Runtime", "create_app", "server_config"]


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(runtime: Runtime, *, own_resources: bool = True) -> Starlette:
    """`own_resources=False` leaves the store and HTTP kit open on shutdown (their owner closes them)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(runtime.worker.run_forever()) if runtime.worker else None
        try:
            async with change_listener(runtime.store):
                yield
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await runtime.services.feed.close()
            if own_resources:
                await runtime.close()

    graphql = XkitGraphQL(runtime)
    app = Starlette(
        routes=[
            Route("/graphql", graphql),
            Route(STREAM_PATH, graphql),  # graphql-sse in both modes (gateway/sse.py)
            WebSocketRoute("/graphql", graphql),
            Route("/graphql/ide/assets/{digest}/{name}", graphiql_page.asset),
            Route("/oauth/start", oauth_start),
            Route("/oauth/callback", oauth_callback),
            Route("/webhooks/{provider}", provider_webhook, methods=["POST"]),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
