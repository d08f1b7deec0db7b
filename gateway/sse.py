"""GraphQL over Server-Sent Events: the `graphql-sse` protocol, both of its modes.

Distinct connections, on /graphql and on STREAM_PATH: a POST (or GET) with `Accept: text/event-stream`
runs one operation and streams its results as `next` events, then `complete`. Single connection, on
STREAM_PATH (/graphql itself answers methods other than GET and POST with 405, as GraphQL over HTTP
says): a PUT reserves a stream and answers its token; a GET with the token (header
`X-GraphQL-Event-Stream-Token` or `?token=`) opens it; POSTs with the token and an
`extensions.operationId` run operations whose events carry that id; `DELETE ?operationId=` stops one.
A reservation lives in the process that made it (behind several processes: sticky sessions).

The gateway has authenticated, rate-limited and bounded each request before it gets here. Operations run
through the schema like any other (cost, depth, subscription slots, loaders per event), one context each.
An open stream is filed with the process's live sockets under its key, so revoking the key ends it: each
running operation gets one last `next` with an UNAUTHENTICATED error and its `complete`, then the
response ends. A client that goes away stops the stream's operations at once, and their slots with them.
Apollo's multipart subscriptions (gateway/multipart.py) are the same streams in another framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, cast

import orjson
from graphql import GraphQLError
from graphql.language import OperationType as OperationKind
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from connectors.kit.errors import Conflict, NotFound, XkitError
from gateway.auth import client_address
from gateway.errors import (
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    OperationNotDetermined,
    RequestRefused,
    error_body,
    error_response,
)
from gateway.graphql_http import (
    graphql_request,
    media_ranges,
    operation_to_run,
    parameters_from_body,
    parameters_from_query_string,
    wants_event_stream,
)
from gateway.sockets import LiveSockets
from resolvers.context import Caller
from resolvers.limits import OverBudget
from schema import schema
from schema.limits import parsed_document

log = logging.getLogger("xkit.graphql")

STREAM_PATH = "/graphql/stream"
TOKEN_HEADER = "x-graphql-event-stream-token"
TOKEN_PARAMETER = "token"
EVENT_STREAM = "text/event-stream"
# A reservation that no stream opens within this long is forgotten.
RESERVATION_SECONDS = 30.0
# Frames waiting for a slow client; when full, operations wait (and the change feed moves a subscriber that
# falls too far behind back to reading the log).
OUTBOX_FRAMES = 64
REVOKED = {"message": "the API key was revoked", "extensions": {"code": "UNAUTHENTICATED"}}
FAILED = {"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}


class Framing:
    """How a stream writes its frames; graphql-sse events here, Apollo's multipart parts in multipart.py."""

    media_type: ClassVar[str] = "text/event-stream; charset=utf-8"

    def opening(self) -> bytes:
        # A comment at once: some browsers show nothing of a stream before its first bytes.
        return b":\n\n"

    def next_event(self, operation_id: str | None, payload: GraphQLHTTPResponse) -> bytes:
        data = payload if operation_id is None else {"id": operation_id, "payload": payload}
        return b"event: next\ndata: " + orjson.dumps(data) + b"\n\n"

    def complete_event(self, operation_id: str | None) -> bytes:
        if operation_id is None:
            return b"event: complete\ndata:\n\n"
        return b"event: complete\ndata: " + orjson.dumps({"id": operation_id}) + b"\n\n"

    def keep_alive(self) -> bytes:
        return b":\n\n"

    def refused(self, operation_id: str | None, error: dict[str, Any]) -> bytes:
        """An operation's last words when its key is revoked."""
        return self.next_event(operation_id, {"errors": [error]}) + self.complete_event(operation_id)

    def closing(self) -> bytes:
        return b""


@dataclass(frozen=True)
class Operation:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    allowed: frozenset[OperationType]
    # Why the document cannot run, told in the stream as GraphQL reports validation errors.
    refusal: XkitError | None = None

    @property
    def operation_id(self) -> str | None:
        given = (self.extensions or {}).get("operationId")
        return str(given) if given not in (None, "") else None


NOT_OVER_GET = frozenset({OperationType.QUERY, OperationType.SUBSCRIPTION})


async def read_operation(request: Request, max_tokens: int) -> Operation:
    """The GraphQL request in a GET's query string or a POST's JSON body (the gateway bounded both and gave a
    persisted query its document), read as GraphQL over HTTP reads it."""
    if request.method == "GET":
        query_string = request.query_params
        parameters = parameters_from_query_string({name: query_string.getlist(name) for name in query_string})
    else:
        parameters = parameters_from_body(request.headers.get("content-type"), await request.body())
    given = graphql_request(parameters)
    if given.query is None:
        raise BadRequest('the request has no `query`: send the GraphQL document as {"query": "..."}')
    allowed = NOT_OVER_GET if request.method == "GET" else frozenset(OperationType)
    operation = Operation(given.query, given.variables, given.operation_name, given.extensions, allowed)
    try:
        document = parsed_document(given.query, max_tokens)
    except (GraphQLError, RecursionError):
        return operation  # the stream reports the syntax error (or the limit the parser hit) as GraphQL does
    try:
        chosen = operation_to_run(document, given.operation_name)
    except OperationNotDetermined as undetermined:
        return replace(operation, refusal=undetermined)
    if chosen.operation is OperationKind.MUTATION and request.method == "GET":
        raise MethodNotAllowed("a mutation changes data, so it is sent with POST; GET runs queries", allowed=POST)
    return replace(operation, operation_name=chosen.name.value if chosen.name else None)


POST = ("POST",)
METHODS = ("GET", "POST", "PUT", "DELETE")


class EventStream:
    """One open streamed response and the operations whose results it carries. Filed with the process's
    live sockets while it is open (it is a `RevocableSocket`)."""

    def __init__(self, context: Caller, framing: Framing, *, keep_alive_seconds: float) -> None:
        self.context = context
        self.framing = framing
        self.keep_alive_seconds = keep_alive_seconds
        self.operations: dict[str | None, asyncio.Task[None]] = {}
        self.revoked = False
        self._revoked_operations: list[str | None] = []
        # Frames to send, in order; None ends the response.
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue(OUTBOX_FRAMES)

    def start(self, operation: Operation, caller: Caller, *, ends_the_stream: bool) -> None:
        if self.revoked:
            return
        operation_id = operation.operation_id if not ends_the_stream else None
        task = asyncio.create_task(self._run(operation_id, operation, caller, ends_the_stream))
        self.operations[operation_id] = task
        task.add_done_callback(lambda done: self._finished(operation_id, done))

    def stop(self, operation_id: str) -> None:
        task = self.operations.pop(operation_id, None)
        if task is not None:
            task.cancel()

    async def _run(self, operation_id: str | None, operation: Operation, caller: Caller, ends_the_stream: bool) -> None:
        if operation.refusal is not None:
            refused: GraphQLHTTPResponse = {"errors": error_body(operation.refusal)["errors"]}
            await self._outbox.put(self.framing.next_event(operation_id, refused))
            await self._finish(operation_id, ends_the_stream)
            return
        try:
            results = await schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=caller,
                operation_name=operation.operation_name,
                operation_extensions=operation.extensions,
                allowed_operation_types=operation.allowed,
            )
            async with contextlib.aclosing(results):
                async for result in results:
                    # The schema enables no @defer or @stream: every result is a whole one.
                    whole = cast("ExecutionResult", result)
                    await self._outbox.put(self.framing.next_event(operation_id, process_result(whole)))
        except Exception:
            # GraphQL reports every error of an operation itself; this is a fault of ours, masked like one.
            log.exception("an operation on an event stream failed")
            await self._outbox.put(self.framing.next_event(operation_id, {"errors": [FAILED]}))
        await self._finish(operation_id, ends_the_stream)

    async def _finish(self, operation_id: str | None, ends_the_stream: bool) -> None:
        await self._outbox.put(self.framing.complete_event(operation_id))
        if ends_the_stream:
            await self._outbox.put(None)

    def _finished(self, operation_id: str | None, task: asyncio.Task[None]) -> None:
        if self.operations.get(operation_id) is task:
            del self.operations[operation_id]

    async def respond(self, send: Send, receive: Receive) -> None:
        """Stream until the operations end the stream, the client goes away or the key is revoked."""
        headers = [
            (b"content-type", self.framing.media_type.encode()),
            # Not cached, not transformed, not buffered by a proxy on the way (nginx reads the last).
            (b"cache-control", b"no-cache, no-transform"),
            (b"x-accel-buffering", b"no"),
        ]
        writer = asyncio.create_task(self._write(send, headers))
        watcher = asyncio.create_task(_until_disconnected(receive))
        try:
            await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            running = [writer, watcher, *self.operations.values()]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _write(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.framing.opening(), "more_body": True})
        while True:
            try:
                frame = await asyncio.wait_for(self._outbox.get(), self.keep_alive_seconds)
            except TimeoutError:
                frame = self.framing.keep_alive()
            if frame is None:
                break
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": self.framing.closing(), "more_body": False})

    # RevocableSocket: what LiveSockets calls when the stream's key is revoked.

    def stop_operations(self) -> None:
        self.revoked = True
        self._revoked_operations = list(self.operations)
        for task in self.operations.values():
            task.cancel()
        while not self._outbox.empty():  # nothing of theirs is sent from here on
            self._outbox.get_nowait()

    def explain_refusal(self, reason: str) -> None:
        """A stream is refused before it opens, in a JSON answer that says why: nothing to add here."""

    async def close_revoked(self) -> None:
        for operation_id in self._revoked_operations:
            await self._outbox.put(self.framing.refused(operation_id, REVOKED))
        await self._outbox.put(None)


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


@dataclass
class Reservation:
    key_id: uuid.UUID
    expires_at: float
    stream: EventStream | None = None


@dataclass
class Reservations:
    """Single-connection streams of this process by token: reserved (for RESERVATION_SECONDS), then open."""

    per_key: int
    clock: Callable[[], float] = time.monotonic
    _by_token: dict[str, Reservation] = field(default_factory=dict)

    def reserve(self, key_id: uuid.UUID) -> str:
        now = self.clock()
        for token in [t for t, r in self._by_token.items() if r.stream is None and r.expires_at <= now]:
            del self._by_token[token]
        held = sum(1 for r in self._by_token.values() if r.key_id == key_id)
        if held >= self.per_key:
            raise OverBudget(
                f"this key already holds {held} event streams, the most allowed; close one first",
                limit="eventStreams",
                maximum=self.per_key,
                retry_after=RESERVATION_SECONDS,
            )
        token = secrets.token_urlsafe(24)
        self._by_token[token] = Reservation(key_id, now + RESERVATION_SECONDS)
        return token

    def find(self, token: str, key_id: uuid.UUID) -> Reservation:
        """The key's own reservation; another key's token is as unknown as a made-up one."""
        reservation = self._by_token.get(token)
        if reservation is None or reservation.key_id != key_id:
            raise NotFound("no event stream has this token; reserve one with PUT")
        if reservation.stream is None and reservation.expires_at <= self.clock():
            del self._by_token[token]
            raise NotFound("no event stream has this token; reserve one with PUT")
        return reservation

    def release(self, token: str) -> None:
        self._by_token.pop(token, None)

    def __len__(self) -> int:
        return len(self._by_token)


class EventStreams:
    """The streamed side of /graphql: graphql-sse in both modes, and any other framing a request accepts."""

    def __init__(
        self,
        sockets: LiveSockets,
        context_for: Callable[[Request], Awaitable[Caller]],
        *,
        keep_alive_seconds: float,
        streams_per_key: int,
        framings: Iterable[tuple[Callable[[str], bool], Framing]] = (),
    ) -> None:
        self.sockets = sockets
        self.context_for = context_for
        self.keep_alive_seconds = keep_alive_seconds
        self.reservations = Reservations(streams_per_key)
        # Other framings, each with the test of an Accept header that asks for it.
        self.framings = [(accepts_event_stream, Framing()), *framings]

    def claims(self, request: Request) -> bool:
        """Whether the GraphQL endpoint hands this request here: it accepts a stream, or it came to STREAM_PATH."""
        return wants_event_stream(request.headers.get("accept")) or request.scope["path"].endswith(STREAM_PATH)

    async def serve(self, request: Request, send: Send) -> None:
        """Answer a request `claims` took, authenticated by the gateway (its identity in the scope)."""
        try:
            respond = await self._dispatch(request)
        except OverBudget as refused:
            retry = str(int(refused.extensions["retryAfterSeconds"]))
            respond = error_response(429, refused, headers={"Retry-After": retry})
        except RequestRefused as refused:
            respond = error_response(refused.status, refused, headers=refused.headers)
        except XkitError as refused:
            respond = error_response(_STATUS.get(type(refused), 400), refused)
        await respond(request.scope, request.receive, send)

    async def _dispatch(self, request: Request) -> ASGIApp:
        key_id = request.scope["xkit.caller"].key_id
        token = _token_of(request)
        if request.method == "PUT":
            return Response(self.reservations.reserve(key_id), status_code=201, media_type="text/plain")
        if request.method == "DELETE":
            return self._stop(request, token, key_id)
        if request.method not in ("GET", "POST"):
            raise MethodNotAllowed("GraphQL over event streams uses GET, POST, PUT and DELETE", allowed=METHODS)
        if token is not None and accepts_event_stream(request.headers.get("accept", "")):
            return await self._open_reserved(request, token, key_id)
        framing = self._framing_for(request)
        if framing is not None:
            return await self._distinct(request, framing)
        if token is None:
            raise NotAcceptable(
                f"{STREAM_PATH} streams: send Accept: {EVENT_STREAM}, or the token of a stream you reserved"
            )
        return await self._post_to_reserved(request, token, key_id)

    async def _distinct(self, request: Request, framing: Framing) -> ASGIApp:
        caller = await self.context_for(request)
        operation = await read_operation(request, caller.services.limits.max_tokens)
        stream = EventStream(caller, framing, keep_alive_seconds=self.keep_alive_seconds)
        stream.start(operation, caller, ends_the_stream=True)
        return self._filed(request, stream)

    async def _open_reserved(self, request: Request, token: str, key_id: uuid.UUID) -> ASGIApp:
        caller = await self.context_for(request)
        reservation = self.reservations.find(token, key_id)
        if reservation.stream is not None:
            raise Conflict("an event stream is open for this token already")
        stream = reservation.stream = EventStream(caller, Framing(), keep_alive_seconds=self.keep_alive_seconds)
        filed = self._filed(request, stream)

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await filed(scope, receive, send)
            finally:
                self.reservations.release(token)  # a token opens one stream, once

        return respond

    async def _post_to_reserved(self, request: Request, token: str, key_id: uuid.UUID) -> ASGIApp:
        stream = self.reservations.find(token, key_id).stream
        if stream is None:
            raise NotFound("open the event stream of this token (GET with Accept: text/event-stream) first")
        caller = await self.context_for(request)
        operation = await read_operation(request, caller.services.limits.max_tokens)
        operation_id = operation.operation_id
        if operation_id is None:
            raise BadRequest("an operation on a single-connection stream needs `extensions.operationId`")
        if operation_id in stream.operations:
            raise Conflict(f"an operation with the id {operation_id!r} is running on this stream already")
        stream.start(operation, caller, ends_the_stream=False)
        return Response(status_code=202)

    def _stop(self, request: Request, token: str | None, key_id: uuid.UUID) -> ASGIApp:
        if token is None:
            raise BadRequest(f"say which stream: the {TOKEN_HEADER} header or the `token` parameter")
        stream = self.reservations.find(token, key_id).stream
        operation_id = request.query_params.get("operationId")
        if not operation_id:
            raise BadRequest("say which operation to stop: `operationId`")
        if stream is not None:
            stream.stop(operation_id)
        return Response(status_code=200)

    def _filed(self, request: Request, stream: EventStream) -> ASGIApp:
        """The stream's response, filed under its key while it is open so that revoking the key ends it."""

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            key_id = request.scope["xkit.caller"].key_id
            self.sockets.opened(stream, client_address(request))
            self.sockets.authenticated(stream.context, key_id)
            try:
                await stream.respond(send, receive)
            finally:
                self.sockets.closed(stream)

        return respond

    def _framing_for(self, request: Request) -> Framing | None:
        accept = request.headers.get("accept", "")
        return next((framing for accepts, framing in self.framings if accepts(accept)), None)


_STATUS: dict[type[XkitError], int] = {NotFound: 404, Conflict: 409}


def accepts_event_stream(accept: str) -> bool:
    return any(r.quality > 0 and r.name == EVENT_STREAM for r in media_ranges(accept))


def _token_of(request: Request) -> str | None:
    return request.headers.get(TOKEN_HEADER) or request.query_params.get(TOKEN_PARAMETER) or None
