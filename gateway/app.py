"""The Starlette application: /graphql, the OAuth callback, health."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.types.unset import UNSET, UnsetType

from connectors.kit.errors import BadInput, NotFound, ProviderError, XkitError
from connectors.kit.http import HttpKit
from connectors.kit.webhooks import WebhookMalformed, WebhookRejected, WebhookRequest
from gateway.auth import ApiKeyAuthenticator
from gateway.settings import Settings
from resolvers.connections import complete_connect
from resolvers.context import Caller, Services
from resolvers.ids import CursorCodec
from schema import schema
from sync.crypto import Vault, parse_secret_key
from sync.db import create_engine
from sync.intake import receive
from sync.listen import change_listener
from sync.runner import DiscoveryCache
from sync.scheduler import Worker, release_leases
from sync.store import Store

log = logging.getLogger("xkit")


@dataclass
class Runtime:
    """The process's long-lived parts, built once and closed on shutdown."""

    settings: Settings
    store: Store
    kit: HttpKit
    worker: Worker | None
    services: Services = field(init=False)

    def __post_init__(self) -> None:
        secret = self.settings.secret_key
        assert secret is not None
        self.services = Services(
            store=self.store,
            kit=self.kit,
            cursors=CursorCodec(parse_secret_key(secret.get_secret_value())),
            public_url=self.settings.resolved_public_url,
            worker=self.worker,
            discoveries=self.worker.discoveries if self.worker else DiscoveryCache(),
        )

    @classmethod
    def build(cls, settings: Settings, *, run_worker: bool | None = None) -> Runtime:
        if settings.secret_key is None:
            raise SystemExit("XKIT_SECRET_KEY is not set (xkit dev makes one; production must set it)")
        key = parse_secret_key(settings.secret_key.get_secret_value())
        store = Store(create_engine(settings.resolved_database_url), Vault(key))
        kit = HttpKit(timeout=settings.http_timeout_seconds)
        worker_wanted = settings.run_worker if run_worker is None else run_worker
        worker = (
            Worker(
                store,
                kit,
                concurrency=settings.worker_concurrency,
                poll_interval=settings.worker_poll_seconds,
                change_retention=timedelta(days=settings.change_retention_days),
            )
            if worker_wanted
            else None
        )
        return cls(settings, store, kit, worker)

    async def close(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
            await release_leases(self.store, self.worker.worker_id)
        await self.kit.aclose()
        await self.store.engine.dispose()


def _unauthenticated(message: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}
    return Response(orjson.dumps(body), status_code=401, media_type="application/json")


class TextFramesWebSocket(ASGIWebSocketAdapter):
    """GraphQL over WebSocket is text frames; HTTP responses stay bytes (no decode of big pages)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class XkitGraphQL(GraphQL[Caller, None]):
    websocket_adapter_class = TextFramesWebSocket

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self.runtime = runtime
        self.authenticator = ApiKeyAuthenticator(runtime.store)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_ide_request(scope):
            # The IDE page itself needs no key; the queries it sends do.
            await (await self.render_graphql_ide(Request(scope)))(scope, receive, send)
            return
        if scope["type"] == "http":
            request = Request(scope)
            identity = await self.authenticator.identify(request)
            if identity is None:
                has_key = "authorization" in request.headers
                message = (
                    "the API key is not valid" if has_key else "send your secret API key as Authorization: Bearer <key>"
                )
                await _unauthenticated(message)(scope, receive, send)
                return
            scope["xkit.caller"] = identity
        await super().__call__(scope, receive, send)

    @staticmethod
    def _is_ide_request(scope: Scope) -> bool:
        if scope["method"] != "GET" or scope.get("query_string"):
            return False
        accept = dict(scope["headers"]).get(b"accept", b"")
        return b"text/html" in accept

    async def get_context(self, request: Any, response: Any = None) -> Caller:
        identity = request.scope.get("xkit.caller")
        if identity is None:  # a WebSocket: the key comes in connection_init (see on_ws_connect)
            return Caller(self.runtime.services, NO_PLATFORM)
        return Caller(self.runtime.services, identity.platform_id, api_key_id=identity.key_id)

    async def on_ws_connect(self, context: Caller) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket with the same key as HTTP, sent in the connection_init payload as
        `Authorization: "Bearer <key>"` (or `apiKey`). Refused: graphql-transport-ws closes with 4403,
        graphql-ws answers connection_error and closes."""
        params = context.connection_params or {}
        given = params.get("Authorization") or params.get("authorization") or params.get("apiKey") or ""
        scheme, _, key = str(given).partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else str(given).strip()
        identity = await self.authenticator.identify_key(key) if key else None
        if identity is None:
            reason = "the API key is not valid" if key else "send your secret API key in the connection_init payload"
            raise ConnectionRejectionError({"message": reason, "extensions": {"code": "UNAUTHENTICATED"}})
        context.platform_id = identity.platform_id
        context.api_key_id = identity.key_id
        return cast("UnsetType", UNSET)  # acknowledge without a payload


# The platform of a WebSocket that has not sent its key yet: owns nothing, so every read finds nothing.
NO_PLATFORM = uuid.UUID(int=0)


async def provider_webhook(request: Request) -> Response:
    """`POST /webhooks/{provider}`: 401 for a bad signature or a stale timestamp (nothing changes), 404 for a
    provider without webhooks, 200 once the changed records are in the cache, 503 when the provider could
    not be read (the provider retries; polling catches up meanwhile)."""
    runtime: Runtime = request.app.state.runtime
    try:
        body = await _read_body(request, runtime.settings.webhook_max_bytes)
    except BodyTooLarge as too_large:
        return _error(413, too_large)
    except BadInput as malformed:
        return _error(400, malformed)
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = f"?{request.url.query}" if request.url.query else ""
    # Signed over the URL the provider was given: as it reached us, or behind a proxy the public one.
    public = f"{runtime.settings.resolved_public_url}{request.url.path}{query}"
    webhook = WebhookRequest(request.method, str(request.url), headers, body)
    try:
        result = await receive(
            runtime.store,
            runtime.kit,
            runtime.services.discoveries,
            request.path_params["provider"],
            webhook,
            also_addressed_as=[public],
        )
    except WebhookRejected as rejected:
        return _error(401, rejected)
    except NotFound as missing:
        return _error(404, missing)
    except WebhookMalformed as malformed:
        return _error(400, malformed)
    except ProviderError as failed:
        log.warning("webhook from %s: %s", request.path_params["provider"], failed.message)
        return _error(503, failed)
    except XkitError as refused:
        return _error(400, refused)
    return JSONResponse(
        {"events": result.events, "fetched": result.fetched, "deleted": result.deleted, "replay": result.replay}
    )


class BodyTooLarge(XkitError):
    code = "PAYLOAD_TOO_LARGE"


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to exceed `limit`: by its Content-Length before a byte is
    read, or while it streams in (chunked), never holding more than `limit` bytes of it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadInput("the Content-Length header is not a number")
        if int(declared) > limit:
            raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
        body += chunk
    return bytes(body)


def _error(status: int, error: XkitError) -> Response:
    body = {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def oauth_callback(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    params = request.query_params
    state = params.get("state")
    if not state:
        return HTMLResponse("<h1>Missing state</h1><p>Start the connection again from the application.</p>", 400)
    try:
        outcome = await complete_connect(runtime.services, state, params.get("code"), params.get("error"))
    except XkitError as exc:
        return HTMLResponse(f"<h1>Could not connect</h1><p>{_escape(exc.message)}</p>", 400)
    return RedirectResponse(outcome.redirect_to, status_code=303)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def settle_garbage_collector() -> None:
    """For a serving process, once its app is built. A page of a hundred objects allocates thousands of
    short-lived ones; at CPython's default thresholds that is a young collection every 700 allocations
    and, now and then, a full one walking the schema and every module again. What exists now lives as
    long as the process, so it is frozen out of those walks, and young collections are made rarer
    (about 10-15 % less CPU per page, measured with the query benchmark)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def server_config(app: Starlette, settings: Settings, *, log_level: str | None = None) -> uvicorn.Config:
    """How every process that serves xkit runs its app (`xkit serve`, `xkit dev`, the benchmarks' server);
    call it once the app is built, since it also settles the garbage collector."""
    settle_garbage_collector()
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level or settings.log_level,
        # No access log: OAuth callbacks carry authorization codes in their query strings.
        access_log=False,
        ws_per_message_deflate=settings.websocket_compression,
    )


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
            WebSocketRoute("/graphql", graphql),
            Route("/oauth/callback", oauth_callback),
            Route("/webhooks/{provider}", provider_webhook, methods=["POST"]),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
