"""The HubSpot sandbox behaves like the HubSpot API, driven over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from connectors.hubspot.sandbox import HubSpotError, HubSpotSandbox, SandboxSize, create_app
from connectors.hubspot.sandbox.crm import V3_ASSOCIATION_PAGE_SIZE
from connectors.hubspot.sandbox.timestamps import parse_instant
from connectors.kit.sandbox import RollingWindowLimiter, TokenStore, serve_in_thread

OBJECT_TYPES = ("contacts", "companies", "deals", "notes", "tasks")
REDIRECT_URI = "http://localhost:3000/oauth/callback"


@dataclass
class Portal:
    sandbox: HubSpotSandbox
    base_url: str
    api: httpx2.Client

    def anonymous(self) -> httpx2.Client:
        return httpx2.Client(base_url=self.base_url, follow_redirects=False)


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    """Default-sized and read-only: tests that write use `fresh`."""
    yield from _serve(HubSpotSandbox(seed=7), rate_limited=False)


@pytest.fixture
def fresh() -> Iterator[Portal]:
    yield from _serve(HubSpotSandbox(seed=11, size=SandboxSize(contacts=40, companies=8, deals=10, notes=10, tasks=10)))


@pytest.fixture(scope="module")
def big() -> Iterator[Portal]:
    """Past HubSpot's 10,000-result search cap."""
    size = SandboxSize(contacts=10_050, companies=40, deals=10, owners=3, notes=10, tasks=10)
    yield from _serve(HubSpotSandbox(seed=3, size=size), rate_limited=False)


@pytest.fixture(scope="module")
def big_contacts(big: Portal) -> list[dict[str, Any]]:
    props = "email,lifecyclestage,nps_score,favorite_color,loyalty_tier,firstname"
    return list_all(big.api, "contacts", {"limit": 100, "properties": props})


def _serve(sandbox: HubSpotSandbox, *, rate_limited: bool = True) -> Iterator[Portal]:
    sandbox.faults.rate_limit_enabled = rate_limited
    token = sandbox.mint_tokens()["access_token"]
    with serve_in_thread(create_app(sandbox)) as base_url:
        api = httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
        try:
            yield Portal(sandbox, base_url, api)
        finally:
            api.close()


def list_all(api: httpx2.Client, object_type: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        response = api.get(f"/crm/v3/objects/{object_type}", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        records.extend(body["results"])
        if "paging" not in body:
            return records
        query["after"] = body["paging"]["next"]["after"]


def search(api: httpx2.Client, object_type: str, body: dict[str, Any]) -> httpx2.Response:
    return api.post(f"/crm/v3/objects/{object_type}/search", json=body)


def search_ids(api: httpx2.Client, object_type: str, body: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    request = {**body, "limit": 200}
    while True:
        response = search(api, object_type, request)
        assert response.status_code == 200, response.text
        page = response.json()
        ids.extend(r["id"] for r in page["results"])
        if "paging" not in page:
            assert len(ids) == page["total"]
            return ids
        request["after"] = page["paging"]["next"]["after"]


def only(*filters: dict[str, Any]) -> dict[str, Any]:
    return {"filterGroups": [{"filters": list(filters)}]}


# ---- listing --------------------------------------------------------------------------------


@pytest.mark.parametrize("object_type", OBJECT_TYPES)
def test_paging_through_a_list_returns_every_record_once_in_id_order(portal: Portal, object_type: str) -> None:
    records = list_all(portal.api, object_type, {"limit": 100})
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    assert set(ids) == portal.sandbox.all_ids(object_type)
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)


def test_last_page_has_no_paging_and_cursors_are_opaque(portal: Portal) -> None:
    first = portal.api.get("/crm/v3/objects/contacts", params={"limit": 100}).json()
    cursor = first["paging"]["next"]
    assert cursor["link"] == f"?after={cursor['after']}"
    assert not cursor["after"].isdigit()
    last = portal.api.get("/crm/v3/objects/contacts", params={"limit": 100, "after": cursor["after"]}).json()
    last = portal.api.get("/crm/v3/objects/contacts", params={"limit": 100, "after": last["paging"]["next"]["after"]})
    assert len(last.json()["results"]) == 50
    assert "paging" not in last.json()


@pytest.mark.parametrize(
    "params",
    [{"limit": 101}, {"limit": 0}, {"limit": "ten"}, {"after": "not-a-cursor!"}],
    ids=["limit-over-100", "limit-zero", "limit-not-a-number", "garbage-cursor"],
)
def test_bad_list_parameters_are_a_validation_error(portal: Portal, params: dict[str, Any]) -> None:
    response = portal.api.get("/crm/v3/objects/contacts", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert body["status"] == "error" and body["correlationId"]


def test_default_properties_and_requested_unset_properties_as_null(portal: Portal) -> None:
    default = portal.api.get("/crm/v3/objects/contacts", params={"limit": 1}).json()["results"][0]
    assert set(default["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    assert default["properties"]["hs_object_id"] == default["id"]
    assert default["archived"] is False

    params = httpx2.QueryParams(
        [("limit", "100"), ("properties", "email,nps_score"), ("properties", "favorite_color,not_a_property")]
    )
    records = portal.api.get("/crm/v3/objects/contacts", params=params).json()["results"]
    assert all(
        set(r["properties"])
        == {"email", "nps_score", "favorite_color", "createdate", "lastmodifieddate", "hs_object_id"}
        for r in records
    )
    colors = [r["properties"]["favorite_color"] for r in records]
    assert None in colors and any(colors), "custom properties are seeded on some records, null on others"
    assert all(isinstance(v, str) or v is None for r in records for v in r["properties"].values())


def test_timestamps_are_iso_utc_with_milliseconds_and_updated_never_precedes_created(portal: Portal) -> None:
    records = list_all(portal.api, "deals", {"limit": 100, "properties": "closedate"})
    window = (parse_instant("2024-01-01"), parse_instant("2026-01-01"))
    for record in records:
        for stamp in (record["createdAt"], record["updatedAt"], record["properties"]["closedate"]):
            assert len(stamp) == 24 and stamp.endswith("Z") and stamp[19] == "."
        created, updated = parse_instant(record["createdAt"]), parse_instant(record["updatedAt"])
        assert created is not None and updated is not None and window[0] is not None and window[1] is not None
        assert window[0] <= created <= updated < window[1]
        assert record["properties"]["hs_lastmodifieddate"] == record["updatedAt"]
    assert len({r["updatedAt"] for r in records}) == len(records)


def test_same_seed_same_portal(portal: Portal) -> None:
    twin = HubSpotSandbox(seed=7)
    other = HubSpotSandbox(seed=8)
    assert (twin.client_id, twin.client_secret, twin.hub_id) == (
        portal.sandbox.client_id,
        portal.sandbox.client_secret,
        portal.sandbox.hub_id,
    )
    first_id = min(portal.sandbox.all_ids("contacts"), key=int)
    assert twin.get("contacts", first_id) == portal.sandbox.get("contacts", first_id)
    assert twin.client_id != other.client_id


def test_list_can_include_associations(portal: Portal) -> None:
    contacts = list_all(portal.api, "contacts", {"limit": 100, "associations": "companies,deals"})
    with_company = [c for c in contacts if "companies" in c.get("associations", {})]
    without = [c for c in contacts if "companies" not in c.get("associations", {})]
    assert with_company and without, "most contacts have a company, some have none (the key is then omitted)"
    links = with_company[0]["associations"]["companies"]["results"]
    assert {link["type"] for link in links} == {"contact_to_company", "contact_to_company_unlabeled"}
    assert all(link["id"] in portal.sandbox.all_ids("companies") for link in links)


def test_list_and_get_answer_at_most_a_page_of_associations_per_type_and_page_the_rest() -> None:
    """HubSpot's v3 reads cut each association type at 100 records and name the rest with a cursor."""
    size = SandboxSize(contacts=5, companies=V3_ASSOCIATION_PAGE_SIZE + 7, deals=3, owners=1, notes=1, tasks=1)
    sandbox = HubSpotSandbox(seed=5, size=size)
    deal = min(sandbox.all_ids("deals"), key=int)
    for company in sandbox.all_ids("companies"):
        sandbox.associate("deals", deal, "companies", company)
    sandbox.faults.rate_limit_enabled = False
    auth = {"Authorization": f"Bearer {sandbox.mint_tokens()['access_token']}"}
    with serve_in_thread(create_app(sandbox)) as url, httpx2.Client(base_url=url, headers=auth) as api:
        listed = list_all(api, "deals", {"limit": 100, "associations": "companies,contacts"})
        got = api.get(f"/crm/v3/objects/deals/{deal}", params={"associations": "companies,contacts"}).json()
        v4 = api.post("/crm/v4/associations/deals/companies/batch/read", json={"inputs": [{"id": deal}]})
    in_list = next(d for d in listed if d["id"] == deal)["associations"]["companies"]
    assert in_list == got["associations"]["companies"]
    for block in (in_list, got["associations"]["companies"]):
        first = {row["id"] for row in block["results"]}
        assert len(first) == V3_ASSOCIATION_PAGE_SIZE
        after = block["paging"]["next"]["after"]
        assert block["paging"] == {
            "next": {"after": after, "link": f"/crm/v3/objects/0-3/{deal}/associations/0-2?after={after}"}
        }
    every = {str(to["toObjectId"]) for to in v4.json()["results"][0]["to"]}
    assert every == sandbox.all_ids("companies") and first < every
    # Other types and other records, under a page, carry no cursor.
    assert "paging" not in got["associations"].get("contacts", {})
    assert all("paging" not in block for d in listed if d["id"] != deal for block in d.get("associations", {}).values())


def test_get_one_record_and_missing_record(portal: Portal) -> None:
    record_id = min(portal.sandbox.all_ids("companies"), key=int)
    response = portal.api.get(f"/crm/v3/objects/companies/{record_id}", params={"properties": "industry,account_tier"})
    assert response.status_code == 200
    assert response.json()["properties"]["industry"]
    missing = portal.api.get("/crm/v3/objects/companies/1")
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND"


# ---- writes ---------------------------------------------------------------------------------


def test_create_update_archive_with_hubspot_status_codes(fresh: Portal) -> None:
    api = fresh.api
    created = api.post(
        "/crm/v3/objects/contacts",
        json={"properties": {"email": "ada@example.org", "firstname": "Ada", "nps_score": 9}},
    )
    assert created.status_code == 201
    record = created.json()
    assert record["properties"]["nps_score"] == "9"
    assert record["properties"]["createdate"] == record["createdAt"] == record["updatedAt"]
    assert record["id"] in fresh.sandbox.all_ids("contacts")

    first = api.patch(f"/crm/v3/objects/contacts/{record['id']}", json={"properties": {"firstname": ""}})
    second = api.patch(f"/crm/v3/objects/contacts/{record['id']}", json={"properties": {"jobtitle": "Engineer"}})
    assert first.status_code == second.status_code == 200
    assert first.json()["properties"].get("firstname") is None
    assert record["updatedAt"] < first.json()["updatedAt"] < second.json()["updatedAt"]
    assert second.json()["properties"]["lastmodifieddate"] == second.json()["updatedAt"]

    deleted = api.delete(f"/crm/v3/objects/contacts/{record['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert record["id"] not in {r["id"] for r in list_all(api, "contacts", {"limit": 100})}
    archived = list_all(api, "contacts", {"limit": 100, "archived": "true"})
    assert [r["id"] for r in archived] == [record["id"]]
    assert archived[0]["archived"] is True and archived[0]["archivedAt"]
    assert fresh.sandbox.all_ids("contacts", archived=True) == {record["id"]}
    assert api.get(f"/crm/v3/objects/contacts/{record['id']}").status_code == 404
    assert api.get(f"/crm/v3/objects/contacts/{record['id']}", params={"archived": "true"}).status_code == 200


def test_patch_of_a_missing_record_is_404(fresh: Portal) -> None:
    response = fresh.api.patch("/crm/v3/objects/deals/999", json={"properties": {"dealname": "x"}})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("object_type", "properties", "code", "message"),
    [
        (
            "contacts",
            {"email": "x@example.org", "shoe_size": "44"},
            "PROPERTY_DOESNT_EXIST",
            'Property "shoe_size" does not exist',
        ),
        (
            "contacts",
            {"hs_object_id": "5"},
            "READ_ONLY_VALUE",
            '"hs_object_id" is a calculated property; its value cannot be set.',
        ),
        (
            "companies",
            {"name": "Acme", "hs_lastmodifieddate": "2024-01-01T00:00:00.000Z"},
            "READ_ONLY_VALUE",
            '"hs_lastmodifieddate" is a calculated property; its value cannot be set.',
        ),
        ("contacts", {"email": "not-an-email"}, "INVALID_EMAIL", "Email address not-an-email is invalid"),
        ("contacts", {"email": "ada@engines"}, "INVALID_EMAIL", "Email address ada@engines is invalid"),
        (
            "contacts",
            {"lifecyclestage": "astronaut"},
            "INVALID_OPTION",
            "astronaut was not one of the allowed options: [subscriber, lead, marketingqualifiedlead, "
            "salesqualifiedlead, opportunity, customer, evangelist, other]",
        ),
        ("deals", {"dealstage": "closedmaybe"}, "INVALID_OPTION", "closedmaybe was not one of the allowed options: ["),
        ("tasks", {"hs_timestamp": 1, "hs_task_priority": "URGENT"}, "INVALID_OPTION", "URGENT was not one of"),
        (
            "notes",
            {"hs_timestamp": 1, "follow_up_required": "yes"},
            "INVALID_OPTION",
            "yes was not one of the allowed options: [true, false]",
        ),
        ("deals", {"amount": "lots"}, "INVALID_INTEGER", "lots was not a valid number."),
        ("deals", {"amount": "1.4e-14"}, "INVALID_INTEGER", "1.4e-14 was not a valid number."),
        ("deals", {"amount": " 12"}, "LEADING_TRAILING_WHITESPACE", '" 12" includes leading or trailing whitespace.'),
        (
            "companies",
            {"renewal_date": "1521225089103"},
            "INVALID_DATE",
            "1521225089103 is at 18:31:29.103 UTC, not midnight!",
        ),
        ("companies", {"renewal_date": "2024-06-20T04:00:00Z"}, "INVALID_DATE", "is at 4:0:0.0 UTC, not midnight!"),
        ("deals", {"closedate": "next tuesday"}, "INVALID_LONG", "next tuesday was not a valid long."),
    ],
    ids=[
        "unknown-property",
        "read-only-id",
        "read-only-modified-date",
        "email-without-at",
        "email-without-tld",
        "bad-option",
        "deal-stage-not-in-pipeline",
        "task-priority",
        "checkbox-not-true-or-false",
        "not-a-number",
        "exponent-notation",
        "whitespace-around-a-number",
        "date-not-at-midnight",
        "iso-date-not-at-midnight",
        "datetime-not-a-date",
    ],
)
def test_invalid_properties_are_rejected_and_nothing_is_written(
    fresh: Portal, object_type: str, properties: dict[str, Any], code: str, message: str
) -> None:
    before = fresh.sandbox.all_ids(object_type)
    response = fresh.api.post(f"/crm/v3/objects/{object_type}", json={"properties": properties})
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["status", "message", "correlationId", "errors", "category"]
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: ")
    verdicts = json.loads(body["message"].removeprefix("Property values were not valid: "))
    bad_name = next(name for name in properties if name in str(body["errors"]))
    assert [v["name"] for v in verdicts] == [bad_name]
    assert verdicts[0]["error"] == code and verdicts[0]["isValid"] is False
    assert message in verdicts[0]["message"] and verdicts[0]["localizedErrorMessage"] == verdicts[0]["message"]
    assert body["errors"] == [
        {"message": verdicts[0]["message"], "code": code, "context": {"propertyName": [bad_name]}}
    ]
    assert fresh.sandbox.all_ids(object_type) == before
    # An update with the same value is refused the same way and changes nothing.
    target = min(before, key=int)
    record = fresh.api.get(f"/crm/v3/objects/{object_type}/{target}").json()
    patched = fresh.api.patch(f"/crm/v3/objects/{object_type}/{target}", json={"properties": properties})
    assert patched.status_code == 400 and patched.json()["errors"][0]["code"] == code
    assert fresh.api.get(f"/crm/v3/objects/{object_type}/{target}").json() == record


def test_every_invalid_property_is_reported_at_once(fresh: Portal) -> None:
    response = fresh.api.post(
        "/crm/v3/objects/contacts",
        json={"properties": {"email": "nope", "lifecyclestage": "astronaut", "nps_score": "ten", "firstname": "Ok"}},
    )
    assert response.status_code == 400
    codes = {e["context"]["propertyName"][0]: e["code"] for e in response.json()["errors"]}
    assert codes == {"email": "INVALID_EMAIL", "lifecyclestage": "INVALID_OPTION", "nps_score": "INVALID_INTEGER"}


@pytest.mark.parametrize(
    ("object_type", "properties", "stored"),
    [
        (
            "contacts",
            {"email": "Ada.Lovelace+crm@engines.example.org"},
            {"email": "Ada.Lovelace+crm@engines.example.org"},
        ),
        (
            "deals",
            {"amount": 1500.5, "contract_length_months": "-12"},
            {"amount": "1500.5", "contract_length_months": "-12"},
        ),
        ("companies", {"name": "Acme", "renewal_date": "1718841600000"}, {"renewal_date": "2024-06-20"}),
        ("companies", {"name": "Acme", "renewal_date": "2024-06-20"}, {"renewal_date": "2024-06-20"}),
        ("deals", {"closedate": "2024-06-20T09:30:00+02:00"}, {"closedate": "2024-06-20T07:30:00.000Z"}),
        ("notes", {"hs_timestamp": 1718841600000, "follow_up_required": True}, {"follow_up_required": "true"}),
        ("notes", {"hs_timestamp": 1718841600000, "hs_note_body": "  spaced  "}, {"hs_note_body": "  spaced  "}),
    ],
    ids=[
        "email",
        "numbers",
        "date-as-midnight-ms",
        "date-as-iso-day",
        "datetime-with-offset",
        "boolean",
        "string-keeps-spaces",
    ],
)
def test_valid_values_are_stored_in_hubspots_format(
    fresh: Portal, object_type: str, properties: dict[str, Any], stored: dict[str, str]
) -> None:
    response = fresh.api.post(f"/crm/v3/objects/{object_type}", json={"properties": properties})
    assert response.status_code == 201, response.text
    assert {name: response.json()["properties"][name] for name in stored} == stored


@pytest.mark.parametrize("object_type", ["notes", "tasks"])
def test_activities_require_hs_timestamp(fresh: Portal, object_type: str) -> None:
    response = fresh.api.post(f"/crm/v3/objects/{object_type}", json={"properties": {}})
    assert response.status_code == 400
    assert response.json()["context"] == {"properties": ["hs_timestamp"]}
    created = fresh.api.post(f"/crm/v3/objects/{object_type}", json={"properties": {"hs_timestamp": 1718841600000}})
    assert created.status_code == 201
    assert created.json()["properties"]["hs_timestamp"] == "2024-06-20T00:00:00.000Z"


def test_duplicate_email_is_a_conflict_until_the_holder_is_archived(fresh: Portal) -> None:
    holder = next(iter(list_all(fresh.api, "contacts", {"limit": 1})))
    email = holder["properties"]["email"]
    duplicate = fresh.api.post("/crm/v3/objects/contacts", json={"properties": {"email": email.upper()}})
    assert duplicate.status_code == 409
    assert duplicate.json()["category"] == "CONFLICT"
    assert duplicate.json()["message"] == f"Contact already exists. Existing ID: {holder['id']}"
    fresh.api.delete(f"/crm/v3/objects/contacts/{holder['id']}")
    assert fresh.api.post("/crm/v3/objects/contacts", json={"properties": {"email": email}}).status_code == 201


def test_python_control_api_matches_http(fresh: Portal) -> None:
    sandbox = fresh.sandbox
    company_id = min(sandbox.all_ids("companies"), key=int)
    contact = sandbox.create("contacts", {"email": "py@example.org"}, associations={"companies": [company_id]})
    assert fresh.api.get(f"/crm/v3/objects/contacts/{contact['id']}").json()["properties"]["email"] == "py@example.org"
    updated = sandbox.update("contacts", contact["id"], {"lastname": "Lovelace"})
    assert updated["properties"]["lastname"] == "Lovelace"
    with pytest.raises(HubSpotError) as raised:
        sandbox.create("contacts", {"email": "py@example.org"})
    assert raised.value.status == 409
    sandbox.archive("contacts", contact["id"])
    assert contact["id"] in sandbox.all_ids("contacts", archived=True)


def test_contacts_can_be_read_and_updated_by_email(fresh: Portal) -> None:
    contact = fresh.sandbox.create("contacts", {"email": "grace@example.org", "firstname": "Grace"})
    by_email = fresh.api.get("/crm/v3/objects/contacts/GRACE@example.org", params={"idProperty": "email"})
    assert by_email.status_code == 200 and by_email.json()["id"] == contact["id"]
    patched = fresh.api.patch(
        "/crm/v3/objects/contacts/grace@example.org",
        params={"idProperty": "email"},
        json={"properties": {"lastname": "Hopper"}},
    )
    assert patched.json()["properties"]["lastname"] == "Hopper"
    missing = fresh.api.get("/crm/v3/objects/contacts/nobody@example.org", params={"idProperty": "email"})
    assert missing.status_code == 404


def test_batch_read_of_records_reports_missing_ids_as_207(fresh: Portal) -> None:
    known = sorted(fresh.sandbox.all_ids("deals"), key=int)[:2]
    response = fresh.api.post(
        "/crm/v3/objects/deals/batch/read",
        json={"inputs": [{"id": i} for i in [*known, "404"]], "properties": ["dealname"]},
    )
    assert response.status_code == 207
    body = response.json()
    assert sorted(r["id"] for r in body["results"]) == known
    assert all(r["properties"]["dealname"] for r in body["results"])
    assert body["numErrors"] == 1 and body["errors"][0]["context"] == {"ids": ["404"]}


def test_batch_read_by_a_unique_property(fresh: Portal) -> None:
    ada = fresh.sandbox.create("contacts", {"email": "ada@engines.example", "firstname": "Ada"})
    response = fresh.api.post(
        "/crm/v3/objects/contacts/batch/read",
        json={
            "idProperty": "email",
            "inputs": [{"id": "ADA@engines.example"}, {"id": "nobody@engines.example"}],
            "properties": ["firstname"],
        },
    )
    assert response.status_code == 207
    body = response.json()
    assert [(r["id"], r["properties"]["firstname"]) for r in body["results"]] == [(ada["id"], "Ada")]
    assert body["errors"][0]["context"] == {"ids": ["nobody@engines.example"]}
    # A property that does not hold unique values cannot identify records.
    refused = fresh.api.post(
        "/crm/v3/objects/contacts/batch/read", json={"idProperty": "firstname", "inputs": [{"id": "Ada"}]}
    )
    assert refused.status_code == 400
    assert refused.json()["message"] == "Unable to perform read by non-unique 0-1 property firstname"
    misspelt = fresh.api.post("/crm/v3/objects/contacts/batch/read", json={"idproperty": "email", "inputs": []})
    assert misspelt.status_code == 400 and '"idproperty"' in misspelt.json()["message"]


def test_properties_with_history_on_list_get_and_batch_read(fresh: Portal) -> None:
    api = fresh.api
    seeded = min(fresh.sandbox.all_ids("deals"), key=int)
    before = api.get(f"/crm/v3/objects/deals/{seeded}", params={"properties": "dealname,deal_source"}).json()
    api.patch(f"/crm/v3/objects/deals/{seeded}", json={"properties": {"dealname": "Renamed", "amount": "10"}})
    api.patch(f"/crm/v3/objects/deals/{seeded}", json={"properties": {"dealname": "Renamed"}})  # same value: no version
    fresh.sandbox.update("deals", seeded, {"dealname": "Renamed again", "amount": ""})
    reads = [
        api.get(
            f"/crm/v3/objects/deals/{seeded}",
            params={"propertiesWithHistory": "dealname,amount,no_such_property,deal_source"},
        ).json(),
        next(
            r
            for r in list_all(api, "deals", {"limit": 100, "propertiesWithHistory": "dealname,amount,deal_source"})
            if r["id"] == seeded
        ),
        api.post(
            "/crm/v3/objects/deals/batch/read",
            json={"inputs": [{"id": seeded}], "propertiesWithHistory": ["dealname", "amount", "deal_source"]},
        ).json()["results"][0],
    ]
    for record in reads:
        history = record["propertiesWithHistory"]
        names = [v["value"] for v in history["dealname"]]
        assert names == ["Renamed again", "Renamed", before["properties"]["dealname"]]
        assert [v["sourceType"] for v in history["dealname"]] == ["CRM_UI", "API", "IMPORT"]
        assert history["dealname"][-1]["timestamp"] == record["createdAt"]
        assert history["dealname"][0]["timestamp"] == record["updatedAt"]
        stamps = [parse_instant(v["timestamp"]) for v in history["dealname"]]
        assert stamps == sorted(stamps, reverse=True)
        assert [v["value"] for v in history["amount"]][:2] == ["", "10"]
        assert "no_such_property" not in history
        # A property never set has no history and is left out; a seeded one has its one version.
        source = before["properties"]["deal_source"]
        assert history.get("deal_source") == (
            [{"value": source, "timestamp": record["createdAt"], "sourceType": "IMPORT"}] if source else None
        )
    # Without the parameter there is no history at all.
    assert "propertiesWithHistory" not in api.get(f"/crm/v3/objects/deals/{seeded}").json()


def test_unknown_routes_and_methods_answer_as_hubspot_does(fresh: Portal) -> None:
    missing = fresh.api.get("/crm/v3/objects/contacts/1/timeline")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json()["message"] == "resource not found" and missing.json()["correlationId"]
    wrong = fresh.api.put("/crm/v3/objects/contacts/search", json={})
    assert wrong.status_code == 405 and wrong.content == b""
    assert wrong.headers["allow"] == "POST"


# ---- associations ---------------------------------------------------------------------------


def test_create_with_associations_and_read_them_in_both_directions(fresh: Portal) -> None:
    contact_id = min(fresh.sandbox.all_ids("contacts"), key=int)
    note = fresh.api.post(
        "/crm/v3/objects/notes",
        json={
            "properties": {"hs_timestamp": "2025-01-15T10:30:00.000Z", "hs_note_body": "Met client"},
            "associations": [
                {
                    "to": {"id": contact_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
                }
            ],
        },
    ).json()
    forward = fresh.api.post("/crm/v4/associations/notes/contacts/batch/read", json={"inputs": [{"id": note["id"]}]})
    assert forward.status_code == 200
    body = forward.json()
    assert body["status"] == "COMPLETE" and body["startedAt"] and body["completedAt"]
    assert body["results"] == [
        {
            "from": {"id": note["id"]},
            "to": [
                {
                    "toObjectId": int(contact_id),
                    "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 202, "label": None}],
                }
            ],
        }
    ]
    backward = fresh.api.post("/crm/v4/associations/contact/note/batch/read", json={"inputs": [{"id": contact_id}]})
    targets = backward.json()["results"][0]["to"]
    assert {
        "toObjectId": int(note["id"]),
        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 201, "label": None}],
    } in targets


def test_association_to_a_missing_record_or_wrong_type_is_rejected(fresh: Portal) -> None:
    spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}
    body = {"properties": {"hs_timestamp": "2025-01-15"}, "associations": [{"to": {"id": "1"}, "types": [spec]}]}
    assert fresh.api.post("/crm/v3/objects/notes", json=body).status_code == 400
    contact_id = min(fresh.sandbox.all_ids("contacts"), key=int)
    wrong = {**spec, "associationTypeId": 279}  # contact -> company, not note -> contact
    body = {
        "properties": {"hs_timestamp": "2025-01-15"},
        "associations": [{"to": {"id": contact_id}, "types": [wrong]}],
    }
    assert fresh.api.post("/crm/v3/objects/notes", json=body).status_code == 400
    assert fresh.sandbox.all_ids("notes") == {r["id"] for r in list_all(fresh.api, "notes", {"limit": 100})}


def test_batch_read_reports_ids_without_associations_as_207(portal: Portal) -> None:
    contacts = list_all(portal.api, "contacts", {"limit": 100, "associations": "companies"})
    linked = next(c for c in contacts if "associations" in c)
    lonely = next(c for c in contacts if "associations" not in c)
    response = portal.api.post(
        "/crm/v4/associations/contacts/companies/batch/read",
        json={"inputs": [{"id": linked["id"]}, {"id": lonely["id"]}]},
    )
    assert response.status_code == 207
    body = response.json()
    assert [r["from"]["id"] for r in body["results"]] == [linked["id"]]
    type_ids = [t["typeId"] for t in body["results"][0]["to"][0]["associationTypes"]]
    assert type_ids == [1, 279]
    assert body["numErrors"] == 1
    assert body["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert body["errors"][0]["context"]["fromObjectId"] == [lonely["id"]]


def test_default_association_can_be_created_and_removed(fresh: Portal) -> None:
    deal_id = min(fresh.sandbox.all_ids("deals"), key=int)
    contact = fresh.sandbox.create("contacts", {"email": "new@example.org"})
    put = fresh.api.put(f"/crm/v4/objects/deals/{deal_id}/associations/default/contacts/{contact['id']}")
    assert put.status_code == 200
    specs = {(r["from"]["id"], r["associationSpec"]["associationTypeId"]) for r in put.json()["results"]}
    assert specs == {(deal_id, 3), (contact["id"], 4)}
    assert fresh.sandbox.get("contacts", contact["id"])["updatedAt"] == contact["updatedAt"]

    read = {"inputs": [{"id": contact["id"]}]}
    assert fresh.api.post("/crm/v4/associations/contacts/deals/batch/read", json=read).status_code == 200
    removed = fresh.api.delete(f"/crm/v4/objects/deals/{deal_id}/associations/contacts/{contact['id']}")
    assert removed.status_code == 204
    assert fresh.api.post("/crm/v4/associations/contacts/deals/batch/read", json=read).status_code == 207


def test_association_list_pages_through_a_companys_contacts(portal: Portal) -> None:
    contacts = list_all(portal.api, "contacts", {"limit": 100, "associations": "companies"})
    by_company: dict[str, set[str]] = {}
    for contact in contacts:
        for link in contact.get("associations", {}).get("companies", {}).get("results", []):
            by_company.setdefault(link["id"], set()).add(contact["id"])
    company_id, expected = max(by_company.items(), key=lambda item: len(item[1]))
    assert len(expected) > 5
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 5}
    while True:
        page = portal.api.get(f"/crm/v4/objects/companies/{company_id}/associations/contacts", params=params).json()
        seen.extend(row["toObjectId"] for row in page["results"])
        assert all({t["typeId"] for t in row["associationTypes"]} == {2, 280} for row in page["results"])
        if "paging" not in page:
            break
        params["after"] = page["paging"]["next"]["after"]
    assert {str(i) for i in seen} == expected and len(seen) == len(expected)


# ---- search ---------------------------------------------------------------------------------


def test_search_filters_match_the_listed_records(big: Portal, big_contacts: list[dict[str, Any]]) -> None:
    def expect(predicate: Any) -> set[str]:
        return {c["id"] for c in big_contacts if predicate(c["properties"])}

    email = big_contacts[5]["properties"]["email"]
    cases: list[tuple[dict[str, Any], set[str]]] = [
        (
            only({"propertyName": "email", "operator": "EQ", "value": email.upper()}),
            expect(lambda p: p["email"] == email),
        ),
        (
            only({"propertyName": "lifecyclestage", "operator": "IN", "values": ["lead", "customer"]}),
            expect(lambda p: p["lifecyclestage"] in ("lead", "customer")),
        ),
        (
            only({"propertyName": "nps_score", "operator": "GT", "value": "8"}),
            expect(lambda p: p["nps_score"] is not None and int(p["nps_score"]) > 8),
        ),
        (
            only({"propertyName": "nps_score", "operator": "BETWEEN", "value": "2", "highValue": "3"}),
            expect(lambda p: p["nps_score"] in ("2", "3")),
        ),
        (
            only({"propertyName": "favorite_color", "operator": "NOT_HAS_PROPERTY"}),
            expect(lambda p: p["favorite_color"] is None),
        ),
        (
            only(
                {"propertyName": "favorite_color", "operator": "HAS_PROPERTY"},
                {"propertyName": "favorite_color", "operator": "NEQ", "value": "red"},
            ),
            expect(lambda p: p["favorite_color"] not in (None, "red")),
        ),
        (
            only({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@gmail.com"}),
            expect(lambda p: p["email"].endswith("@gmail.com")),
        ),
        (
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "favorite_color", "operator": "EQ", "value": "blue"}]},
                    {
                        "filters": [
                            {"propertyName": "loyalty_tier", "operator": "EQ", "value": "gold"},
                            {"propertyName": "nps_score", "operator": "GTE", "value": "5"},
                        ]
                    },
                ]
            },
            expect(
                lambda p: (
                    p["favorite_color"] == "blue"
                    or (p["loyalty_tier"] == "gold" and p["nps_score"] is not None and int(p["nps_score"]) >= 5)
                )
            ),
        ),
    ]
    for body, expected in cases:
        assert expected, body
        assert set(search_ids(big.api, "contacts", body)) == expected, body


def test_search_dates_compare_as_instants_whether_epoch_or_iso(big: Portal, big_contacts: list[dict[str, Any]]) -> None:
    cutoff = "2025-07-01T00:00:00.000Z"
    cutoff_ms = parse_instant(cutoff)
    assert cutoff_ms is not None
    expected = {c["id"] for c in big_contacts if (parse_instant(c["properties"]["lastmodifieddate"]) or 0) >= cutoff_ms}
    by_iso = only({"propertyName": "lastmodifieddate", "operator": "GTE", "value": cutoff})
    by_epoch = only({"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(cutoff_ms)})
    total = search(big.api, "contacts", by_iso).json()["total"]
    assert total == search(big.api, "contacts", by_epoch).json()["total"] == len(expected)
    created = only({"propertyName": "createdate", "operator": "LT", "value": str(cutoff_ms)})
    assert search(big.api, "contacts", created).json()["total"] == sum(
        1 for c in big_contacts if (parse_instant(c["properties"]["createdate"]) or 0) < cutoff_ms
    )


def test_incremental_search_pages_in_modified_order(big: Portal) -> None:
    body = only({"propertyName": "lastmodifieddate", "operator": "GT", "value": "2025-10-01T00:00:00Z"}) | {
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "lastmodifieddate"],
    }
    ids = search_ids(big.api, "contacts", body)
    page = search(big.api, "contacts", body | {"limit": 200}).json()
    stamps = [r["properties"]["lastmodifieddate"] for r in page["results"]]
    assert stamps == sorted(stamps) and stamps[0] > "2025-10-01T00:00:00.000Z"
    assert all("associations" not in r for r in page["results"])
    assert set(page["results"][0]["properties"]) == {"email", "lastmodifieddate", "createdate", "hs_object_id"}
    assert len(ids) == len(set(ids)) == page["total"]


def test_search_sorts_descending_with_ties_broken_by_id(big: Portal) -> None:
    body = only({"propertyName": "nps_score", "operator": "HAS_PROPERTY"}) | {
        "sorts": [{"propertyName": "nps_score", "direction": "DESCENDING"}],
        "properties": ["nps_score"],
        "limit": 200,
    }
    results = search(big.api, "contacts", body).json()["results"]
    keys = [(-int(r["properties"]["nps_score"]), int(r["id"])) for r in results]
    assert keys == sorted(keys)
    bare = search(big.api, "contacts", {"sorts": ["firstname"], "limit": 50, "properties": ["firstname"]}).json()
    names = [r["properties"]["firstname"].lower() for r in bare["results"]]
    assert names == sorted(names)


def test_search_paging_stops_at_the_end_and_at_the_10000_cap(big: Portal) -> None:
    near_end = search(big.api, "contacts", {"limit": 200, "after": "9900"})
    assert near_end.status_code == 200
    assert near_end.json()["total"] == 10_050 and len(near_end.json()["results"]) == 150
    assert "paging" not in near_end.json()
    assert search(big.api, "contacts", {"limit": 200, "after": "9800"}).json()["paging"] == {"next": {"after": "10000"}}
    capped = search(big.api, "contacts", {"limit": 10, "after": "10000"})
    assert capped.status_code == 400 and capped.json()["category"] == "VALIDATION_ERROR"


def _filters(n: int) -> list[dict[str, Any]]:
    return [{"propertyName": "nps_score", "operator": "HAS_PROPERTY"}] * n


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"filterGroups": [{"filters": _filters(1)}] * 6},
        {"filterGroups": [{"filters": _filters(7)}]},
        {"filterGroups": [{"filters": _filters(5)}] * 4},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "a"}]}]},
    ],
    ids=["limit-201", "six-groups", "seven-filters-in-a-group", "twenty-filters", "unknown-operator"],
)
def test_search_limits_are_validation_errors(big: Portal, body: dict[str, Any]) -> None:
    response = search(big.api, "contacts", body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"filtergroups": []}, '"filtergroups"'),
        ({"filterGroups": [{"filters": [], "operator": "OR"}]}, '"operator"'),
        ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "valu": "a"}]}]}, '"valu"'),
        ({"sort": [{"propertyName": "email"}]}, '"sort"'),
        ({"query": ["ada"]}, "query"),
        ({"query": "x" * 3001}, "3000"),
        ({"limit": "ten"}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 2.5}, "limit"),
        ({"filterGroups": {"filters": []}}, "filterGroups"),
        ({"properties": "email,firstname"}, "properties"),
        ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": {"a": 1}}]}]}, "value"),
        ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "IN", "values": "a"}]}]}, "values"),
    ],
    ids=[
        "misspelt-filter-groups",
        "unknown-group-key",
        "misspelt-value",
        "sort-instead-of-sorts",
        "query-not-a-string",
        "query-too-long",
        "limit-not-a-number",
        "limit-a-boolean",
        "limit-a-fraction",
        "filter-groups-not-a-list",
        "properties-as-csv",
        "value-an-object",
        "values-not-a-list",
    ],
)
def test_malformed_search_bodies_are_refused_not_ignored(fresh: Portal, body: dict[str, Any], named: str) -> None:
    response = search(fresh.api, "contacts", body)
    assert response.status_code == 400, response.text
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert named in response.json()["message"]


def test_search_query_matches_default_searchable_properties(fresh: Portal) -> None:
    sandbox = fresh.sandbox
    sandbox.faults.rate_limit_enabled = False  # more searches than the 5 a second HubSpot allows
    ada = sandbox.create("contacts", {"email": "ada@engines.example", "firstname": "Ada", "lastname": "Lovelace"})
    babbage = sandbox.create("contacts", {"email": "charles@difference.example", "company": "Analytical Engines Ltd"})
    sandbox.create("contacts", {"email": "grace@navy.example", "jobtitle": "Engines officer"})  # jobtitle: not searched
    engines_co = sandbox.create("companies", {"name": "Engines Inc", "domain": "engines.example"})
    deal = sandbox.create("deals", {"dealname": "Difference engine order", "dealstage": "closedwon"})

    def found(object_type: str, query: str, **extra: Any) -> set[str]:
        response = search(fresh.api, object_type, {"query": query, "limit": 200, **extra})
        assert response.status_code == 200, response.text
        return {r["id"] for r in response.json()["results"]}

    assert found("contacts", "ENGINES") == {ada["id"], babbage["id"]}
    assert found("contacts", "lovelace") == {ada["id"]}
    assert found("contacts", "officer") == set()
    assert found("companies", "engines") == {engines_co["id"]}
    assert found("deals", "engine order") == {deal["id"]}
    assert found("deals", "closedwon") >= {deal["id"]}
    # The query narrows the filters; it does not widen them.
    by_domain = only({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*engines.example"})
    assert found("contacts", "ada", **by_domain) == {ada["id"]}
    response = search(fresh.api, "contacts", {"query": "engines", "limit": 1})
    assert response.json()["total"] == 2 and response.json()["paging"] == {"next": {"after": "1"}}


def test_archived_records_are_not_searchable(fresh: Portal) -> None:
    contact = fresh.sandbox.create("contacts", {"email": "gone@example.org"})
    body = only({"propertyName": "email", "operator": "EQ", "value": "gone@example.org"})
    assert search(fresh.api, "contacts", body).json()["total"] == 1
    fresh.sandbox.archive("contacts", contact["id"])
    assert search(fresh.api, "contacts", body).json() == {"total": 0, "results": []}


# ---- OAuth ----------------------------------------------------------------------------------


def _authorize(portal: Portal, client: httpx2.Client, decision: str, **extra: str) -> dict[str, list[str]]:
    params = {
        "client_id": portal.sandbox.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "oauth crm.objects.contacts.read",
        "state": "xyz",
        **extra,
    }
    page = client.get("/oauth/authorize", params=params)
    assert (
        page.status_code == 200
        and "Approve" in page.text
        and "Deny" in page.text
        and "crm.objects.contacts.read" in page.text
    )
    answer = client.post("/oauth/authorize", data={**params, "decision": decision})
    assert answer.status_code in (302, 303)
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return parse_qs(location.query)


def _exchange(portal: Portal, client: httpx2.Client, code: str, **extra: str) -> httpx2.Response:
    return client.post(
        "/oauth/v1/token",
        data={
            "grant_type": "authorization_code",
            "client_id": portal.sandbox.client_id,
            "client_secret": portal.sandbox.client_secret,
            "redirect_uri": REDIRECT_URI,
            "code": code,
            **extra,
        },
    )


def test_code_flow_with_pkce_issues_working_tokens_once(fresh: Portal) -> None:
    verifier = "a-verifier-of-at-least-forty-three-characters-0123456789"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    with fresh.anonymous() as client:
        first = _authorize(fresh, client, "approve", **pkce)
        assert first["state"] == ["xyz"]
        wrong = _exchange(fresh, client, first["code"][0], code_verifier="not-the-verifier")
        assert wrong.status_code == 400 and wrong.json()["status"] == "BAD_CODE_VERIFIER"

        code = _authorize(fresh, client, "approve", **pkce)["code"][0]
        tokens = _exchange(fresh, client, code, code_verifier=verifier)
        assert tokens.status_code == 200
        body = tokens.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 1800
        assert body["hub_id"] == fresh.sandbox.hub_id and body["scopes"] == ["oauth", "crm.objects.contacts.read"]

        reused = _exchange(fresh, client, code, code_verifier=verifier)
        assert reused.status_code == 400 and reused.json()["status"] == "BAD_AUTH_CODE"
        assert reused.json()["error"] == "invalid_grant"

        api = client.get("/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert api.status_code == 200


def test_denied_authorization_redirects_with_access_denied(fresh: Portal) -> None:
    with fresh.anonymous() as client:
        assert _authorize(fresh, client, "deny") == {"error": ["access_denied"], "state": ["xyz"]}


def test_authorize_refuses_unknown_apps_and_unregistered_redirects(fresh: Portal) -> None:
    fresh.sandbox.register_app("partner-app", "partner-secret", redirect_uris=["https://partner.example/cb"])
    with fresh.anonymous() as client:
        unknown = client.get("/oauth/authorize", params={"client_id": "nope", "redirect_uri": REDIRECT_URI})
        assert unknown.status_code == 400 and "text/html" in unknown.headers["content-type"]
        mismatch = client.get("/oauth/authorize", params={"client_id": "partner-app", "redirect_uri": REDIRECT_URI})
        assert mismatch.status_code == 400
        ok = client.get(
            "/oauth/authorize", params={"client_id": "partner-app", "redirect_uri": "https://partner.example/cb"}
        )
        assert ok.status_code == 200


def test_refresh_keeps_the_refresh_token_and_is_counted(fresh: Portal) -> None:
    minted = fresh.sandbox.mint_tokens()
    form = {
        "grant_type": "refresh_token",
        "client_id": fresh.sandbox.client_id,
        "client_secret": fresh.sandbox.client_secret,
        "refresh_token": minted["refresh_token"],
    }
    with fresh.anonymous() as client:
        refreshed = client.post("/oauth/v1/token", data=form)
        assert refreshed.status_code == 200
        assert refreshed.json()["refresh_token"] == minted["refresh_token"]
        assert refreshed.json()["access_token"] != minted["access_token"]
        assert fresh.sandbox.stats.token_refreshes == 1

        failures = {
            "BAD_CLIENT_ID": {**form, "client_id": "unknown"},
            "BAD_CLIENT_SECRET": {**form, "client_secret": "wrong"},
            "BAD_GRANT_TYPE": {**form, "grant_type": "password"},
            "BAD_REFRESH_TOKEN": {**form, "refresh_token": "na1-made-up"},
        }
        for status, bad_form in failures.items():
            response = client.post("/oauth/v1/token", data=bad_form)
            assert response.status_code == 400 and response.json()["status"] == status, status
            assert response.json()["correlationId"] and response.json()["message"]

        fresh.sandbox.revoke_refresh_token(minted["refresh_token"])
        revoked = client.post("/oauth/v1/token", data=form)
        assert revoked.status_code == 400 and revoked.json()["status"] == "BAD_REFRESH_TOKEN"
    assert fresh.sandbox.stats.token_refreshes == 1


def test_api_calls_need_a_live_bearer_token(fresh: Portal) -> None:
    with fresh.anonymous() as client:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = client.get("/crm/v3/objects/contacts", headers=headers)
            assert response.status_code == 401
            assert response.json()["category"] == "INVALID_AUTHENTICATION"
            assert response.json()["message"].startswith("Authentication credentials not found.")
        assert client.post("/_sandbox/expire-tokens").json()["expired"] >= 1
    expired = fresh.api.get("/crm/v3/objects/contacts")
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert expired.json()["message"].startswith("The OAuth token used to make this call expired ")
    assert expired.json()["message"].endswith(" second(s) ago.")


def test_token_lifetime_knob_sets_expires_in(fresh: Portal) -> None:
    fresh.sandbox.faults.token_lifetime_s = 60
    assert fresh.sandbox.mint_tokens()["expires_in"] == 60


# ---- rate limits and faults -----------------------------------------------------------------


def test_rate_limit_headers_and_429_at_the_ten_second_limit(fresh: Portal) -> None:
    fresh.sandbox.faults.rate_limit_max = 3
    responses = [fresh.api.get("/crm/v3/owners") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    for response in responses:
        assert response.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert "X-HubSpot-RateLimit-Daily" not in response.headers
    body = responses[-1].json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert "Retry-After" not in responses[-1].headers
    fresh.sandbox.faults.retry_after_header = True
    retry = fresh.api.get("/crm/v3/owners")
    assert retry.status_code == 429 and 1 <= int(retry.headers["Retry-After"]) <= 10


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_ten_second_window_rolls(fresh: Portal) -> None:
    clock = FakeClock(1000.0)
    fresh.sandbox.rate_limiter = RollingWindowLimiter(clock=clock)
    fresh.sandbox.faults.rate_limit_max = 2
    assert [fresh.api.get("/crm/v3/owners").status_code for _ in range(3)] == [200, 200, 429]
    clock.now += 9.9
    assert fresh.api.get("/crm/v3/owners").status_code == 429
    clock.now += 0.2
    assert fresh.api.get("/crm/v3/owners").status_code == 200


def test_expired_tokens_say_how_long_ago(fresh: Portal) -> None:
    clock = FakeClock(1_750_000_000.0)
    fresh.sandbox.tokens = TokenStore(clock=clock)
    token = fresh.sandbox.mint_tokens()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert fresh.api.get("/crm/v3/owners", headers=headers).status_code == 200
    for elapsed, wording in ((1830, "30 second(s)"), (1800 + 5 * 60, "5 minute(s)"), (1800 + 7200, "2 hour(s)")):
        clock.now = 1_750_000_000.0 + elapsed
        response = fresh.api.get("/crm/v3/owners", headers=headers)
        assert response.status_code == 401
        assert response.json()["message"] == f"The OAuth token used to make this call expired {wording} ago."


def test_search_has_its_own_per_second_limit_and_no_rate_headers(fresh: Portal) -> None:
    fresh.sandbox.faults.search_rate_per_s = 2
    responses = [search(fresh.api, "contacts", {"limit": 1}) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert all("X-HubSpot-RateLimit-Max" not in r.headers for r in responses)
    assert responses[-1].json()["policyName"] == "SECONDLY"
    assert fresh.api.get("/crm/v3/owners").headers["X-HubSpot-RateLimit-Remaining"] == "99"


def test_fault_knobs_inject_errors_and_latency(fresh: Portal) -> None:
    faults = fresh.sandbox.faults
    faults.rate_5xx = 1.0
    failed = fresh.api.get("/crm/v3/objects/contacts")
    assert failed.status_code in (500, 502, 503) and failed.json()["status"] == "error"
    faults.rate_5xx, faults.rate_429 = 0.0, 1.0
    throttled = fresh.api.get("/crm/v3/objects/contacts")
    assert throttled.status_code == 429 and throttled.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    faults.rate_429, faults.latency_ms = 0.0, 150
    started = time.perf_counter()
    assert fresh.api.get("/crm/v3/objects/contacts").status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_http_control_api(fresh: Portal) -> None:
    with fresh.anonymous() as client:
        assert client.get("/_sandbox/faults").json()["token_lifetime_s"] == 1800
        changed = client.patch("/_sandbox/faults", json={"rate_limit_max": 7, "retry_after_header": True})
        assert changed.status_code == 200
        assert (fresh.sandbox.faults.rate_limit_max, fresh.sandbox.faults.retry_after_header) == (7, True)
        for bad in ({"rate_429": 2}, {"no_such_knob": 1}, {"rate_limit_enabled": "yes"}):
            assert client.patch("/_sandbox/faults", json=bad).status_code == 400
        assert fresh.sandbox.faults.rate_limit_max == 7
        token = client.post("/_sandbox/tokens").json()["access_token"]
        assert client.get("/crm/v3/owners", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        stats = client.get("/_sandbox/stats").json()
    assert stats["requests"]["GET /crm/v3/owners"] == 1
    assert stats["responses_by_status"] == {"200": 1}
    assert stats["tokens_issued"] == 2


# ---- owners and properties ------------------------------------------------------------------


def test_owners(portal: Portal) -> None:
    owners = portal.api.get("/crm/v3/owners").json()["results"]
    assert len(owners) == 8
    owner = owners[0]
    assert set(owner) == {
        "id", "email", "type", "firstName", "lastName", "userId", "userIdIncludingInactive",
        "createdAt", "updatedAt", "archived", "teams",
    }  # fmt: skip
    assert owner["type"] == "PERSON" and owner["archived"] is False
    assert portal.api.get(f"/crm/v3/owners/{owner['id']}").json() == owner
    by_email = portal.api.get("/crm/v3/owners", params={"email": owner["email"]}).json()["results"]
    assert by_email == [owner]
    first_page = portal.api.get("/crm/v3/owners", params={"limit": 5}).json()
    rest = portal.api.get("/crm/v3/owners", params={"after": first_page["paging"]["next"]["after"]}).json()
    assert [o["id"] for o in first_page["results"] + rest["results"]] == [o["id"] for o in owners]
    assert portal.api.get("/crm/v3/owners", params={"limit": 501}).status_code == 400
    assert portal.api.get("/crm/v3/owners/1").status_code == 404
    owner_ids = {o["id"] for o in owners}
    contacts = list_all(portal.api, "contacts", {"limit": 100, "properties": "hubspot_owner_id"})
    assert {c["properties"]["hubspot_owner_id"] for c in contacts} - {None} <= owner_ids


def test_properties_describe_standard_and_custom_fields(portal: Portal) -> None:
    for object_type in OBJECT_TYPES:
        properties = {p["name"]: p for p in portal.api.get(f"/crm/v3/properties/{object_type}").json()["results"]}
        custom = [p for p in properties.values() if not p["hubspotDefined"]]
        assert 2 <= len(custom) <= 4, object_type
        assert properties["hs_object_id"]["modificationMetadata"]["readOnlyValue"] is True
        assert all(
            p["type"] in {"string", "number", "date", "datetime", "enumeration", "bool"} for p in properties.values()
        )
    contacts = {p["name"]: p for p in portal.api.get("/crm/v3/properties/contacts").json()["results"]}
    assert [o["value"] for o in contacts["loyalty_tier"]["options"]] == ["bronze", "silver", "gold", "platinum"]
    assert contacts["nps_score"]["type"] == "number"


def test_requests_are_counted_by_route_template(fresh: Portal) -> None:
    record_id = min(fresh.sandbox.all_ids("deals"), key=int)
    fresh.api.get(f"/crm/v3/objects/deals/{record_id}")
    fresh.api.get("/crm/v3/objects/deals/1")
    snapshot = fresh.sandbox.stats.snapshot()
    assert snapshot["requests"] == {"GET /crm/v3/objects/{objectType}/{objectId}": 2}
    assert snapshot["responses_by_status"] == {"200": 1, "404": 1}
