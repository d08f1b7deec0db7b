"""A refused WebSocket says why: no key, a key that is not valid, a revoked key, or too many bad keys."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from connectors.kit.http import HttpKit
from gateway.sockets import (
    INVALID_KEY,
    MAX_CLOSE_REASON_BYTES,
    NO_KEY,
    REFUSED_CLOSE_CODE,
    REVOKED_KEY,
    throttled_reason,
)
from resolvers.keys import key_global_id
from sync.storage.store import Store
from sync.tenancy.platforms import create_api_key, revoke_api_key
from tests.support import Gateway, Tenant, data, gateway, new_tenant

TRANSPORT_WS, LEGACY_WS = "graphql-transport-ws", "graphql-ws"
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id } }"


@pytest_asyncio.fixture
async def tenant(store: Store) -> Tenant:
    return await new_tenant(store)


@pytest_asyncio.fixture
async def api(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Gateway]:
    async with gateway(store, kit, secret_key, auth_failures_allowed=2, auth_lockout_seconds=600) as served:
        yield served


async def open_socket(api: Gateway, protocol: str, payload: dict[str, Any] | None) -> ClientConnection:
    socket = await connect(api.url.replace("http://", "ws://") + "/graphql", subprotocols=[protocol])  # type: ignore[list-item]
    await socket.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
    return socket


async def refusal(api: Gateway, protocol: str, payload: dict[str, Any] | None) -> tuple[int | None, str, Any]:
    """(close code, close reason, connection_error payload or None) of a connection_init with `payload`."""
    socket = await open_socket(api, protocol, payload)
    error_payload = None
    try:
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert message["type"] != "connection_ack", "the socket was accepted"
            if message["type"] == "connection_error":
                error_payload = message["payload"]
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code, closed.rcvd.reason, error_payload
    finally:
        await socket.close()


def bearer(key: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {key}"}


async def revoked_key(store: Store, tenant: Tenant) -> str:
    issued = await create_api_key(store, tenant.platform_id, "old")
    await revoke_api_key(store, issued.id)
    return issued.key


async def test_graphql_transport_ws_closes_with_a_reason_for_each_refusal(
    store: Store, api: Gateway, tenant: Tenant
) -> None:
    revoked = await revoked_key(store, tenant)
    assert await refusal(api, TRANSPORT_WS, None) == (REFUSED_CLOSE_CODE, NO_KEY, None)
    assert await refusal(api, TRANSPORT_WS, {"Authorization": "Bearer "}) == (REFUSED_CLOSE_CODE, NO_KEY, None)
    assert await refusal(api, TRANSPORT_WS, bearer("xk_not_a_key")) == (REFUSED_CLOSE_CODE, INVALID_KEY, None)
    assert await refusal(api, TRANSPORT_WS, bearer(revoked)) == (REFUSED_CLOSE_CODE, REVOKED_KEY, None)
    # Two keys refused from this address lock it out: not even a valid key is looked up now.
    code, reason, _ = await refusal(api, TRANSPORT_WS, bearer(tenant.api_key))
    assert (code, reason) == (REFUSED_CLOSE_CODE, throttled_reason(600))


async def test_legacy_graphql_ws_answers_connection_error_with_the_reason_and_a_code(
    store: Store, api: Gateway, tenant: Tenant
) -> None:
    revoked = await revoked_key(store, tenant)
    seen = {
        "no key": await refusal(api, LEGACY_WS, None),
        "invalid": await refusal(api, LEGACY_WS, {"apiKey": "xk_not_a_key"}),
        "revoked": await refusal(api, LEGACY_WS, bearer(revoked)),
        "throttled": await refusal(api, LEGACY_WS, bearer(tenant.api_key)),
    }
    errors = {name: payload for name, (_, _, payload) in seen.items()}
    assert errors == {
        "no key": {"message": NO_KEY, "extensions": {"code": "UNAUTHENTICATED"}},
        "invalid": {"message": INVALID_KEY, "extensions": {"code": "UNAUTHENTICATED"}},
        "revoked": {"message": REVOKED_KEY, "extensions": {"code": "UNAUTHENTICATED"}},
        "throttled": {
            "message": throttled_reason(600),
            "extensions": {"code": "RATE_LIMITED", "retryAfterSeconds": 600},
        },
    }


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_key_revoked_while_its_socket_is_open_closes_it_saying_so(
    store: Store, api: Gateway, tenant: Tenant, protocol: str
) -> None:
    doomed = await create_api_key(store, tenant.platform_id, "doomed")
    socket = await open_socket(api, protocol, bearer(doomed.key))
    try:
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "connection_ack"
        data(await api.graphql(REVOKE, tenant.api_key, id=key_global_id(doomed.id)))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(socket.recv(), 10)  # a legacy keep-alive may come first
    finally:
        await socket.close()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (REFUSED_CLOSE_CODE, REVOKED_KEY)


def test_every_close_reason_fits_in_a_close_frame() -> None:
    for reason in (NO_KEY, INVALID_KEY, REVOKED_KEY, throttled_reason(10**9)):
        assert len(reason.encode()) <= MAX_CLOSE_REASON_BYTES, reason
    assert len({NO_KEY, INVALID_KEY, REVOKED_KEY, throttled_reason(1)}) == 4


async def test_a_refused_socket_sees_nothing_of_the_platform(api: Gateway) -> None:
    """Refused at connection_init, a subscribe that follows is never answered with data."""
    socket = await open_socket(api, TRANSPORT_WS, bearer("xk_not_a_key"))
    subscribe = {
        "id": str(uuid.uuid4()),
        "type": "subscribe",
        "payload": {"query": "subscription { changes { cursor } }"},
    }
    with pytest.raises(ConnectionClosed):
        await socket.send(json.dumps(subscribe))
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert message["type"] not in {"connection_ack", "next"}
    await socket.close()
