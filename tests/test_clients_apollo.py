"""Apollo Client's persisted-query link against a live gateway (tests/js/apollo-apq.mjs)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from connectors.kit.http import HttpKit
from gateway import cli
from sync.storage.store import Store
from tests.js_clients import run_node
from tests.support import gateway, new_tenant


async def test_the_first_query_sends_its_document_and_the_second_only_its_hash(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    async with gateway(store, kit, secret_key) as api:
        seen = await run_node("apollo-apq.mjs", f"{api.url}/graphql", tenant.api_key, "apq")
    first, second = seen["first"], seen["second"]
    assert first["data"] == second["data"] == {"apiKeys": [{"__typename": "ApiKey", "name": "default"}]}
    assert first["codes"] == second["codes"] == []
    hash_only, fallback = first["requests"]
    assert (hash_only["query"], fallback["query"]) == (False, True)  # PERSISTED_QUERY_NOT_FOUND, then the document
    assert hash_only["hash"] == fallback["hash"] is not None
    assert [(r["query"], r["hash"], r["status"]) for r in second["requests"]] == [(False, hash_only["hash"], 200)]


async def test_a_trusted_only_platform_runs_the_pushed_query_and_refuses_another(
    store: Store,
    kit: HttpKit,
    secret_key: str,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = await new_tenant(store)
    monkeypatch.setenv("XKIT_DATABASE_URL", database_url)
    monkeypatch.setenv("XKIT_SECRET_KEY", secret_key)
    async with gateway(store, kit, secret_key) as api:
        url = f"{api.url}/graphql"
        manifest = tmp_path / "persisted-documents.json"
        manifest.write_text(json.dumps(await run_node("apollo-apq.mjs", url, tenant.api_key, "manifest")))
        platform = ["--platform", str(tenant.platform_id)]
        await asyncio.to_thread(cli.main, ["documents", "push", str(manifest), *platform])
        await asyncio.to_thread(cli.main, ["documents", "trusted-only", "on", *platform])
        seen = await run_node("apollo-apq.mjs", url, tenant.api_key, "trusted")
    registered, unregistered = seen["registered"], seen["unregistered"]
    assert registered["data"] == {"apiKeys": [{"__typename": "ApiKey", "name": "default"}]}
    assert [(r["query"], r["status"]) for r in registered["requests"]] == [(False, 200)]  # found by its hash
    assert unregistered["data"] is None
    assert unregistered["codes"] == ["QUERY_NOT_IN_SAFELIST"]
    assert [r["query"] for r in unregistered["requests"]] == [False, True]  # not found, then refused in full
