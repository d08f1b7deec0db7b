"""Two-way sync: every writeback mutation on every connector, against its sandbox, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2
import pytest
import pytest_asyncio
from sqlalchemy import select

from connectors import get_connector, sandbox_entries
from connectors.kit.http import HttpKit
from connectors.kit.registry import Endpoints, WritebackDriver, WriteCase
from sync.storage.store import Store
from sync.storage.tables import connections, sync_runs
from tests.support import (
    Connected,
    cached_ids,
    connect_sandbox,
    data,
    error_codes,
    gateway,
    make_streams_due,
    new_tenant,
    run_everything_due,
)

MODELS = ("Contact", "Company", "Deal", "Note", "Task", "Ticket", "TicketComment")
# Input fields naming related records, and the GraphQL field that reads them back.
RELATIONS = {
    "companyRemoteId": "company",
    "requesterRemoteId": "requester",
    "assigneeRemoteId": "assignee",
    "ticketRemoteId": "ticket",
    "authorUserRemoteId": "authorUser",
    "ownerRemoteId": "owner",
    "contactRemoteIds": "contacts",
    "companyRemoteIds": "companies",
    "dealRemoteIds": "deals",
}


@dataclass
class Harness(Connected):
    provider: WritebackDriver
    store: Store
    kit: HttpKit

    async def create(self, model: str, input: dict[str, Any], **arguments: Any) -> dict[str, Any]:
        return await self.graphql(
            f"""mutation($connectionId: ID!, $input: {model}Input!, $rawFields: JSON, $idempotencyKey: String) {{
                  create{model}(connectionId: $connectionId, input: $input, rawFields: $rawFields,
                                idempotencyKey: $idempotencyKey) {{
                    replayed {_field(model)} {{ {selection(model, input)} }}
                  }}
                }}""",
            connectionId=self.connection,
            input=input,
            **arguments,
        )

    async def update(self, model: str, id: str, input: dict[str, Any] | None, **arguments: Any) -> dict[str, Any]:
        return await self.graphql(
            f"""mutation($id: ID, $input: {model}Input, $rawFields: JSON, $ifUpdatedAt: DateTime,
                         $idempotencyKey: String) {{
                  update{model}(id: $id, input: $input, rawFields: $rawFields, ifUpdatedAt: $ifUpdatedAt,
                                idempotencyKey: $idempotencyKey) {{
                    replayed {_field(model)} {{ {selection(model, input or {})} }}
                  }}
                }}""",
            id=id,
            input=input,
            **arguments,
        )

    async def delete(self, model: str, id: str, **arguments: Any) -> dict[str, Any]:
        return await self.graphql(
            f"""mutation($id: ID, $ifUpdatedAt: DateTime, $idempotencyKey: String) {{
                  delete{model}(id: $id, ifUpdatedAt: $ifUpdatedAt, idempotencyKey: $idempotencyKey) {{
                    replayed {_field(model)} {{ id remoteId deletedAt }}
                  }}
                }}""",
            id=id,
            **arguments,
        )

    async def node(self, model: str, id: str, input: dict[str, Any]) -> dict[str, Any]:
        body = await self.graphql(
            f"query($id: ID!) {{ node(id: $id) {{ ... on {model} {{ {selection(model, input)} }} }} }}", id=id
        )
        node: dict[str, Any] = data(body)["node"]
        return node


def case_of(harness: Harness, model: str) -> WriteCase:
    """The provider's case for `model`; the test is skipped where the connector does not write the model."""
    cases = harness.provider.cases()
    if model not in cases:
        pytest.skip(f"{harness.provider.provider} has no {model} to write")
    return cases[model]


def provider_copy(provider: WritebackDriver, model: str, remote_id: str) -> dict[str, Any] | None:
    """The provider's copy of a record, or None when it is gone."""
    return provider.get(model, remote_id) if remote_id in provider.ids(model) else None


def _field(model: str) -> str:
    return model[0].lower() + model[1:]


def selection(model: str, input: dict[str, Any]) -> str:
    fields = ["id", "remoteId", "updatedAt", "deletedAt", "raw"]
    for name, value in input.items():
        relation = RELATIONS.get(name)
        if relation:
            fields.append(f"{relation} {{ remoteId }}")
        else:
            fields.append(f"{name} {{ amount currency }}" if isinstance(value, dict) else name)
    return " ".join(dict.fromkeys(fields))


def assert_matches(node: dict[str, Any], input: dict[str, Any]) -> None:
    for name, expected in input.items():
        relation = RELATIONS.get(name)
        if relation is None:
            actual = node[name]
            if isinstance(expected, str) and name in ("closeDate", "dueAt"):
                assert datetime.fromisoformat(actual) == datetime.fromisoformat(expected), name
            else:
                assert actual == expected, name
        elif isinstance(expected, list):
            assert sorted(r["remoteId"] for r in node[relation]) == sorted(expected), name
        else:
            assert (node[relation] or {}).get("remoteId") == expected, name


def dig(raw: dict[str, Any], path: str) -> Any:
    value: Any = raw
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


# ---- fixtures ------------------------------------------------------------------------------------


WRITEBACK = {name: entry.writeback for name, entry in sandbox_entries().items() if entry.writeback is not None}


@pytest.fixture(params=sorted(WRITEBACK))
def provider_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served(provider_name: str) -> Iterator[tuple[WritebackDriver, Endpoints]]:
    driver = WRITEBACK[provider_name]()
    with driver.serve() as endpoints:
        yield driver, endpoints


@pytest_asyncio.fixture
async def harness(
    served: tuple[WritebackDriver, Endpoints], store: Store, kit: HttpKit, secret_key: str
) -> AsyncIterator[Harness]:
    provider, endpoints = served
    tenant = await new_tenant(store)
    connection_id = await connect_sandbox(store, tenant, provider, endpoints)
    # The seeded records are cached first, as in use: relations of what we write resolve to them.
    await run_everything_due(store, kit)
    async with gateway(store, kit, secret_key) as api:
        yield Harness(api, tenant, connection_id, provider, store, kit)


# ---- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
async def test_create_update_delete_round_trip(harness: Harness, model: str) -> None:
    case = case_of(harness, model)
    created = data(await harness.create(model, case.create, rawFields=case.raw_fields))[f"create{model}"]
    node = created[_field(model)]
    assert created["replayed"] is False
    assert_matches(node, case.create)
    # The custom field went to the provider and came back in the cached raw payload.
    assert dig(node["raw"], case.custom_field) == next(iter(case.raw_fields.values()))

    # Read your writes: the cache answers at once with what the provider stored.
    assert_matches(await harness.node(model, node["id"], case.create), case.create)
    remote = provider_copy(harness.provider, model, node["remoteId"])
    assert remote is not None
    assert dig(remote, case.custom_field) == next(iter(case.raw_fields.values()))
    mapping = get_connector(harness.provider.provider).stream(harness.provider.write_streams[model]).mapping
    assert mapping is not None
    remote_common = mapping.to_common(remote)
    for name, value in case.create.items():
        if name in ("name", "subject", "body", "amount", "employeeCount", "firstName", "lastName"):
            assert remote_common[_snake(name)] == value, name

    if case.update is None:
        await assert_immutable(harness, model, node)
        return
    updated = data(await harness.update(model, node["id"], case.update))[f"update{model}"][_field(model)]
    assert_matches(updated, case.update)
    assert_matches(await harness.node(model, node["id"], case.update), case.update)
    untouched = {k: v for k, v in case.create.items() if k not in case.update and k not in RELATIONS}
    assert_matches(await harness.node(model, node["id"], untouched), untouched)

    deleted = data(await harness.delete(model, node["id"]))[f"delete{model}"][_field(model)]
    assert deleted["deletedAt"] is not None
    assert provider_copy(harness.provider, model, node["remoteId"]) is None
    assert node["remoteId"] in harness.provider.ids(model, deleted=True)
    assert (await harness.node(model, node["id"], {}))["deletedAt"] is not None


async def assert_immutable(harness: Harness, model: str, node: dict[str, Any]) -> None:
    """A record the provider never changes once made: updates and deletes are refused, and nothing changes."""
    remote = provider_copy(harness.provider, model, node["remoteId"])
    updated = await harness.update(model, node["id"], {"body": "Edited"})
    assert error_codes(updated) == ["BAD_USER_INPUT"]
    deleted = await harness.delete(model, node["id"])
    assert error_codes(deleted) == ["BAD_USER_INPUT"]
    assert provider_copy(harness.provider, model, node["remoteId"]) == remote
    assert await harness.node(model, node["id"], {}) == {
        k: node[k] for k in ("id", "remoteId", "updatedAt", "deletedAt", "raw")
    }


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


async def test_an_update_by_connection_and_remote_id_reaches_records_not_yet_cached(harness: Harness) -> None:
    remote_id = min(case_of(harness, "Deal").create["contactRemoteIds"])
    body = await harness.graphql(
        """mutation($c: ID!, $r: String!) {
             updateContact(connectionId: $c, remoteId: $r, input: {jobTitle: "Head of Engines"}) {
               contact { remoteId jobTitle }
             }
           }""",
        c=harness.connection,
        r=remote_id,
    )
    assert data(body)["updateContact"]["contact"] == {"remoteId": remote_id, "jobTitle": "Head of Engines"}
    assert remote_id in await cached_ids(harness.store, harness.connection_id, "contacts")


# ---- errors ----------------------------------------------------------------------------------------


async def test_provider_validation_names_the_field(harness: Harness) -> None:
    case_of(harness, "Contact")
    if harness.provider.provider == "hubspot":
        input, raw_fields, field, provider_field = (
            {"lastName": "X", "lifecycleStage": "bogus"},
            None,
            "lifecycleStage",
            "lifecyclestage",
        )
    else:
        input, raw_fields, field, provider_field = {"firstName": "No last name"}, None, "lastName", "LastName"
    before = len(harness.provider.ids("Contact"))
    cached = await cached_ids(harness.store, harness.connection_id, "contacts")
    body = await harness.create("Contact", input, rawFields=raw_fields)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    extensions = body["errors"][0]["extensions"]
    assert (extensions["field"], extensions["providerField"]) == (field, provider_field)
    assert len(harness.provider.ids("Contact")) == before
    assert await cached_ids(harness.store, harness.connection_id, "contacts") == cached


async def test_a_bad_custom_field_is_reported_under_raw_fields(harness: Harness) -> None:
    case = case_of(harness, "Contact")
    name = next(iter(case.raw_fields))
    body = await harness.create("Contact", case.create, rawFields={name: "not-an-option"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == f"rawFields.{name}"


@pytest.mark.parametrize("provider_name", ["hubspot"])
async def test_hubspot_refuses_a_bad_email_on_create_and_update_and_nothing_changes(harness: Harness) -> None:
    case = case_of(harness, "Contact")
    before = harness.provider.ids("Contact")
    cached = await cached_ids(harness.store, harness.connection_id, "contacts")
    body = await harness.create("Contact", {**case.create, "email": "not-an-email"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    error = body["errors"][0]
    assert error["message"] == "Email address not-an-email is invalid"
    assert {k: error["extensions"][k] for k in ("field", "providerField", "providerCode", "status")} == {
        "field": "email",
        "providerField": "email",
        "providerCode": "INVALID_EMAIL",
        "status": 400,
    }
    assert harness.provider.ids("Contact") == before
    assert await cached_ids(harness.store, harness.connection_id, "contacts") == cached

    node = data(await harness.create("Contact", case.create))["createContact"]["contact"]
    remote_before = harness.provider.get("Contact", node["remoteId"])
    body = await harness.update("Contact", node["id"], {"email": "ada@engines", "jobTitle": "CTO"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "email"
    assert body["errors"][0]["message"] == "Email address ada@engines is invalid"
    assert harness.provider.get("Contact", node["remoteId"]) == remote_before
    assert await harness.node("Contact", node["id"], {"email": None, "jobTitle": None}) == {
        **{k: node[k] for k in ("id", "remoteId", "updatedAt", "deletedAt", "raw")},
        "email": case.create["email"],
        "jobTitle": case.create["jobTitle"],
    }


@pytest.mark.parametrize("provider_name", ["hubspot"])
@pytest.mark.parametrize(
    ("model", "input", "field", "provider_field", "reason"),
    [
        (
            "Deal",
            {"remoteStage": "closedmaybe"},
            "remoteStage",
            "dealstage",
            "closedmaybe was not one of the allowed options: [",
        ),
        (
            "Task",
            {"priority": "URGENT"},
            "priority",
            "hs_task_priority",
            "URGENT was not one of the allowed options: [",
        ),
    ],
    ids=["deal-stage", "task-priority"],
)
async def test_hubspot_refuses_values_outside_a_propertys_options_and_nothing_changes(
    harness: Harness, model: str, input: dict[str, Any], field: str, provider_field: str, reason: str
) -> None:
    case = harness.provider.cases()[model]
    before = harness.provider.ids(model)
    # A stage id goes in remoteStage, which the case's stage label would contradict.
    given = {k: v for k, v in case.create.items() if not (k == "stage" and "remoteStage" in input)}
    body = await harness.create(model, {**given, **input})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    extensions = body["errors"][0]["extensions"]
    assert (extensions["field"], extensions["providerField"]) == (field, provider_field)
    assert body["errors"][0]["message"].startswith(reason)
    assert harness.provider.ids(model) == before

    node = data(await harness.create(model, case.create))[f"create{model}"][_field(model)]
    remote_before = harness.provider.get(model, node["remoteId"])
    body = await harness.update(model, node["id"], input)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert harness.provider.get(model, node["remoteId"]) == remote_before


@pytest.mark.parametrize("provider_name", ["hubspot"])
async def test_an_amount_given_with_an_exponent_reaches_hubspot_as_plain_decimals(harness: Harness) -> None:
    # HubSpot parses numbers from text and refuses "1E+16"; the writer sends "10000000000000000".
    case = case_of(harness, "Deal")
    huge = {"amount": "1E+16", "currency": "EUR"}
    node = data(await harness.create("Deal", {**case.create, "amount": huge}))["createDeal"]["deal"]
    assert harness.provider.get("Deal", node["remoteId"])["properties"]["amount"] == "10000000000000000"
    read = await harness.node("Deal", node["id"], {"amount": huge})
    assert read["amount"] == {"amount": "10000000000000000.00", "currency": "EUR"}


@pytest.mark.parametrize(
    ("model", "member", "money", "field_name", "message"),
    [
        ("Deal", "amount", {"amount": "10.555", "currency": "USD"}, "amount", "more decimals than USD allows (2)"),
        ("Deal", "amount", {"amount": "10.5", "currency": "JPY"}, "amount", "more decimals than JPY allows (0)"),
        (
            "Deal",
            "amount",
            {"amount": "10.00", "currency": "CHF"},
            "amount",
            "is kept in EUR here; an amount in CHF cannot be written to it (this account's currencies are EUR, GBP, "
            "JPY, USD)",
        ),
        (
            "Company",
            "annualRevenue",
            {"amount": "10.00", "currency": "CHF"},
            "annualRevenue",
            "is kept in USD here; an amount in CHF cannot be written to it",
        ),
    ],
    ids=["cents-of-a-cent", "yen-fraction", "deal-currency-not-kept", "company-currency-not-kept"],
)
async def test_an_amount_too_precise_or_in_a_currency_not_kept_is_refused_and_nothing_changes(
    harness: Harness, model: str, member: str, money: dict[str, str], field_name: str, message: str
) -> None:
    case = case_of(harness, model)
    node = data(await harness.create(model, case.create))[f"create{model}"][_field(model)]
    remote_before = harness.provider.get(model, node["remoteId"])
    body = await harness.update(model, node["id"], {member: money})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field_name
    assert message in body["errors"][0]["message"]
    assert harness.provider.get(model, node["remoteId"]) == remote_before
    before = harness.provider.ids(model)
    refused = await harness.create(model, {**case.create, member: money})
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert harness.provider.ids(model) == before


async def test_a_duplicate_is_a_conflict(harness: Harness) -> None:
    case = case_of(harness, "Contact")
    data(await harness.create("Contact", case.create))
    again = await harness.create("Contact", {**case.create, "firstName": "Other"})
    assert error_codes(again) == ["CONFLICT"]


async def test_writing_what_the_provider_cannot_hold_is_refused_before_any_request(harness: Harness) -> None:
    case_of(harness, "Contact")
    before = len(harness.provider.ids("Contact"))
    body = await harness.create(
        "Contact",
        {"lastName": "Lead", "isLead": True}
        if harness.provider.provider == "hubspot"
        else {"lastName": "X", "lifecycleStage": "hot"},
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] in ("isLead", "lifecycleStage")
    assert len(harness.provider.ids("Contact")) == before


async def test_raw_fields_that_contradict_the_input_are_refused(harness: Harness) -> None:
    case_of(harness, "Contact")
    provider_field = "lastname" if harness.provider.provider == "hubspot" else "LastName"
    body = await harness.create("Contact", {"lastName": "One"}, rawFields={provider_field: "Two"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == f"rawFields.{provider_field}"


async def test_a_missing_record_is_not_found(harness: Harness) -> None:
    case_of(harness, "Contact")
    missing = "999999999" if harness.provider.provider == "hubspot" else "003000000000000AAA"
    body = await harness.graphql(
        """mutation($c: ID!, $r: String!) { updateContact(connectionId: $c, remoteId: $r, input: {jobTitle: "x"}) {
             contact { id } } }""",
        c=harness.connection,
        r=missing,
    )
    assert error_codes(body) == ["NOT_FOUND"]


async def test_rate_limits_are_typed_and_write_nothing(harness: Harness) -> None:
    case = case_of(harness, "Company")
    stream = harness.provider.write_streams["Company"]
    cached = await cached_ids(harness.store, harness.connection_id, stream)
    before = len(harness.provider.ids("Company"))
    harness.provider.storm("rate_limited", 1.0)
    body = await harness.create("Company", case.create)
    harness.provider.storm("rate_limited", 0.0)
    assert error_codes(body) == ["RATE_LIMITED"]
    assert len(harness.provider.ids("Company")) == before
    assert await cached_ids(harness.store, harness.connection_id, stream) == cached


async def test_refused_credentials_mark_the_connection_for_reauth(harness: Harness) -> None:
    harness.provider.revoke_all_refresh_tokens()
    harness.provider.expire_tokens()
    body = await harness.create("Company", case_of(harness, "Company").create)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["extensions"]["connectionStatus"] == "needs_reauth"
    async with harness.store.engine.connect() as conn:
        status = (
            await conn.execute(select(connections.c.status).where(connections.c.id == harness.connection_id))
        ).scalar_one()
    assert status == "needs_reauth"
    again = await harness.create("Company", case_of(harness, "Company").create)
    assert error_codes(again) == ["UNAUTHENTICATED"]


async def test_another_platforms_connection_is_not_found(harness: Harness) -> None:
    case_of(harness, "Company")
    other = await new_tenant(harness.store, "other")
    body = await harness.api.graphql(
        """mutation($c: ID!) { createCompany(connectionId: $c, input: {name: "Intruder"}) { company { id } } }""",
        other.api_key,
        c=harness.connection,
    )
    assert error_codes(body) == ["NOT_FOUND"]


# ---- idempotency -----------------------------------------------------------------------------------


async def test_a_retried_create_returns_the_first_result(harness: Harness) -> None:
    case = case_of(harness, "Company")
    before = len(harness.provider.ids("Company"))
    first = data(await harness.create("Company", case.create, idempotencyKey="order-1"))["createCompany"]
    again = data(await harness.create("Company", case.create, idempotencyKey="order-1"))["createCompany"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert again["company"] == first["company"]
    assert len(harness.provider.ids("Company")) == before + 1


async def test_concurrent_retries_make_one_record(harness: Harness) -> None:
    case = case_of(harness, "Company")
    before = len(harness.provider.ids("Company"))
    harness.provider.latency(150)
    answers = await asyncio.gather(*(harness.create("Company", case.create, idempotencyKey="burst") for _ in range(6)))
    harness.provider.latency(0)
    results = [data(a)["createCompany"] for a in answers]
    assert len({r["company"]["remoteId"] for r in results}) == 1
    assert sorted(r["replayed"] for r in results) == [False] + [True] * 5
    assert len(harness.provider.ids("Company")) == before + 1


async def test_a_retry_after_a_client_timeout_makes_no_second_record(harness: Harness) -> None:
    case = case_of(harness, "Company")
    before = len(harness.provider.ids("Company"))
    harness.provider.latency(800)
    query = """mutation($c: ID!, $input: CompanyInput!) {
                 createCompany(connectionId: $c, input: $input, idempotencyKey: "slow") {
                   replayed company { remoteId }
                 }
               }"""
    payload = {"query": query, "variables": {"c": harness.connection, "input": case.create}}
    headers = {"Authorization": f"Bearer {harness.tenant.api_key}"}
    async with httpx2.AsyncClient(timeout=0.2) as impatient:
        with pytest.raises(httpx2.TimeoutException):
            await impatient.post(f"{harness.api.url}/graphql", json=payload, headers=headers)
    harness.provider.latency(0)
    retried = data(await harness.create("Company", case.create, idempotencyKey="slow"))["createCompany"]
    assert retried["replayed"] is True
    assert len(harness.provider.ids("Company")) == before + 1


async def test_a_create_of_unknown_outcome_is_never_sent_twice(harness: Harness) -> None:
    case = case_of(harness, "Company")
    data(await harness.create("Company", {"name": "Warm-up"}))  # what the stream discovers is known now
    before = len(harness.provider.ids("Company"))
    answered = harness.provider.responses()
    harness.provider.storm("server_errors", 1.0)
    body = await harness.create("Company", case.create, idempotencyKey="unsure")
    harness.provider.storm("server_errors", 0.0)
    assert error_codes(body) == ["PROVIDER_ERROR"]
    assert body["errors"][0]["extensions"]["outcomeUnknown"] is True
    # One POST, no blind retry: a 5xx may come after the provider created the record.
    assert harness.provider.responses() - answered == 1
    # The key remembers that the outcome is unknown rather than risking a second record.
    again = await harness.create("Company", case.create, idempotencyKey="unsure")
    assert error_codes(again) == ["CONFLICT"]
    assert again["errors"][0]["extensions"]["outcomeUnknown"] is True
    assert len(harness.provider.ids("Company")) == before


async def test_a_key_reused_for_another_write_is_a_conflict(harness: Harness) -> None:
    case = case_of(harness, "Company")
    data(await harness.create("Company", case.create, idempotencyKey="k"))
    other = await harness.create("Company", {**case.create, "name": "Something else"}, idempotencyKey="k")
    assert error_codes(other) == ["CONFLICT"]
    assert other["errors"][0]["extensions"]["field"] == "idempotencyKey"


async def test_a_failed_write_frees_its_key(harness: Harness) -> None:
    case = case_of(harness, "Company")
    harness.provider.storm("rate_limited", 1.0)
    assert error_codes(await harness.create("Company", case.create, idempotencyKey="again")) == ["RATE_LIMITED"]
    harness.provider.storm("rate_limited", 0.0)
    retried = data(await harness.create("Company", case.create, idempotencyKey="again"))["createCompany"]
    assert retried["replayed"] is False


async def test_updates_and_deletes_are_idempotent_too(harness: Harness) -> None:
    case = case_of(harness, "Company")
    node = data(await harness.create("Company", case.create))["createCompany"]["company"]
    first = data(await harness.update("Company", node["id"], {"city": "Paris"}, idempotencyKey="u"))
    again = data(await harness.update("Company", node["id"], {"city": "Paris"}, idempotencyKey="u"))
    assert again["updateCompany"] == {**first["updateCompany"], "replayed": True}
    gone = data(await harness.delete("Company", node["id"], idempotencyKey="d"))["deleteCompany"]
    gone_again = data(await harness.delete("Company", node["id"], idempotencyKey="d"))["deleteCompany"]
    assert gone_again == {**gone, "replayed": True}


# ---- conflicts -------------------------------------------------------------------------------------


async def test_a_stale_update_is_refused_with_the_current_record(harness: Harness) -> None:
    case = case_of(harness, "Contact")
    node = data(await harness.create("Contact", case.create))["createContact"]["contact"]
    await asyncio.sleep(0.01)  # the provider's clock moves on before someone edits the record
    harness.provider.change("Contact", node["remoteId"])
    body = await harness.update("Contact", node["id"], {"jobTitle": "Mine"}, ifUpdatedAt=node["updatedAt"])
    assert error_codes(body) == ["CONFLICT"]
    current = body["errors"][0]["extensions"]["current"]
    assert current["remoteId"] == node["remoteId"]
    assert datetime.fromisoformat(current["updatedAt"]) > datetime.fromisoformat(node["updatedAt"])
    assert current["fields"]["job_title"].startswith("Changed in")
    # Nothing was written, and the cache now holds the provider's newer copy.
    remote = provider_copy(harness.provider, "Contact", node["remoteId"])
    assert remote is not None and "Mine" not in str(remote)
    fresh = await harness.node("Contact", node["id"], {"jobTitle": None})
    assert fresh["jobTitle"].startswith("Changed in")
    # With the current updatedAt the write goes through.
    ok = await harness.update("Contact", node["id"], {"jobTitle": "Mine"}, ifUpdatedAt=fresh["updatedAt"])
    assert data(ok)["updateContact"]["contact"]["jobTitle"] == "Mine"


async def test_a_stale_delete_is_refused(harness: Harness) -> None:
    case = case_of(harness, "Company")
    node = data(await harness.create("Company", case.create))["createCompany"]["company"]
    await asyncio.sleep(0.01)
    harness.provider.change("Company", node["remoteId"])
    body = await harness.delete("Company", node["id"], ifUpdatedAt=node["updatedAt"])
    assert error_codes(body) == ["CONFLICT"]
    assert provider_copy(harness.provider, "Company", node["remoteId"]) is not None


# ---- echo suppression ------------------------------------------------------------------------------


async def test_the_sync_sees_our_own_writes_as_no_change(harness: Harness) -> None:
    cases = harness.provider.cases()
    models = [model for model in MODELS if model in cases]
    for model in models:
        node = data(await harness.create(model, cases[model].create, rawFields=cases[model].raw_fields))
        record = node[f"create{model}"][_field(model)]
        update = cases[model].update
        if update is not None:
            data(await harness.update(model, record["id"], update))
    # Records the provider made alongside ours (a Zendesk ticket's first comment) are new to the sync: those
    # it logs, and nothing else.
    made_alongside = {
        model: harness.provider.ids(model)
        - await cached_ids(harness.store, harness.connection_id, harness.provider.write_streams[model])
        for model in models
    }
    await make_streams_due(harness.store, harness.connection_id)
    await run_everything_due(harness.store, harness.kit)
    async with harness.store.engine.connect() as conn:
        runs = (
            await conn.execute(
                select(sync_runs.c.stream, sync_runs.c.records, sync_runs.c.changed, sync_runs.c.error)
                .where(sync_runs.c.connection_id == harness.connection_id)
                .order_by(sync_runs.c.id)
            )
        ).all()
    latest = {run.stream: run for run in runs}
    for model in models:
        run = latest[harness.provider.write_streams[model]]
        assert run.error is None, run.error
        assert run.records >= 1, f"the incremental run of {run.stream} did not see our write"
        echoes = run.changed - len(made_alongside[model])
        assert echoes == 0, f"{run.stream}: our own writes came back as {echoes} change(s)"


# ---- relations ---------------------------------------------------------------------------------------


async def test_a_contacts_company_can_change(harness: Harness) -> None:
    case = case_of(harness, "Contact")
    node = data(await harness.create("Contact", case.create))["createContact"]["contact"]
    other = next(
        remote_id
        for remote_id in sorted(
            await cached_ids(harness.store, harness.connection_id, harness.provider.write_streams["Company"])
        )
        if remote_id != case.create["companyRemoteId"]
    )
    moved = data(await harness.update("Contact", node["id"], {"companyRemoteId": other}))
    assert moved["updateContact"]["contact"]["company"]["remoteId"] == other
    cleared = data(await harness.update("Contact", node["id"], {"companyRemoteId": None}))
    assert cleared["updateContact"]["contact"]["company"] is None


async def test_an_unknown_related_id_is_refused_and_nothing_is_created(harness: Harness) -> None:
    case = case_of(harness, "Contact")
    before = len(harness.provider.ids("Contact"))
    missing = "999999999" if harness.provider.provider == "hubspot" else "001000000000000AAA"
    body = await harness.create("Contact", {**case.create, "companyRemoteId": missing})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert len(harness.provider.ids("Contact")) == before


async def test_a_deals_contacts_change_where_the_provider_allows(harness: Harness) -> None:
    case = case_of(harness, "Deal")
    node = data(await harness.create("Deal", case.create))["createDeal"]["deal"]
    others = sorted(await cached_ids(harness.store, harness.connection_id, "contacts"))
    body = await harness.update("Deal", node["id"], {"contactRemoteIds": [others[-1]]})
    if harness.provider.provider == "hubspot":  # associations: replaced freely
        assert [c["remoteId"] for c in data(body)["updateDeal"]["deal"]["contacts"]] == [others[-1]]
        return
    # Salesforce takes an opportunity's primary contact on create only.
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "contactRemoteIds"
    # Setting the same contacts again is no change, so the rest of the update goes through.
    five = {"amount": "5.00", "currency": "EUR"}
    same = await harness.update(
        "Deal", node["id"], {"contactRemoteIds": case.create["contactRemoteIds"], "amount": five}
    )
    assert data(same)["updateDeal"]["deal"]["amount"] == five
