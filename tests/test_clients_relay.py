"""relay-compiler (the pinned npm package) compiles a small Relay app against schema.graphql with no error
or warning: `@connection` on lists read forward, backward and both ways, `@refetchable` pagination
fragments on Query and on Nodes. The operations it generates then run against a live gateway."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.http import HttpKit
from resolvers.ids import to_global_id
from sync.storage.store import Store
from tests.js_clients import JS_DIR, ClientFailed, run_node
from tests.support import data, synced_hubspot

ROOT = Path(__file__).resolve().parent.parent
RELAY_COMPILER = JS_DIR / "node_modules" / ".bin" / "relay-compiler"
APP = JS_DIR / "relay-app"


async def _compile(project: Path) -> dict[str, Any]:
    """Compile tests/js/relay-app in `project` and return its artifacts as relay-artifacts.mjs reads them."""
    if not RELAY_COMPILER.exists():
        raise ClientFailed("relay-compiler is not installed: run `make clients`")
    shutil.copytree(APP / "src", project / "src")
    (project / "__generated__").mkdir()
    config = {
        "src": "./src",
        "schema": str(ROOT / "schema.graphql"),
        "language": "javascript",
        "artifactDirectory": "./__generated__",
        # CommonJS artifacts, so that Node can load them to be read without a bundler.
        "eagerEsModules": False,
    }
    (project / "relay.config.json").write_text(json.dumps(config))
    process = await asyncio.create_subprocess_exec(
        str(RELAY_COMPILER),
        cwd=project,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await asyncio.wait_for(process.communicate(), 120))[0].decode()
    assert process.returncode == 0, output
    assert "ERROR" not in output and "WARN" not in output, output
    assert "Compilation completed" in output, output
    artifacts: dict[str, Any] = await run_node("relay-artifacts.mjs", str(project / "__generated__"))
    return artifacts


def _connection(artifact: dict[str, Any]) -> tuple[str, list[str]]:
    [connection] = artifact["connections"]
    return connection["direction"], connection["path"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return asyncio.run(_compile(tmp_path_factory.mktemp("relay-app")))


def test_relay_compiler_accepts_connections_in_every_direction(compiled: dict[str, Any]) -> None:
    assert sorted(compiled) == [
        "AccountHistoryPaginationQuery",
        "AccountHistory_account",
        "AccountListPaginationQuery",
        "AccountList_query",
        "ContactListPaginationQuery",
        "ContactList_query",
        "DeliveriesPageQuery",
        "DeliveriesPaginationQuery",
        "Deliveries_destination",
    ]
    assert _connection(compiled["ContactList_query"]) == ("forward", ["contacts"])
    assert _connection(compiled["AccountList_query"]) == ("backward", ["connections"])
    assert _connection(compiled["AccountHistory_account"]) == ("bidirectional", ["runs"])
    assert _connection(compiled["Deliveries_destination"]) == ("forward", ["deliveryLog"])
    assert _connection(compiled["DeliveriesPageQuery"]) == ("forward", ["webhooks"])
    history = compiled["AccountHistory_account"]["refetch"]
    assert history["path"] == ["node"]  # a linked account is refetched through node(id:)
    assert history["connection"]["forward"] == {"count": "first", "cursor": "after"}
    assert history["connection"]["backward"] == {"count": "last", "cursor": "before"}
    assert compiled["ContactList_query"]["refetch"]["path"] == []
    text = compiled["AccountHistoryPaginationQuery"]["text"]
    assert "node(id: $id)" in text and "fragment AccountHistory_account_" in text
    assert "hasPreviousPage" in text and "startCursor" in text


async def test_the_generated_operations_run_against_the_gateway(
    compiled: dict[str, Any],
    store: Store,
    kit: HttpKit,
    hubspot: HubSpotSandbox,
    hubspot_url: str,
    secret_key: str,
) -> None:
    def text(name: str) -> str:
        return str(compiled[name]["text"])

    async with synced_hubspot(store, kit, hubspot, hubspot_url, secret_key) as (api, tenant, connection_id):
        account = to_global_id("Connection", connection_id)

        async def run(name: str, **variables: Any) -> Any:
            return data(await api.graphql(text(name), tenant.api_key, **variables))

        first = (await run("ContactListPaginationQuery", count=5))["contacts"]
        more = (await run("ContactListPaginationQuery", count=5, cursor=first["pageInfo"]["endCursor"]))["contacts"]
        ids = [edge["node"]["id"] for edge in first["edges"] + more["edges"]]
        assert len(set(ids)) == 10 and more["pageInfo"]["hasNextPage"] is True

        accounts = (await run("AccountListPaginationQuery", count=3))["connections"]
        assert [edge["node"]["id"] for edge in accounts["edges"]] == [account]
        assert accounts["pageInfo"] == {"hasPreviousPage": False, "startCursor": accounts["edges"][0]["cursor"]}

        refetched = (await run("AccountHistoryPaginationQuery", id=account, last=2))["node"]
        assert refetched["__typename"] == "LinkedAccount" and refetched["provider"] == "hubspot"
        runs = refetched["runs"]
        assert len(runs["edges"]) == 2
        assert runs["pageInfo"]["hasPreviousPage"] is True and runs["pageInfo"]["hasNextPage"] is False
        older = await run("AccountHistoryPaginationQuery", id=account, last=2, before=runs["pageInfo"]["startCursor"])
        assert {edge["node"]["id"] for edge in older["node"]["runs"]["edges"]}.isdisjoint(
            edge["node"]["id"] for edge in runs["edges"]
        )

        end_user = refetched["endUser"]
        page = await run("DeliveriesPageQuery", ids=[end_user["id"]])
        assert page["webhooks"]["edges"] == []
        assert page["nodes"] == [{"__typename": "EndUser", "id": end_user["id"], "externalId": "user-1"}]
