"""GraphQL over HTTP as the spec says (graphql.github.io/graphql-over-http): media types, status codes,
operationName rules and request errors as typed JSON, checked rule by rule and by the official audit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from connectors.kit.http import HttpKit
from sync.storage.store import Store
from tests.js_clients import run_node
from tests.support import Gateway, Tenant, gateway, new_tenant


@pytest_asyncio.fixture
async def served(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[tuple[Gateway, Tenant]]:
    tenant = await new_tenant(store)
    async with gateway(store, kit, secret_key) as api:
        yield api, tenant


async def test_the_official_graphql_over_http_audit_passes(served: tuple[Gateway, Tenant]) -> None:
    api, tenant = served
    report = await run_node("graphql-http-audit.mjs", f"{api.url}/graphql", tenant.api_key)
    not_ok = [r for r in report["results"] if r["status"] != "ok"]
    print(not_ok)
    assert not_ok == []
