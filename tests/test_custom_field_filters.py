"""Custom field values on common objects and list filters on them, read from their index
(`record_custom_values`), on both databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.convert import parse_datetime
from connectors.kit.field_mappings import CustomFieldType, FieldSource, Transform
from connectors.kit.http import HttpKit
from resolvers.records import CustomMatch, RecordQuery, _filter_shape, _page_statement, check_custom_matches
from sync.storage.store import Store
from sync.tenancy.field_mappings import MappingTarget, define_field, set_mapping
from sync.worker.rederive import rederive_due
from tests.support import (
    Gateway,
    Tenant,
    cached_records,
    connect_hubspot,
    error_codes,
    gateway,
    new_tenant,
    run_everything_due,
)

CONTACTS = """query($filter: ContactFilter, $after: String) {
  contacts(first: 100, filter: $filter, after: $after) {
    edges { node { remoteId customFields tier: customField(key: "tier") none: customField(key: "nope") } }
    pageInfo { hasNextPage endCursor } } }"""
DEALS = (
    """query($filter: DealFilter) { deals(first: 100, filter: $filter) { edges { node { remoteId customFields } } } }"""
)

CONTACT_FIELDS: dict[str, tuple[CustomFieldType, FieldSource]] = {
    "tier": (CustomFieldType.STRING, FieldSource("properties.loyalty_tier")),
    "colors": (CustomFieldType.STRING_LIST, FieldSource("properties.favorite_color", (Transform("split", ";"),))),
    "nps": (CustomFieldType.FLOAT, FieldSource("properties.nps_score")),
    "vip": (
        CustomFieldType.BOOLEAN,
        FieldSource(
            "properties.loyalty_tier", (Transform("map_values", table={"gold": True, "platinum": True}, default=False),)
        ),
    ),
    "joined": (CustomFieldType.DATETIME, FieldSource("properties.createdate")),
}


@dataclass(frozen=True)
class Setup:
    api: Gateway
    tenant: Tenant
    store: Store
    connection_id: uuid.UUID
    contacts: dict[str, dict[str, Any]]  # remote id -> custom values as cached
    deals: dict[str, dict[str, Any]]


@pytest_asyncio.fixture
async def setup(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> AsyncIterator[Setup]:
    hubspot.faults.rate_limit_enabled = False
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, hubspot, hubspot_url)
    target = MappingTarget(tenant.platform_id, "hubspot", connection_id)
    for key, (wanted, source) in CONTACT_FIELDS.items():
        await define_field(store, tenant.platform_id, "Contact", key, wanted, key.title(), "")
        await set_mapping(store, target, "Contact", key, source, wanted)
    await define_field(store, tenant.platform_id, "Contact", "unmapped", CustomFieldType.STRING, "Unmapped", "")
    await define_field(store, tenant.platform_id, "Deal", "budget", CustomFieldType.MONEY, "Budget", "")
    await set_mapping(store, target, "Deal", "budget", FieldSource("properties.amount"), CustomFieldType.MONEY)
    await rederive_due(store)
    await run_everything_due(store, kit)
    contacts = {row.remote_id: row.custom for row in await cached_records(store, connection_id, "contacts")}
    deals = {row.remote_id: row.custom for row in await cached_records(store, connection_id, "deals")}
    async with gateway(store, kit, secret_key) as api:
        yield Setup(api, tenant, store, connection_id, contacts, deals)


async def contacts_where(setup: Setup, *filters: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after = None
    while True:
        body = await setup.api.graphql(
            CONTACTS, setup.tenant.api_key, filter={"customFields": list(filters)}, after=after
        )
        assert not body.get("errors"), body["errors"]
        page = body["data"]["contacts"]
        found |= {edge["node"]["remoteId"]: edge["node"] for edge in page["edges"]}
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def having(setup: Setup, test: Any) -> set[str]:
    return {remote_id for remote_id, custom in setup.contacts.items() if test(custom)}


async def test_objects_show_their_custom_fields_and_one_by_key(setup: Setup) -> None:
    found = await contacts_where(setup, {"key": "tier", "eq": "gold"})
    assert found
    for remote_id, node in found.items():
        assert node["customFields"] == setup.contacts[remote_id]
        assert set(node["customFields"]) == {*CONTACT_FIELDS, "unmapped"}
        assert node["customFields"]["unmapped"] is None
        assert node["tier"] == "gold" and node["none"] is None


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"key": "tier", "eq": "gold"}, lambda c: c["tier"] == "gold"),
        ({"key": "tier", "contains": "ILV"}, lambda c: c["tier"] == "silver"),
        ({"key": "tier", "in": ["bronze", "platinum"]}, lambda c: c["tier"] in ("bronze", "platinum")),
        ({"key": "colors", "eq": "blue"}, lambda c: c["colors"] is not None and "blue" in c["colors"]),
        (
            {"key": "colors", "in": ["red", "green"]},
            lambda c: bool(c["colors"]) and {"red", "green"} & set(c["colors"]),
        ),
        ({"key": "vip", "eq": "true"}, lambda c: c["vip"] is True),
        ({"key": "vip", "in": ["false"]}, lambda c: c["vip"] is False),
        ({"key": "nps", "gt": 5}, lambda c: c["nps"] is not None and c["nps"] > 5),
        ({"key": "nps", "gt": 2, "lt": 8.5}, lambda c: c["nps"] is not None and 2 < c["nps"] < 8.5),
    ],
    ids=["eq", "contains", "in", "list-eq", "list-in", "bool-eq", "bool-in", "number-gt", "number-between"],
)
async def test_text_boolean_and_number_filters(setup: Setup, where: dict[str, Any], expected: Any) -> None:
    wanted = having(setup, expected)
    assert wanted, "the sandbox should hold matching contacts"
    assert set(await contacts_where(setup, where)) == wanted


async def test_instant_filters_and_several_filters_together(setup: Setup) -> None:
    instants = sorted(parse_datetime(c["joined"]) for c in setup.contacts.values() if c["joined"])
    middle = instants[len(instants) // 2]
    assert isinstance(middle, datetime)
    later = having(setup, lambda c: c["joined"] is not None and parse_datetime(c["joined"]) > middle)
    assert later and set(await contacts_where(setup, {"key": "joined", "gt": middle.isoformat()})) == later
    earlier = having(setup, lambda c: c["joined"] is not None and parse_datetime(c["joined"]) < middle)
    assert set(await contacts_where(setup, {"key": "joined", "lt": middle.isoformat()})) == earlier
    both = having(setup, lambda c: c["tier"] == "gold" and c["joined"] and parse_datetime(c["joined"]) > middle)
    found = await contacts_where(setup, {"key": "tier", "eq": "gold"}, {"key": "joined", "gt": middle.isoformat()})
    assert set(found) == both


async def test_money_is_filtered_by_its_amount(setup: Setup) -> None:
    budgets = {rid: c["budget"] for rid, c in setup.deals.items() if c["budget"]}
    assert budgets and all(b["currency"] for b in budgets.values())  # in the account's currency
    threshold = sorted(float(b["amount"]) for b in budgets.values())[len(budgets) // 2]
    body = await setup.api.graphql(
        DEALS, setup.tenant.api_key, filter={"customFields": [{"key": "budget", "gt": threshold}]}
    )
    found = {edge["node"]["remoteId"] for edge in body["data"]["deals"]["edges"]}
    assert found == {rid for rid, b in budgets.items() if float(b["amount"]) > threshold}


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            {"key": "shoe_size", "eq": "9"},
            "Contact has no custom field 'shoe_size' (defined: colors, joined, nps, tier, unmapped, vip)",
        ),
        ({"key": "nps", "eq": "5"}, "nps is FLOAT: filter it with gt or lt"),
        ({"key": "nps", "gt": "five"}, "nps is FLOAT: gt takes a number, not 'five'"),
        ({"key": "joined", "lt": 12}, "joined is DATETIME: lt takes an ISO-8601 instant, not 12"),
        ({"key": "joined", "gt": "yesterday"}, "joined is DATETIME: gt takes an ISO-8601 instant"),
        ({"key": "tier", "gt": 3}, "tier is STRING: filter it with eq, contains or in"),
        ({"key": "vip", "eq": "yes"}, 'vip is BOOLEAN: filter it with eq or in, "true" or "false"'),
        ({"key": "tier"}, "a filter on tier needs eq, contains, in, gt or lt"),
        ({"key": "tier", "in": []}, "in takes 1 to 100 values"),
    ],
    ids=[
        "unknown-key",
        "eq-on-number",
        "number-operand",
        "instant-operand",
        "bad-instant",
        "gt-on-text",
        "bool-text",
        "no-operator",
        "empty-in",
    ],
)
async def test_bad_filters_are_refused_naming_the_problem(setup: Setup, where: dict[str, Any], message: str) -> None:
    body = await setup.api.graphql(CONTACTS, setup.tenant.api_key, filter={"customFields": [where]}, after=None)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert message in body["errors"][0]["message"]


async def test_a_flood_of_custom_field_conditions_is_refused_before_any_query(setup: Setup) -> None:
    flood = [{"key": "tier", "eq": f"gold{n}"} for n in range(11)]
    body = await setup.api.graphql(CONTACTS, setup.tenant.api_key, filter={"customFields": flood}, after=None)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "filter.customFields"
    assert "at most 10 conditions, got 11" in body["errors"][0]["message"]


async def query_plan(store: Store, statement: Any, values: dict[str, Any]) -> str:
    """The database's plan for `statement` with `values` (statistics fresh, as autovacuum keeps them); an
    `in` list is expanded into its placeholders as the driver would receive them."""
    async with store.engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        compiled = statement.compile(dialect=conn.dialect)
        expanded = compiled.construct_expanded_state({**compiled.params, **values})
        bound = [
            value.hex if isinstance(value, uuid.UUID) and not postgres else value
            for value in (expanded.parameters[name] for name in expanded.positiontup or ())
        ]
        await conn.exec_driver_sql("ANALYZE" if not postgres else "ANALYZE record_custom_values")
        explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
        rows = (await conn.exec_driver_sql(f"{explain} {expanded.statement}", tuple(bound))).all()
        return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("match", "column"),
    [
        (CustomMatch("tier", eq="gold"), "text_value"),
        (CustomMatch("tier", among=("gold", "silver")), "text_value"),
        (CustomMatch("nps", gt=5), "number_value"),
        (CustomMatch("joined", lt="2024-01-01T00:00:00Z"), "time_value"),
    ],
    ids=["eq", "in", "gt", "lt-instant"],
)
async def test_custom_filters_read_the_value_index(setup: Setup, match: CustomMatch, column: str) -> None:
    defined = {key: wanted for key, (wanted, _) in CONTACT_FIELDS.items()}
    conditions = tuple(check_custom_matches("Contact", (match,), defined))
    query = RecordQuery(model="Contact", custom=(match,), custom_conditions=conditions)
    dialect = setup.store.engine.dialect.name
    statement = _page_statement(_filter_shape(query, dialect), "desc", (False, False, False))
    values: dict[str, Any] = {"platform_id": setup.tenant.platform_id, "model": "Contact", "page_limit": 51}
    for number, (key, _, _, operand) in enumerate(conditions):
        values[f"custom_{number}_key"], values[f"custom_{number}"] = key, operand
    plan = await query_plan(setup.store, statement, values)
    assert f"ix_record_custom_values_platform_id_model_key_{column}" in plan, plan
    assert "SCAN records" not in plan and "Seq Scan on records" not in plan, plan
