"""Operations over WebSocket follow GraphQL's rules as they do over HTTP: a document with several operations
runs only the one `operationName` names (none without it), and legacy graphql-ws runs queries and mutations
once instead of failing them with an internal error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from connectors.kit.http import HttpKit
from sync.storage.store import Store
from tests.support import Gateway, Tenant, data, gateway, new_tenant

TRANSPORT_WS, LEGACY_WS = "graphql-transport-ws", "graphql-ws"
START = {TRANSPORT_WS: "subscribe", LEGACY_WS: "start"}
RESULT = {TRANSPORT_WS: "next", LEGACY_WS: "data"}
TWO_OPERATIONS = """
query Uris { redirectUris }
mutation Add { addRedirectUri(uri: "https://app.example.com/back") }
"""


@pytest_asyncio.fixture
async def tenant(store: Store) -> Tenant:
    return await new_tenant(store)


@pytest_asyncio.fixture
async def api(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Gateway]:
    async with gateway(store, kit, secret_key) as served:
        yield served


async def opened(api: Gateway, protocol: str, tenant: Tenant) -> ClientConnection:
    socket = await connect(api.url.replace("http://", "ws://") + "/graphql", subprotocols=[protocol])  # type: ignore[list-item]
    await socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {tenant.api_key}"}}))
    acknowledged = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert acknowledged["type"] == "connection_ack"
    return socket


async def run(socket: ClientConnection, protocol: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message the operation gets, up to its `complete` or `error`."""
    await socket.send(json.dumps({"id": "1", "type": START[protocol], "payload": payload}))
    messages = []
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if message["type"] == "ka":
            continue
        messages.append(message)
        if message["type"] in ("complete", "error"):
            return messages


async def redirect_uris(api: Gateway, tenant: Tenant) -> list[str]:
    uris: list[str] = data(await api.graphql("{ redirectUris }", tenant.api_key))["redirectUris"]
    return uris


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_several_operations_without_a_name_run_none(api: Gateway, tenant: Tenant, protocol: str) -> None:
    async with await opened(api, protocol, tenant) as socket:
        messages = await run(socket, protocol, {"query": TWO_OPERATIONS})
    assert [m["type"] for m in messages] == ["error"]
    errors = messages[0]["payload"] if protocol == TRANSPORT_WS else [messages[0]["payload"]]
    assert errors[0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"
    assert "Uris, Add" in errors[0]["message"] and "operationName" in errors[0]["message"]
    assert await redirect_uris(api, tenant) == []  # the mutation did not run


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_unknown_operation_name_runs_nothing(api: Gateway, tenant: Tenant, protocol: str) -> None:
    async with await opened(api, protocol, tenant) as socket:
        messages = await run(socket, protocol, {"query": TWO_OPERATIONS, "operationName": "Missing"})
    errors = messages[0]["payload"] if protocol == TRANSPORT_WS else [messages[0]["payload"]]
    assert messages[0]["type"] == "error"
    assert errors[0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_the_named_operation_runs_once(api: Gateway, tenant: Tenant, protocol: str) -> None:
    async with await opened(api, protocol, tenant) as socket:
        messages = await run(socket, protocol, {"query": TWO_OPERATIONS, "operationName": "Add"})
    assert [m["type"] for m in messages] == [RESULT[protocol], "complete"]
    assert messages[0]["payload"]["data"] == {"addRedirectUri": ["https://app.example.com/back"]}
    assert await redirect_uris(api, tenant) == ["https://app.example.com/back"]


async def test_legacy_graphql_ws_answers_a_query_once(api: Gateway, tenant: Tenant) -> None:
    async with await opened(api, LEGACY_WS, tenant) as socket:
        messages = await run(socket, LEGACY_WS, {"query": "{ apiKeys { name } }"})
    assert [m["type"] for m in messages] == ["data", "complete"]
    assert "errors" not in messages[0]["payload"]
    assert {key["name"] for key in messages[0]["payload"]["data"]["apiKeys"]}


async def test_legacy_graphql_ws_refuses_an_invalid_query_with_its_error(api: Gateway, tenant: Tenant) -> None:
    async with await opened(api, LEGACY_WS, tenant) as socket:
        messages = await run(socket, LEGACY_WS, {"query": "{ apiKeys { noSuchField } }"})
    assert [m["type"] for m in messages] == ["error"]
    assert messages[0]["payload"]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
