"""Every path that takes a change cursor refuses one beyond the newest change, with a typed error and
nothing done: a consumer whose saved cursor outlived its database hears of it instead of waiting forever."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import select

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.kit.records import RemoteRecord
from resolvers.changes import encode_cursor
from sync.cache import changes
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections
from sync.tenancy.connections import NewConnection, create_connection
from tests.support import Gateway, Tenant, data, error_codes, gateway, new_tenant

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]

CHANGES = "subscription($after: String) { changes(after: $after) { cursor remoteId } }"
CREATE = """mutation($input: CreateWebhookDestinationInput!) {
  createWebhookDestination(input: $input) { destination { id cursor } }
}"""
REPLAY = "mutation($id: ID!, $after: String!) { replayWebhookDestination(id: $id, after: $after) { id cursor } }"
DESTINATIONS = "{ webhookDestinations { id cursor } }"
HOOK_URL = "http://127.0.0.1:9/xkit-events"  # never called: these tests run no delivery worker


@dataclass
class Log:
    api: Gateway
    tenant: Tenant
    connection_id: uuid.UUID
    store: Store

    async def append(self, remote_id: str) -> None:
        async with self.store.engine.begin() as conn:
            end_user = (
                await conn.execute(select(connections.c.end_user_id).where(connections.c.id == self.connection_id))
            ).scalar_one()
            target = StreamTarget(self.tenant.platform_id, self.connection_id, end_user, "contacts", "Contact")
            record = RemoteRecord(remote_id, {"id": remote_id}, {"first_name": remote_id})
            await upsert_records(conn, target, [record], utcnow())
        self.store.changes_appended.notify()

    async def newest(self) -> int:
        async with self.store.engine.connect() as conn:
            return await changes.latest(conn)

    def transport(self, protocol: str) -> WebsocketsTransport:
        url = self.api.url.replace("http://", "ws://") + "/graphql"
        payload = {"Authorization": f"Bearer {self.tenant.api_key}"}
        return WebsocketsTransport(url=url, init_payload=payload, subprotocols=[protocol], ack_timeout=5)

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.api.graphql(query, self.tenant.api_key, **variables)


@pytest_asyncio.fixture
async def log(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Log]:
    tenant = await new_tenant(store)
    new = NewConnection(tenant.platform_id, "hubspot", "user-1", Credentials(access_token="token"))
    connection_id = await create_connection(store, new)
    async with gateway(store, kit, secret_key) as api:
        found = Log(api, tenant, connection_id, store)
        await found.append("existing")
        yield found


def _refused_as_beyond_the_log(error: dict[str, Any], field: str) -> None:
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert "beyond the newest change" in error["message"]
    assert f"leave `{field}` out" in error["message"]  # and what to do about it


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscription_after_a_cursor_beyond_the_log_is_refused(log: Log, protocol: str) -> None:
    newest = await log.newest()
    beyond = encode_cursor(newest + 5)
    async with Client(transport=log.transport(protocol)) as session:
        refused = session.subscribe(GraphQLRequest(CHANGES, variable_values={"after": beyond}))
        with pytest.raises(TransportQueryError) as error:
            await asyncio.wait_for(anext(refused), 10)
        assert error.value.errors is not None
        _refused_as_beyond_the_log(error.value.errors[0], "after")

        # The newest change's own cursor is fine: the next change is the first thing that arrives.
        accepted = session.subscribe(GraphQLRequest(CHANGES, variable_values={"after": encode_cursor(newest)}))
        first = asyncio.ensure_future(anext(accepted))
        await log.append("next")
        assert (await asyncio.wait_for(first, 10))["changes"]["remoteId"] == "next"
        await accepted.aclose()


async def test_on_an_empty_log_a_cursor_past_the_start_is_beyond_it(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    async with gateway(store, kit, secret_key) as api:
        empty = Log(api, tenant, uuid.uuid4(), store)
        async with Client(transport=empty.transport(PROTOCOLS[0])) as session:
            refused = session.subscribe(GraphQLRequest(CHANGES, variable_values={"after": encode_cursor(1)}))
            with pytest.raises(TransportQueryError) as error:
                await asyncio.wait_for(anext(refused), 10)
    assert error.value.errors is not None
    _refused_as_beyond_the_log(error.value.errors[0], "after")


async def test_a_webhook_destination_from_a_cursor_beyond_the_log_is_not_created(log: Log) -> None:
    beyond = encode_cursor(await log.newest() + 1)
    refused = await log.graphql(CREATE, input={"url": HOOK_URL, "fromCursor": beyond})
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    _refused_as_beyond_the_log(refused["errors"][0], "fromCursor")
    assert data(await log.graphql(DESTINATIONS))["webhookDestinations"] == []


async def test_a_replay_from_a_cursor_beyond_the_log_changes_nothing(log: Log) -> None:
    created = data(await log.graphql(CREATE, input={"url": HOOK_URL}))["createWebhookDestination"]["destination"]
    beyond = encode_cursor(await log.newest() + 1)
    refused = await log.graphql(REPLAY, id=created["id"], after=beyond)
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    _refused_as_beyond_the_log(refused["errors"][0], "after")
    assert data(await log.graphql(DESTINATIONS))["webhookDestinations"] == [created]
