"""Schemathesis fuzzes every query and mutation of the GraphQL API against the real gateway, over HTTP.

The gateway serves a tenant with a backfilled HubSpot sandbox connection, so generated operations reach the
resolvers with ids that exist as well as with ones that do not. Whatever the generated document says, the
answer is a well-formed GraphQL response: never an HTTP 5xx, never an `INTERNAL_SERVER_ERROR`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphql
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import APIOperation

from connectors import get_connector
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.http import HttpKit
from resolvers.ids import to_global_id
from sync.storage.store import Store
from tests.support import data, synced_hubspot

SCHEMA = Path(__file__).parents[2] / "schema.graphql"
# Per operation and database: enough to reach every argument shape, few enough to keep `make test` quick.
EXAMPLES_PER_OPERATION = 20
# The fuzzer sends far faster than a key may (RATE_LIMITED would answer most of it); the per-document
# limits stay as configured, so the generated documents meet them.
UNTHROTTLED = {"graphql_requests_per_second": 1e6, "graphql_request_burst": 10**6, "graphql_cost_budget": 10**12}
# These end what the rest of the run relies on (the connection its ids point to), so they run last.
RUN_LAST = ("deleteConnection",)
# Real ids are substituted for generated ones this often, so resolvers run past the lookup.
REAL_ID_PROBABILITY = 0.5
ID_ARGUMENTS = ("id", "connectionId", "connectionIds[*]", "input.id", "input.connectionId", "filter.connectionId")
# Values that get a passthrough or a records query past the first check, half of the time.
PLAUSIBLE_VALUES = {
    "Mutation.passthrough.input.method": ["GET", "POST", "PUT", "PATCH", "DELETE", "get"],
    "Mutation.passthrough.input.path": [
        "/crm/v3/objects/contacts",
        "/crm/v3/objects/contacts/1",
        "/crm/v3/objects/contacts?limit=1",
        "/crm/v3/objects/%00",
        "/crm/v3/objects/%2e%2e/x",
    ],
    "Query.records.stream": ["contacts", "companies", "deals", "owners"],
    # Page sizes the lists accept, so their filters, orders and nested fields run rather than being refused.
    "*.*.first": [1, 7, 100],
    "*.*.last": [1, 100],
}
HEADER_NAMES = ("Host", "host ", "Accept", "X-Custom", "Content-Type", "Authorization")


def json_values() -> st.SearchStrategy[graphql.ValueNode]:
    """The JSON scalar (passthrough query, headers and body) as GraphQL literals: any JSON value, with
    header-like keys among the generated ones."""
    from schemathesis.graphql import nodes

    leaves = st.one_of(
        st.none().map(lambda _: graphql.NullValueNode()),
        st.booleans().map(nodes.Boolean),
        st.integers().map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.text().map(nodes.String),
    )
    keys = st.one_of(st.sampled_from(HEADER_NAMES), st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,15}\Z"))

    def containers(children: st.SearchStrategy[graphql.ValueNode]) -> st.SearchStrategy[graphql.ValueNode]:
        fields = st.dictionaries(keys, children, max_size=5).map(
            lambda entries: [
                graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=value) for key, value in entries.items()
            ]
        )
        return st.one_of(st.lists(children, max_size=5).map(nodes.List), fields.map(nodes.Object))

    return st.recursive(leaves, containers, max_leaves=12)


def decimal_values() -> st.SearchStrategy[graphql.ValueNode]:
    """The Decimal scalar (Money amounts): plain decimals of every size and precision, and what must be refused
    with BAD_USER_INPUT (exponents, NaN, words, numbers written as numbers), all as GraphQL literals."""
    from schemathesis.graphql import nodes

    plain = st.decimals(allow_nan=False, allow_infinity=False, places=None).map(lambda d: format(d, "f"))
    hostile = st.sampled_from(["1e999999999", "NaN", "-Infinity", "twelve", "", "1" * 60, "0.000001"])
    return st.one_of(
        plain.map(nodes.String),
        hostile.map(nodes.String),
        st.integers().map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    )


schemathesis.graphql.scalar("JSON", json_values())
schemathesis.graphql.scalar("Decimal", decimal_values())


@dataclass(frozen=True)
class Finding:
    operation: str
    query: str
    status: int
    errors: list[dict[str, Any]]

    def __str__(self) -> str:
        return f"{self.operation}: HTTP {self.status}, errors {self.errors}\n{self.query}"


@dataclass
class Fuzzed:
    operations: int = 0
    sent: int = 0
    findings: list[Finding] = field(default_factory=list)


def load_schema(real_ids: list[str], real_cursors: list[str]) -> schemathesis.schemas.BaseSchema:
    config = SchemathesisConfig.from_dict(
        {
            "dictionaries": {
                "real-ids": {"values": real_ids},
                "real-cursors": {"values": real_cursors},
                **{argument: {"values": values} for argument, values in PLAUSIBLE_VALUES.items()},
            },
            "parameters": {
                **{
                    f"*.*.{argument}": {"dictionary": "real-ids", "probability": REAL_ID_PROBABILITY}
                    for argument in ID_ARGUMENTS
                },
                **{argument: {"dictionary": argument, "probability": 0.5} for argument in PLAUSIBLE_VALUES},
                **{
                    f"*.*.{argument}": {"dictionary": "real-cursors", "probability": REAL_ID_PROBABILITY}
                    for argument in ("after", "before")
                },
            },
        }
    )
    return schemathesis.graphql.from_path(SCHEMA, config=config)


def ordered_operations(schema: schemathesis.schemas.BaseSchema) -> list[APIOperation]:
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(operations, key=lambda operation: operation.label.split(".", 1)[1] in RUN_LAST)


def server_error(response: requests.Response) -> list[dict[str, Any]] | None:
    """The errors that make a response a server error, or None when it is a proper answer."""
    if response.status_code >= 500:
        return [{"message": response.text[:500]}]
    try:
        body = response.json()
    except ValueError:
        return [{"message": f"not JSON: {response.text[:500]}"}]
    errors = body.get("errors") or [] if isinstance(body, dict) else []
    internal = [e for e in errors if (e.get("extensions") or {}).get("code") in (None, "INTERNAL_SERVER_ERROR")]
    return internal or None


def fuzz_operation(operation: APIOperation, endpoint: str, session: requests.Session, api_key: str) -> Fuzzed:
    fuzzed = Fuzzed()

    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def send(case: schemathesis.Case) -> None:
        response = case.call(
            base_url=endpoint, session=session, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )
        fuzzed.sent += 1
        errors = server_error(response)
        if errors is not None:
            fuzzed.findings.append(Finding(operation.label, str(case.body), response.status_code, errors))

    send()
    return fuzzed


def fuzz(endpoint: str, api_key: str, real_ids: list[str], real_cursors: list[str]) -> Fuzzed:
    """Runs in a thread: the gateway answers on the test's event loop meanwhile."""
    total = Fuzzed()
    with requests.Session() as session:
        for operation in ordered_operations(load_schema(real_ids, real_cursors)):
            fuzzed = fuzz_operation(operation, endpoint, session, api_key)
            total.sent += fuzzed.sent
            total.operations += 1
            total.findings += fuzzed.findings
    return total


async def test_generated_queries_and_mutations_never_get_a_server_error(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> None:
    served = synced_hubspot(store, kit, hubspot, hubspot_url, secret_key, **UNTHROTTLED)
    async with served as (api, tenant, connection_id):
        page = data(await api.graphql("{ contacts(first: 3) { edges { cursor node { id } } } }", tenant.api_key))
        edges = page["contacts"]["edges"]
        real_ids = [to_global_id("Connection", connection_id)] + [edge["node"]["id"] for edge in edges]
        real_cursors = [edge["cursor"] for edge in edges]
        fuzzed = await asyncio.to_thread(fuzz, f"{api.url}/graphql", tenant.api_key, real_ids, real_cursors)
    assert fuzzed.operations == len(ordered_operations(load_schema(real_ids, real_cursors)))
    assert fuzzed.sent >= fuzzed.operations, "every operation was sent at least once"
    assert not fuzzed.findings, "\n\n".join(str(finding) for finding in fuzzed.findings)


# What the fuzzer found, replayed on their own so they stay fixed whatever it generates next time.


async def test_a_date_before_the_year_1000_is_written_and_read_back(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> None:
    """The sandbox rendered year 756 as "756-03-17T..." (strftime's unpadded %Y), which the connector's read
    of its own write could not parse: an INTERNAL_SERVER_ERROR after the provider had created the deal."""
    async with synced_hubspot(store, kit, hubspot, hubspot_url, secret_key) as (api, tenant, connection_id):
        created = await api.graphql(
            """mutation($connectionId: ID!) {
                createDeal(connectionId: $connectionId, input: {name: "Old", closeDate: "0756-03-17T23:22:28.015Z"}) {
                    deal { closeDate }
                }
            }""",
            tenant.api_key,
            connectionId=to_global_id("Connection", connection_id),
        )
    assert data(created)["createDeal"]["deal"]["closeDate"].startswith("0756-03-17T23:22:28.015")


def test_a_provider_value_that_does_not_fit_its_common_type_reads_as_absent() -> None:
    """A provider sending a date that is not one must not fail the record (and with it the read or the sync):
    the common field is null and `raw` keeps what was sent."""
    deals = get_connector("hubspot").stream("deals")
    raw = {
        "id": "1",
        "createdAt": "756-03-17T23:22:28.015Z",
        "updatedAt": "not a date",
        "properties": {"dealname": "Kept", "closedate": "2024-13-45"},
    }
    record = deals.to_record(raw, labels=None)
    assert record.created_at is None and record.updated_at is None
    assert record.common is not None
    assert record.common["close_date"] is None and record.common["name"] == "Kept"
    assert record.raw is raw
