"""Open GraphQL WebSockets by the API key that opened them: revoking a key closes them.

A revocation announced on `store.keys_revoked` stops the socket's operations at once (nothing more is
sent, no change and no credentials) and then closes it with 4403 and `REVOKED_KEY`, on both protocols.
Since an announcement can be missed (another process on SQLite, a LISTEN connection that dropped), the
keys of open sockets are also re-checked in the database every `recheck_seconds` while any is open.

A refused `connection_init` says why. graphql-transport-ws closes with 4403 and one of these reasons
(a close frame holds at most 123 bytes of reason); legacy graphql-ws sends the same sentence as the
`connection_error` message, with `extensions.code` (UNAUTHENTICATED, or RATE_LIMITED when throttled):
- `NO_KEY`: the payload carried no key;
- `INVALID_KEY`: the key is not one this gateway issued;
- `REVOKED_KEY`: the key was revoked (at connection_init, or later while the socket was open);
- `throttled_reason(n)`: this address sent too many invalid keys; nothing is looked up for n seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Protocol

from graphql import GraphQLError, OperationDefinitionNode, OperationType
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message as TransportMessage
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage, OperationMessage, StartMessage

from gateway.auth import client_address
from gateway.errors import OperationNotDetermined
from gateway.graphql_http import is_request_error, operation_to_run
from resolvers.context import Caller
from schema.limits import parsed_document
from sync.storage.store import Store
from sync.tenancy.platforms import revoked_among

log = logging.getLogger("xkit.auth")

REFUSED_CLOSE_CODE = 4403
NO_KEY = 'Forbidden: no API key; send {"Authorization": "Bearer <key>"} as the connection_init payload'
INVALID_KEY = "Forbidden: the API key is not valid"
REVOKED_KEY = "Forbidden: the API key was revoked"
MAX_CLOSE_REASON_BYTES = 123  # what a WebSocket close frame can carry after its code


def throttled_reason(retry_after: int) -> str:
    return f"Forbidden: too many invalid API keys from this address; retry in {retry_after} s"


class SocketRefused(ConnectionRejectionError):
    """A refused connection_init, with the reason its close (or connection_error) gives."""

    def __init__(self, reason: str, code: str, **extensions: object) -> None:
        super().__init__({"message": reason, "extensions": {"code": code, **extensions}})
        self.reason = reason


class RevocableSocket(Protocol):
    context: Caller

    def stop_operations(self) -> None: ...

    async def close_revoked(self) -> None: ...

    def explain_refusal(self, reason: str) -> None: ...


class LiveSockets:
    """This process's authenticated WebSockets, by key id."""

    def __init__(self, store: Store, *, recheck_seconds: float) -> None:
        self.store = store
        self.recheck_seconds = recheck_seconds
        # By id(context): strawberry hands `on_ws_connect` the context only.
        self._open: dict[int, RevocableSocket] = {}
        self._address_of: dict[int, str] = {}
        self._key_of: dict[int, uuid.UUID] = {}
        self._by_key: dict[uuid.UUID, set[RevocableSocket]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._recheck: asyncio.Task[None] | None = None
        self._none_open = asyncio.Event()
        store.keys_revoked.subscribe(self._revoked)

    def opened(self, socket: RevocableSocket, address: str) -> None:
        self._open[id(socket.context)] = socket
        self._address_of[id(socket.context)] = address

    def address_of(self, context: Caller) -> str:
        """The client address of the socket whose context this is (failed-auth throttling counts by it)."""
        return self._address_of.get(id(context), "unknown")

    def refuse(self, context: Caller, refused: SocketRefused) -> SocketRefused:
        """Tell the socket whose context this is why it is being refused; returns the refusal to raise."""
        socket = self._open.get(id(context))
        if socket is not None:
            socket.explain_refusal(refused.reason)
        return refused

    def authenticated(self, context: Caller, key_id: uuid.UUID) -> None:
        """Called before the connection is acknowledged, so no revocation can fall between the two. A second
        connection_init (legacy graphql-ws allows it) moves the socket to its new key."""
        socket = self._open.get(id(context))
        if socket is None:
            return
        self._unfile(socket)
        self._key_of[id(context)] = key_id
        self._by_key.setdefault(key_id, set()).add(socket)
        self._none_open.clear()
        if self._recheck is None or self._recheck.done():
            self._recheck = asyncio.create_task(self._recheck_while_open())

    def closed(self, socket: RevocableSocket) -> None:
        self._unfile(socket)
        self._open.pop(id(socket.context), None)
        self._address_of.pop(id(socket.context), None)

    def _unfile(self, socket: RevocableSocket) -> None:
        key_id = self._key_of.pop(id(socket.context), None)
        sockets = self._by_key.get(key_id) if key_id is not None else None
        if key_id is not None and sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._by_key[key_id]
                if not self._by_key:
                    self._none_open.set()

    def count(self, key_id: uuid.UUID) -> int:
        return len(self._by_key.get(key_id, ()))

    def _revoked(self, key_id: uuid.UUID | None) -> None:
        if key_id is not None:
            self._close(key_id)
        elif self._by_key:
            self._spawn(self._recheck_now())

    def _close(self, key_id: uuid.UUID) -> None:
        sockets = self._by_key.pop(key_id, set())
        if not self._by_key:
            self._none_open.set()
        for socket in sockets:
            self._key_of.pop(id(socket.context), None)
            socket.stop_operations()  # at once: nothing is sent from here on
        if sockets:
            log.warning("API key %s was revoked: closing its %d WebSocket(s)", key_id, len(sockets))
        for socket in sockets:
            self._spawn(socket.close_revoked())

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _recheck_now(self) -> None:
        try:
            revoked = await revoked_among(self.store, list(self._by_key))
        except Exception:
            # The database is away for a moment: the next round tries again.
            log.warning("could not re-check the keys of open WebSockets", exc_info=True)
            return
        for key_id in revoked:
            self._close(key_id)

    async def _recheck_while_open(self) -> None:
        while self._by_key:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._none_open.wait(), self.recheck_seconds)
            if self._by_key:
                await self._recheck_now()


class _Tracked:
    """What both protocol handlers add: they register with the view's `sockets` while they run."""

    view: Any
    websocket: Any
    context: Caller
    revoked = False

    async def _tracked(self, handle: Any) -> None:
        sockets: LiveSockets = self.view.sockets
        sockets.opened(self, client_address(self.websocket.ws))  # type: ignore[arg-type]
        try:
            await handle()
        finally:
            sockets.closed(self)  # type: ignore[arg-type]


class ExplainedRefusal(AsyncWebSocketAdapter):
    """strawberry closes every refused graphql-transport-ws connection_init with 4403 "Forbidden"; this
    adapter, around the socket's own, puts the refusal's reason in place of that word."""

    def __init__(self, socket: ASGIWebSocketAdapter) -> None:
        super().__init__(socket.view)
        self.socket = socket
        self.ws: WebSocket = socket.ws
        self.refusal: str | None = None

    def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        return self.socket.iter_json(ignore_parsing_errors=ignore_parsing_errors)

    async def send_json(self, message: Mapping[str, object]) -> None:
        await self.socket.send_json(message)

    async def close(self, code: int, reason: str) -> None:
        if code == REFUSED_CLOSE_CODE and self.refusal is not None:
            reason = self.refusal
        await self.socket.close(code, reason)


def operation_of(context: Caller, payload: Mapping[str, Any]) -> OperationDefinitionNode | None:
    """The operation a WebSocket message runs, chosen by GraphQL's rules as on HTTP: a document with several
    operations runs none unless `operationName` names one (OperationNotDetermined). None when the document
    does not parse: GraphQL then reports the syntax error as it always does."""
    query = payload.get("query")
    name = payload.get("operationName")
    if not isinstance(query, str):
        return None
    try:
        document = parsed_document(query, context.services.limits.max_tokens)
    except (GraphQLError, RecursionError):
        return None
    return operation_to_run(document, name if isinstance(name, str) and name else None)


def _formatted(error: OperationNotDetermined) -> Any:
    return {"message": error.message, "extensions": {"code": error.code}}


class TransportWSHandler(_Tracked, BaseGraphQLTransportWSHandler[Caller, None]):
    """graphql-transport-ws, closed with 4403 and the reason when its key is refused or revoked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.websocket, ASGIWebSocketAdapter)
        self.explained = ExplainedRefusal(self.websocket)
        self.websocket = self.explained

    def explain_refusal(self, reason: str) -> None:
        self.explained.refusal = reason

    async def handle(self) -> None:
        await self._tracked(super().handle)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.revoked:
            return
        if self.connection_acknowledged and message["id"] not in self.operations:
            try:
                operation_of(self.context, message["payload"])
            except OperationNotDetermined as undetermined:
                await self.send_message({"id": message["id"], "type": "error", "payload": [_formatted(undetermined)]})
                return
        await super().handle_subscribe(message)

    async def send_message(self, message: TransportMessage) -> None:
        if not self.revoked:  # not even an operation's last words: the socket is closed instead
            await super().send_message(message)

    def stop_operations(self) -> None:
        self.revoked = True
        for operation in self.operations.values():
            if operation.task is not None:
                operation.task.cancel()
        self.operations.clear()

    async def close_revoked(self) -> None:
        with contextlib.suppress(RuntimeError):  # already closed by the client
            await self.websocket.close(code=REFUSED_CLOSE_CODE, reason=REVOKED_KEY)


class LegacyWSHandler(_Tracked, BaseGraphQLWSHandler[Caller, None]):
    """Legacy graphql-ws, closed the same way when its key is revoked. A refused connection_init is
    answered with connection_error, whose message already gives the reason."""

    def explain_refusal(self, reason: str) -> None:
        pass

    async def handle(self) -> None:
        await self._tracked(super().handle)

    async def handle_start(self, message: StartMessage) -> None:
        if self.revoked:
            return
        if self.connection_acknowledged:
            try:
                operation_of(self.context, message["payload"])
            except OperationNotDetermined as undetermined:
                await self.send_message(ErrorMessage(type="error", id=message["id"], payload=_formatted(undetermined)))
                return
        await super().handle_start(message)

    async def handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: dict[str, object] | None
    ) -> None:
        """Subscriptions as strawberry runs them; a query or mutation (which strawberry's legacy handler would
        fail with an internal error) runs once: its result as one `data` message, then `complete`."""
        operation = operation_of(self.context, {"query": query, "operationName": operation_name})
        if operation is None or operation.operation is OperationType.SUBSCRIPTION:
            await super().handle_async_results(operation_id, query, operation_name, variables)
            return
        try:
            result = await self.schema.execute(
                query, variable_values=variables, context_value=self.context, operation_name=operation_name
            )
            if is_request_error(result) and result.errors:
                await self.send_message(ErrorMessage(type="error", id=operation_id, payload=result.errors[0].formatted))
                return
            await self.send_data_message(result, operation_id)
            await self.send_message({"type": "complete", "id": operation_id})
        finally:
            self.tasks.pop(operation_id, None)

    async def send_message(self, message: OperationMessage) -> None:
        if not self.revoked:  # a cancelled operation would say "complete": the socket is closed instead
            await super().send_message(message)

    def stop_operations(self) -> None:
        self.revoked = True
        for task in self.tasks.values():
            task.cancel()
        if self.keep_alive_task is not None:
            self.keep_alive_task.cancel()

    async def close_revoked(self) -> None:
        await self.cleanup()
        with contextlib.suppress(RuntimeError):
            await self.websocket.close(code=REFUSED_CLOSE_CODE, reason=REVOKED_KEY)
