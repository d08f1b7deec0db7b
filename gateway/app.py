"""The Starlette application: /graphql, the OAuth callback, health."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.types.unset import UNSET, UnsetType

from connectors.kit.bounds import collect_within
from connectors.kit.egress import EgressPolicy
from connectors.kit.errors import BadInput, NotFound, ProviderError, Unauthenticated, XkitError
from connectors.kit.http import HttpKit
from connectors.kit.oauth import TokenCallLimits
from connectors.kit.webhooks import WebhookMalformed, WebhookRejected, WebhookRequest
from gateway.auth import ApiKeyAuthenticator, TooManyFailedKeys
from gateway.connect_pages import oauth_callback, oauth_start
from gateway.settings import Settings
from gateway.sockets import LegacyWSHandler, LiveSockets, TransportWSHandler
from resolvers.context import Caller, ConnectPolicy, Services
from resolvers.ids import CursorCodec
from resolvers.limits import KeyedBuckets, OverBudget, RequestLimits, SubscriptionSlots
from resolvers.passthrough import PassthroughLimits
from schema import schema
from sync import outbound
from sync.crypto import Vault, parse_secret_key
from sync.db import create_engine
from sync.intake import receive
from sync.listen import change_listener
from sync.runner import DiscoveryCache, RunLimits
from sync.scheduler import Fairness, Worker, release_leases
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
            limits=RequestLimits(
                max_tokens=self.settings.graphql_max_tokens,
                max_aliases=self.settings.graphql_max_aliases,
                max_depth=self.settings.graphql_max_depth,
                max_operations=self.settings.graphql_max_operations,
                max_string_length=self.settings.graphql_max_string_length,
                max_list_length=self.settings.graphql_max_list_length,
                max_cost=self.settings.graphql_max_cost,
            ),
            cost_budgets=KeyedBuckets(
                self.settings.graphql_cost_budget,
                self.settings.graphql_cost_budget / self.settings.graphql_cost_window_seconds,
                max_keys=self.settings.graphql_keys_tracked,
            ),
            request_rates=KeyedBuckets(
                self.settings.graphql_request_burst,
                self.settings.graphql_requests_per_second,
                max_keys=self.settings.graphql_keys_tracked,
            ),
            subscription_slots=SubscriptionSlots(self.settings.graphql_max_subscriptions_per_key),
            passthrough_limits=PassthroughLimits(
                max_url_bytes=self.settings.passthrough_max_url_bytes,
                max_headers=self.settings.passthrough_max_headers,
                max_header_bytes=self.settings.passthrough_max_header_bytes,
                max_body_bytes=self.settings.passthrough_max_body_bytes,
            ),
            connect=ConnectPolicy(
                link_ttl=timedelta(seconds=self.settings.connect_link_ttl_seconds),
                redirect_uris_per_platform=self.settings.redirect_uris_per_platform,
            ),
        )

    @classmethod
    def build(cls, settings: Settings, *, run_worker: bool | None = None) -> Runtime:
        if settings.secret_key is None:
            raise SystemExit("XKIT_SECRET_KEY is not set (xkit dev makes one; production must set it)")
        key = parse_secret_key(settings.secret_key.get_secret_value())
        store = Store(create_engine(settings.resolved_database_url), Vault(key))
        kit = HttpKit(
            egress=EgressPolicy(settings.egress_allow),
            timeout=settings.http_timeout_seconds,
            request_deadline=settings.provider_request_deadline_seconds,
            max_response_bytes=settings.provider_response_max_bytes,
            max_record_bytes=settings.max_record_bytes,
            token_limits=TokenCallLimits(
                timeout=settings.http_timeout_seconds,
                deadline=settings.provider_request_deadline_seconds,
                max_response_bytes=settings.token_response_max_bytes,
            ),
        )
        worker_wanted = settings.run_worker if run_worker is None else run_worker
        worker = (
            Worker(
                store,
                kit,
                concurrency=settings.worker_concurrency,
                poll_interval=settings.worker_poll_seconds,
                change_retention=timedelta(days=settings.change_retention_days),
                fairness=Fairness(
                    max_running_per_connection=settings.worker_max_running_per_connection,
                    max_running_per_platform=settings.worker_max_running_per_platform,
                ),
                run_limits=RunLimits(max_pages=settings.max_pages_per_run),
                webhooks=outbound.Tunables(
                    concurrency=settings.webhook_delivery_concurrency,
                    per_platform=settings.webhook_delivery_concurrency_per_platform,
                ),
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


def _rate_limited(wait: float, burst: float) -> Response:
    refused = OverBudget(
        f"too many requests with this key; retry in {math.ceil(wait)} s",
        limit="requests",
        maximum=burst,
        retry_after=wait,
    )
    return _error(429, refused, headers={"Retry-After": str(math.ceil(wait))})


def _budget_retry_after(response_data: Any) -> int | None:
    if not isinstance(response_data, dict) or response_data.get("data") is not None:
        return None
    errors = response_data.get("errors") or []
    extensions = (errors[0].get("extensions") or {}) if len(errors) == 1 else {}
    if extensions.get("code") != "RATE_LIMITED" or extensions.get("limit") != "costBudget":
        return None
    return int(extensions["retryAfterSeconds"])


class TextFramesWebSocket(ASGIWebSocketAdapter):
    """GraphQL over WebSocket is text frames; HTTP responses stay bytes (no decode of big pages)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class XkitGraphQL(GraphQL[Caller, None]):
    websocket_adapter_class = TextFramesWebSocket
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self.runtime = runtime
        settings = runtime.settings
        self.authenticator = ApiKeyAuthenticator.configured(runtime.store, settings)
        self.sockets = LiveSockets(runtime.store, recheck_seconds=settings.api_key_recheck_seconds)

        self.request_rate = runtime.services.request_rates

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        # A document refused because the key spent its cost budget is a 429 like a refused request.
        retry_after = _budget_retry_after(response_data)
        if retry_after is not None:
            sub_response.status_code = 429
            sub_response.headers["Retry-After"] = str(retry_after)
        return super().create_response(response_data, sub_response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_ide_request(scope):
            # The IDE page itself needs no key; the queries it sends do.
            await (await self.render_graphql_ide(Request(scope)))(scope, receive, send)
            return
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                identity = await self.authenticator.identify(request)
            except TooManyFailedKeys as throttled:
                await _error(429, throttled, headers={"Retry-After": str(throttled.retry_after)})(scope, receive, send)
                return
            if identity is None:
                has_key = "authorization" in request.headers
                message = (
                    "the API key is not valid" if has_key else "send your secret API key as Authorization: Bearer <key>"
                )
                await _error(401, Unauthenticated(message))(scope, receive, send)
                return
            scope["xkit.caller"] = identity
            wait = self.request_rate.take(identity.key_id)
            if wait:
                await _rate_limited(wait, self.request_rate.capacity)(scope, receive, send)
                return
            try:
                receive = await self._bounded_body(request)
            except BodyTooLarge as too_large:
                await _error(414 if scope["method"] == "GET" else 413, too_large)(scope, receive, send)
                return
            except BadInput as malformed:
                await _error(400, malformed)(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _bounded_body(self, request: Request) -> Receive:
        """Read the body within the limit (a GET's query string too), and give it to strawberry as if unread."""
        limit = self.runtime.settings.graphql_max_request_bytes
        if len(request.scope.get("query_string", b"")) > limit:
            raise BodyTooLarge(f"the query string is larger than the limit of {limit} bytes")
        body = await _read_body(request, limit)
        delivered = False
        receive = request.receive

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

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
        # This request was charged to the key's request rate before its body was read (see __call__).
        return Caller(self.runtime.services, identity.platform_id, api_key_id=identity.key_id, rate_charged=True)

    async def on_ws_connect(self, context: Caller) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket with the same key as HTTP, sent in the connection_init payload as
        `Authorization: "Bearer <key>"` (or `apiKey`). Refused: graphql-transport-ws closes with 4403,
        graphql-ws answers connection_error and closes."""
        params = context.connection_params or {}
        given = params.get("Authorization") or params.get("authorization") or params.get("apiKey") or ""
        scheme, _, key = str(given).partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else str(given).strip()
        try:
            identity = await self.authenticator.identify_key(key, self.sockets.address_of(context)) if key else None
        except TooManyFailedKeys as throttled:
            raise ConnectionRejectionError(
                {"message": throttled.message, "extensions": {"code": throttled.code, **throttled.extensions}}
            ) from None
        if identity is None:
            reason = "the API key is not valid" if key else "send your secret API key in the connection_init payload"
            raise ConnectionRejectionError({"message": reason, "extensions": {"code": "UNAUTHENTICATED"}})
        # Filed under its key before the acknowledgement: revoking the key closes this socket.
        self.sockets.authenticated(context, identity.key_id)
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
    if declared is not None and not declared.isdigit():
        raise BadInput("the Content-Length header is not a number")
    return await collect_within(
        request.stream(), declared, limit, lambda: BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    )


def _error(status: int, error: XkitError, *, headers: dict[str, str] | None = None) -> Response:
    """Every refusal outside GraphQL's own answers: the same JSON shape, `extensions.code` and all."""
    body = {"errors": [{"message": error.message, "extensions": {"code": error.code, **error.extensions}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


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
        # A subscription message is bounded like an HTTP request body.
        ws_max_size=settings.graphql_max_request_bytes,
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
            Route("/oauth/start", oauth_start),
            Route("/oauth/callback", oauth_callback),
            Route("/webhooks/{provider}", provider_webhook, methods=["POST"]),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
