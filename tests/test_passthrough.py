"""Passthrough: any provider request through a connection, and never anywhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.http import HttpKit
from sync.storage.store import Store
from tests.support import PASSTHROUGH as CALL
from tests.support import PassthroughSetup, data, error_codes, new_tenant, passthrough_ready

Setup = PassthroughSetup


@pytest_asyncio.fixture
async def setup(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> AsyncIterator[Setup]:
    async with passthrough_ready(Setup, store, kit, hubspot, hubspot_url, secret_key) as ready:
        yield ready


async def test_a_get_returns_the_providers_answer(setup: Setup) -> None:
    result = data(await setup.call(method="GET", path="/crm/v3/objects/contacts", query={"limit": 2}))["passthrough"]
    assert result["status"] == 200
    assert len(result["json"]["results"]) == 2
    assert result["headers"]["x-hubspot-ratelimit-max"]


async def test_a_post_writes_to_the_provider(setup: Setup) -> None:
    body = {"properties": {"email": "pass.through@example.org", "firstname": "Pass"}}
    result = data(await setup.call(method="POST", path="/crm/v3/objects/contacts", body=body))["passthrough"]
    assert result["status"] == 201
    assert result["json"]["id"] in setup.sandbox.all_ids("contacts")


async def test_provider_errors_come_back_as_the_provider_said_them(setup: Setup) -> None:
    body = {"properties": {"no_such_property": "x"}}
    result = data(await setup.call(method="POST", path="/crm/v3/objects/contacts", body=body))["passthrough"]
    assert result["status"] == 400
    assert result["json"]["category"] == "VALIDATION_ERROR"


async def test_an_expired_token_is_refreshed_once(setup: Setup) -> None:
    setup.sandbox.expire_access_tokens()
    before = setup.sandbox.stats.token_refreshes
    result = data(await setup.call(method="GET", path="/crm/v3/owners"))["passthrough"]
    assert result["status"] == 200
    assert setup.sandbox.stats.token_refreshes == before + 1


@pytest.mark.parametrize(
    "path",
    [
        "https://evil.example.com/steal",
        "//evil.example.com/steal",
        "crm/v3/objects/contacts",
        "/crm/../../etc/passwd",
        "/%2e%2e/%2e%2e/admin",
        "/%252e%252e/admin",
        "/crm\\..\\admin",
        "/crm/v3/objects/contacts?x=1&redirect=https://evil.example.com",
    ],
    ids=[
        "absolute",
        "scheme-relative",
        "relative",
        "dot-dot",
        "encoded-dot-dot",
        "double-encoded",
        "backslash",
        "url-in-query",
    ],
)
async def test_paths_off_the_connections_host_are_refused(setup: Setup, path: str) -> None:
    sent_before = sum(setup.sandbox.stats.snapshot()["requests"].values())
    body = await setup.call(method="GET", path=path)
    assert error_codes(body) == ["BAD_USER_INPUT"], path
    assert body["errors"][0]["extensions"]["field"] == "path"
    assert sum(setup.sandbox.stats.snapshot()["requests"].values()) == sent_before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"headers": {"Authorization": "Bearer mine"}}, "headers"),
        ({"headers": {"X-Evil": "a\r\nInjected: yes"}}, "headers"),
        ({"method": "TRACE"}, "method"),
        ({"query": {"q": {"nested": True}}}, "query"),
        ({"body": {"a": 1}, "bodyText": "a=1"}, "body"),
    ],
    ids=["credentials-header", "header-injection", "method", "nested-query", "two-bodies"],
)
async def test_bad_requests_are_refused(setup: Setup, change: dict[str, Any], field: str) -> None:
    body = await setup.call(**{"method": "GET", "path": "/crm/v3/owners", **change})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field


async def test_another_platforms_connection_is_not_found(setup: Setup, store: Store) -> None:
    intruder = await new_tenant(store, "intruder")
    body = await setup.api.graphql(
        CALL, intruder.api_key, input={"connectionId": setup.connection, "method": "GET", "path": "/crm/v3/owners"}
    )
    assert error_codes(body) == ["NOT_FOUND"]
