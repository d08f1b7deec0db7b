"""/graphql over HTTP and WebSocket: the API key checked, the request rate and body bounded before any GraphQL
runs; over HTTP, the request read and answered as the GraphQL-over-HTTP spec says (gateway/graphql_http.py),
refusals included, and a spent cost budget answered as a 429."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any, cast

import orjson
from graphql import GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http import GraphQLRequestData, process_result
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as AllowedOperation
from strawberry.types.unset import UNSET, UnsetType

from connectors.kit.errors import BadInput, Unauthenticated
from gateway.auth import ApiKeyAuthenticator, TooManyFailedKeys
from gateway.bodies import check_query_string, read_body
from gateway.documents import UNCACHED, PersistedQueries, PersistedQueryUnknown
from gateway.errors import (
    JSON,
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    NotAuthenticated,
    OperationNotDetermined,
    RequestRefused,
    SubscriptionNeedsStream,
    error_body,
    error_response,
    json_response,
)
from gateway.graphql_http import (
    graphql_request,
    is_request_error,
    operation_to_run,
    parameters_from_body,
    parameters_from_query_string,
    request_error_status,
    response_media_type,
)
from gateway.ide import graphiql_page, is_browser_navigation
from gateway.multipart import MultipartFraming, accepts_multipart_subscription
from gateway.runtime import Runtime
from gateway.sockets import (
    INVALID_KEY,
    NO_KEY,
    REVOKED_KEY,
    LegacyWSHandler,
    LiveSockets,
    SocketRefused,
    TransportWSHandler,
    throttled_reason,
)
from gateway.sse import EventStreams
from resolvers.context import Caller
from resolvers.limits import OverBudget
from schema import schema
from schema.limits import parsed_document
from sync.tenancy.platforms import KeyIdentity, was_revoked

METHODS = ("GET", "POST")
POST = ("POST",)
# What each method may run: GET is safe, so queries only. A subscription needs a stream (see `_serve_stream`).
RUNNABLE = {"GET": (AllowedOperation.QUERY,), "POST": (AllowedOperation.QUERY, AllowedOperation.MUTATION)}

Refusal = RequestRefused | TooManyFailedKeys | OverBudget


def refusal_response(refused: Refusal, media_type: str = JSON) -> Response:
    if isinstance(refused, RequestRefused):
        return error_response(refused.status, refused, headers=refused.headers, media_type=media_type)
    # The others are rates (a key's requests, an address's invalid keys): they say when to come back.
    retry_after = str(math.ceil(refused.retry_after))
    return error_response(429, refused, headers={"Retry-After": retry_after}, media_type=media_type)


def _budget_retry_after(response_data: Any) -> int | None:
    """The wait, when the one error refusing a request is its key's spent cost budget (answered as a 429)."""
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
        # GraphiQL is our own page (gateway/ide.py), never strawberry's, which loads its files from a CDN.
        super().__init__(schema, graphql_ide=None)
        self.runtime = runtime
        settings = runtime.settings
        self.authenticator = ApiKeyAuthenticator.configured(runtime.store, settings)
        self.sockets = LiveSockets(runtime.store, recheck_seconds=settings.api_key_recheck_seconds)
        self.event_streams = EventStreams(
            self.sockets,
            self.get_context,
            keep_alive_seconds=settings.event_stream_keep_alive_seconds,
            streams_per_key=settings.graphql_max_subscriptions_per_key,
            framings=[(accepts_multipart_subscription, MultipartFraming())],
        )

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
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # a WebSocket: its key comes in connection_init
            return
        if self._is_ide_request(scope):
            # The IDE page itself needs no key; the queries it sends do. A shared link's query, variables and
            # operation name are read by the page, not run here.
            await (await self.render_graphql_ide(Request(scope)))(scope, receive, send)
            return
        request = Request(scope, receive)
        if self.event_streams.claims(request):
            # Streamed over HTTP (Server-Sent Events, Apollo's multipart; gateway/sse.py) and served apart.
            await self._serve_stream(request, send)
            return
        response = await self._serve_http(request)
        await response(scope, receive, send)

    async def _serve_http(self, request: Request) -> Response:
        """One GraphQL request, one JSON answer, in the media type the client accepts."""
        media_type = response_media_type(request.headers.get("accept"))
        try:
            if request.method not in METHODS:
                raise MethodNotAllowed(f"/graphql takes GET (queries) and POST, not {request.method}", allowed=METHODS)
            if media_type is None:
                raise NotAcceptable(
                    "GraphQL answers are application/graphql-response+json or application/json; "
                    "the Accept header allows neither"
                )
            await self._admit(request)
            given = await self._read_graphql_request(request)
            query = await self._document_of(request, given)
            return await self._execute(request, given, query, media_type)
        except (RequestRefused, TooManyFailedKeys, OverBudget) as refused:
            return refusal_response(refused, media_type or JSON)
        except PersistedQueryUnknown as unknown:
            # Answered as Apollo Server does (200, uncached): the client then sends the document itself.
            return error_response(200, unknown, headers=UNCACHED, media_type=media_type or JSON)
        except BadInput as malformed:  # a malformed persisted query, a hash that is not its document's
            return error_response(400, malformed, media_type=media_type or JSON)

    async def _admit(self, request: Request) -> KeyIdentity:
        """The key's identity, charged one request to its rate, before the body is read."""
        identity = await self.authenticator.identify(request)
        if identity is None:
            if "authorization" in request.headers:
                challenge = 'Bearer error="invalid_token"'
                raise NotAuthenticated("the API key is not valid", headers={"WWW-Authenticate": challenge})
            raise NotAuthenticated(
                "send your secret API key as Authorization: Bearer <key>", headers={"WWW-Authenticate": "Bearer"}
            )
        request.scope["xkit.caller"] = identity
        wait = self.request_rate.take(identity.key_id)
        if wait:
            raise OverBudget(
                f"too many requests with this key; retry in {math.ceil(wait)} s",
                limit="requests",
                maximum=self.request_rate.capacity,
                retry_after=wait,
            )
        return identity

    async def _read_graphql_request(self, request: Request) -> GraphQLRequestData:
        """The GraphQL request's parameters, well-formed (a GET's from its query string, a POST's from its JSON body),
        read within the size limit."""
        limit = self.runtime.settings.graphql_max_request_bytes
        check_query_string(request, limit)
        if request.method == "GET":
            query_string = request.query_params
            parameters = parameters_from_query_string({name: query_string.getlist(name) for name in query_string})
        else:
            try:
                body = await read_body(request, limit)
            except BadInput as malformed:
                raise BadRequest(malformed.message) from None
            parameters = parameters_from_body(request.headers.get("content-type"), body)
        return graphql_request(parameters)

    async def _document_of(self, request: Request, given: GraphQLRequestData) -> str:
        """The GraphQL document the request runs: its `query`, or the persisted document its hash names."""
        platform_id = request.scope["xkit.caller"].platform_id
        stored = await self.persisted_queries.query_for(given.query, given.extensions, platform_id)
        if stored is not None:
            return stored
        if given.query is None:
            raise BadRequest('the request has no `query`: send the GraphQL document as {"query": "..."}')
        return given.query

    async def _execute(self, request: Request, given: GraphQLRequestData, query: str, media_type: str) -> Response:
        try:
            operation_name = self._operation_name(query, given.operation_name, request.method)
        except OperationNotDetermined as undetermined:
            body = error_body(undetermined)
            return json_response(body, request_error_status(body, media_type), media_type)
        result = await self.schema.execute(
            query,
            variable_values=given.variables,
            context_value=await self.get_context(request),
            operation_name=operation_name,
            allowed_operation_types=RUNNABLE[request.method],
            operation_extensions=given.extensions,
        )
        return self._graphql_response(result, media_type)

    def _operation_name(self, query: str, given: str | None, method: str) -> str | None:
        """The name of the operation to run, once the document says which it is and that this request may run
        it. Refused before anything runs: a mutation over GET (405), a subscription without a stream (406)."""
        try:
            document = parsed_document(query, self.runtime.services.limits.max_tokens)
        except (GraphQLError, RecursionError):
            return given  # GraphQL reports the syntax error (or the limit the parser hit) as it always does
        operation = operation_to_run(document, given)
        if operation.operation is OperationType.SUBSCRIPTION:
            raise SubscriptionNeedsStream(
                "a subscription streams its events: subscribe over WebSocket on this URL (graphql-transport-ws or "
                "graphql-ws), or over Server-Sent Events (send Accept: text/event-stream)"
            )
        if operation.operation is OperationType.MUTATION and method == "GET":
            raise MethodNotAllowed("a mutation changes data, so it is sent with POST; GET runs queries", allowed=POST)
        return operation.name.value if operation.name else None

    def _graphql_response(self, result: ExecutionResult, media_type: str) -> Response:
        body = process_result(result)
        if not is_request_error(result):
            return json_response(body, 200, media_type)
        # Refused before execution: GraphQL's response then has no `data` entry at all.
        del body["data"]
        retry_after = _budget_retry_after(body)
        if retry_after is not None:
            return json_response(body, 429, media_type, {"Retry-After": str(retry_after)})
        return json_response(body, request_error_status(body, media_type), media_type)

    async def _serve_stream(self, request: Request, send: Send) -> None:
        """A request for a streamed answer (Server-Sent Events, multipart): admitted like every request (key,
        rate, body size, a persisted query given its document), then served by gateway/sse.py."""
        try:
            identity = await self._admit(request)
            receive = await self._bounded_body(request, identity.platform_id)
        except (RequestRefused, TooManyFailedKeys, OverBudget) as refused:
            await refusal_response(refused)(request.scope, request.receive, send)
            return
        except PersistedQueryUnknown as unknown:
            await error_response(200, unknown, headers=UNCACHED)(request.scope, request.receive, send)
            return
        except BadInput as malformed:
            await error_response(400, malformed)(request.scope, request.receive, send)
            return
        await self.event_streams.serve(Request(request.scope, receive), send)

    async def _bounded_body(self, request: Request, platform_id: uuid.UUID) -> Receive:
        """Read the body within the limit (a GET's query string too), give a persisted query its document,
        and give the result to strawberry as if unread."""
        limit = self.runtime.settings.graphql_max_request_bytes
        check_query_string(request, limit)
        try:
            body = await read_body(request, limit)
        except BadInput as malformed:
            raise BadRequest(malformed.message) from None
        body = await self.persisted_queries.resolve(request.scope, body, platform_id)
        delivered = False
        receive = request.receive

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page.page(request)

    @staticmethod
    def _is_ide_request(scope: Scope) -> bool:
        """A browser opening /graphql (a shared `?query=…` link too); a GraphQL client's GET runs the query."""
        if scope["method"] != "GET":
            return False
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        return is_browser_navigation(accept)

    async def get_context(self, request: Any, response: Any = None) -> Caller:
        identity = request.scope.get("xkit.caller")
        if identity is None:  # a WebSocket: the key comes in connection_init (see on_ws_connect)
            return Caller(self.runtime.services, NO_PLATFORM)
        # This request was charged to the key's request rate before its body was read (see `_admit`).
        return Caller(self.runtime.services, identity.platform_id, api_key_id=identity.key_id, rate_charged=True)

    async def on_ws_connect(self, context: Caller) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket with the same key as HTTP, sent in the connection_init payload as
        `Authorization: "Bearer <key>"` (or `apiKey`). Refused, graphql-transport-ws closes with 4403 and
        graphql-ws answers connection_error; either says why (see gateway/sockets.py)."""
        params = context.connection_params or {}
        given = params.get("Authorization") or params.get("authorization") or params.get("apiKey") or ""
        scheme, _, key = str(given).partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else str(given).strip()
        if not key:
            raise self.sockets.refuse(context, SocketRefused(NO_KEY, Unauthenticated.code))
        try:
            identity = await self.authenticator.identify_key(key, self.sockets.address_of(context))
        except TooManyFailedKeys as throttled:
            refused = SocketRefused(throttled_reason(throttled.retry_after), throttled.code, **throttled.extensions)
            raise self.sockets.refuse(context, refused) from None
        if identity is None:
            reason = REVOKED_KEY if await was_revoked(self.runtime.store, key) else INVALID_KEY
            raise self.sockets.refuse(context, SocketRefused(reason, Unauthenticated.code))
        # Filed under its key before the acknowledgement: revoking the key closes this socket.
        self.sockets.authenticated(context, identity.key_id)
        context.platform_id = identity.platform_id
        context.api_key_id = identity.key_id
        return cast("UnsetType", UNSET)  # acknowledge without a payload


# The platform of a WebSocket that has not sent its key yet: owns nothing, so every read finds nothing.
NO_PLATFORM = uuid.UUID(int=0)
