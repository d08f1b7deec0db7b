"""/graphql over HTTP and WebSocket: the API key checked, the request rate and body bounded before
strawberry sees the request, and a spent cost budget answered as a 429."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any, cast

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.types.unset import UNSET, UnsetType

from connectors.kit.errors import BadInput, Unauthenticated
from gateway.auth import ApiKeyAuthenticator, TooManyFailedKeys
from gateway.bodies import BodyTooLarge, read_body
from gateway.documents import UNCACHED, PersistedQueries, PersistedQueryUnknown
from gateway.errors import error_response
from gateway.runtime import Runtime
from gateway.sockets import LegacyWSHandler, LiveSockets, TransportWSHandler
from resolvers.context import Caller
from resolvers.limits import OverBudget
from schema import schema


def rate_limited_response(wait: float, burst: float) -> Response:
    refused = OverBudget(
        f"too many requests with this key; retry in {math.ceil(wait)} s",
        limit="requests",
        maximum=burst,
        retry_after=wait,
    )
    return error_response(429, refused, headers={"Retry-After": str(math.ceil(wait))})


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
        self.persisted_queries = PersistedQueries(
            runtime.store,
            apq_enabled=settings.graphql_apq_enabled,
            max_documents=settings.graphql_apq_max_documents,
            max_bytes=settings.graphql_apq_max_bytes,
        )

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
                await error_response(429, throttled, headers={"Retry-After": str(throttled.retry_after)})(
                    scope, receive, send
                )
                return
            if identity is None:
                has_key = "authorization" in request.headers
                message = (
                    "the API key is not valid" if has_key else "send your secret API key as Authorization: Bearer <key>"
                )
                await error_response(401, Unauthenticated(message))(scope, receive, send)
                return
            scope["xkit.caller"] = identity
            wait = self.request_rate.take(identity.key_id)
            if wait:
                await rate_limited_response(wait, self.request_rate.capacity)(scope, receive, send)
                return
            try:
                receive = await self._bounded_body(request, identity.platform_id)
            except BodyTooLarge as too_large:
                await error_response(414 if scope["method"] == "GET" else 413, too_large)(scope, receive, send)
                return
            except PersistedQueryUnknown as unknown:
                # Answered as Apollo Server does (200, uncached): the client then sends the document itself.
                await error_response(200, unknown, headers=UNCACHED)(scope, receive, send)
                return
            except BadInput as malformed:
                await error_response(400, malformed)(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _bounded_body(self, request: Request, platform_id: uuid.UUID) -> Receive:
        """Read the body within the limit (a GET's query string too), give a persisted query its document,
        and give the result to strawberry as if unread."""
        limit = self.runtime.settings.graphql_max_request_bytes
        if len(request.scope.get("query_string", b"")) > limit:
            raise BodyTooLarge(f"the query string is larger than the limit of {limit} bytes")
        body = await self.persisted_queries.resolve(request.scope, await read_body(request, limit), platform_id)
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
