"""The Salesforce sandbox behaves like the Salesforce REST API and its OAuth login host, driven
over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from connectors.salesforce.sandbox import SalesforceError, SalesforceSandbox, SalesforceSize, serve_sandbox
from connectors.salesforce.sandbox.cursors import CursorStore
from connectors.salesforce.sandbox.ids import to_18

API = "/services/data/v60.0"
REDIRECT_URI = "http://localhost:3000/oauth/callback"
SOBJECTS = ("Contact", "Lead", "Account", "Opportunity", "User", "Task", "Note", "Case", "CaseComment")
KEY_PREFIXES = {"Contact": "003", "Lead": "00Q", "Account": "001", "Opportunity": "006", "User": "005"}
KEY_PREFIXES |= {"Task": "00T", "Note": "002", "Case": "500", "CaseComment": "00a"}
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SMALL = SalesforceSize(contacts=40, leads=10, accounts=8, opportunities=10, users=3, tasks=12, notes=10)


@dataclass
class Org:
    sandbox: SalesforceSandbox
    login_url: str
    instance_url: str
    api: httpx2.Client  # a session of the org's first user
    anonymous: httpx2.Client  # the instance host, no session
    login: httpx2.Client  # the login host

    def session(self, access_token: str) -> httpx2.Client:
        return httpx2.Client(base_url=self.instance_url, headers={"Authorization": f"Bearer {access_token}"})

    def query(self, soql: str, resource: str = "query", **headers: str) -> httpx2.Response:
        return self.api.get(f"{API}/{resource}", params={"q": soql}, headers=headers)

    def records(self, soql: str, resource: str = "query") -> list[dict[str, Any]]:
        records, _ = query_pages(self.api, soql, resource)
        return records


def _serve(sandbox: SalesforceSandbox) -> Iterator[Org]:
    with (
        serve_sandbox(sandbox) as (login_url, instance_url),
        httpx2.Client(base_url=login_url, follow_redirects=False) as login,
        httpx2.Client(base_url=instance_url) as anonymous,
    ):
        token = sandbox.mint_tokens()["access_token"]
        with httpx2.Client(base_url=instance_url, headers={"Authorization": f"Bearer {token}"}) as api:
            yield Org(sandbox, login_url, instance_url, api, anonymous, login)


@pytest.fixture(scope="module")
def org() -> Iterator[Org]:
    """Default-sized and read-only: tests that write use `fresh`."""
    yield from _serve(SalesforceSandbox(seed=7))


@pytest.fixture(scope="module")
def big() -> Iterator[Org]:
    yield from _serve(SalesforceSandbox(seed=3, size=SalesforceSize(contacts=4500, leads=5, accounts=20)))


@pytest.fixture
def fresh() -> Iterator[Org]:
    yield from _serve(SalesforceSandbox(seed=11, size=SMALL))


def query_pages(
    api: httpx2.Client, soql: str, resource: str = "query", headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every record of a query, following nextRecordsUrl, and the pages as they came."""
    response = api.get(f"{API}/{resource}", params={"q": soql}, headers=headers)
    pages = []
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        if pages[-1]["done"]:
            assert "nextRecordsUrl" not in pages[-1]
            return [r for page in pages for r in page["records"]], pages
        response = api.get(pages[-1]["nextRecordsUrl"], headers=headers)


def error_of(response: httpx2.Response, status: int) -> dict[str, Any]:
    """The single error of a Salesforce error body, which is always a JSON array."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1, body
    assert {"message", "errorCode"} <= body[0].keys()
    return dict(body[0])


def salesforce_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


# ---- paging -------------------------------------------------------------------------------------


def test_following_next_records_url_returns_every_record_once_in_id_order(big: Org) -> None:
    records, pages = query_pages(big.api, "SELECT Id, Name FROM Contact")
    ids = [r["Id"] for r in records]
    assert [len(page["records"]) for page in pages] == [2000, 2000, len(ids) - 4000]
    assert {page["totalSize"] for page in pages} == {len(ids)}
    assert len(ids) == len(set(ids)) and set(ids) == big.sandbox.all_ids("Contact")
    assert ids == sorted(ids)
    assert re.fullmatch(rf"{API}/query/01g\w{{15}}-2000", pages[0]["nextRecordsUrl"])
    assert records[0]["attributes"] == {"type": "Contact", "url": f"{API}/sobjects/Contact/{ids[0]}"}


@pytest.mark.parametrize(
    ("header", "page_size"),
    [("batchSize=500", 500), ("batchSize=50", 200), ("batchSize=5000", 2000)],
    ids=["honored", "raised-to-200", "capped-at-2000"],
)
def test_batch_size_header_sets_the_page_size(big: Org, header: str, page_size: int) -> None:
    headers = {"Sforce-Query-Options": header}
    records, pages = query_pages(big.api, "SELECT Id FROM Contact", headers=headers)
    assert all(len(page["records"]) == page_size for page in pages[:-1])
    assert {r["Id"] for r in records} == big.sandbox.all_ids("Contact")


def test_query_all_pages_carry_query_locators_that_both_paths_serve(big: Org) -> None:
    first = big.query("SELECT Id FROM Contact", "queryAll").json()
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    assert first["nextRecordsUrl"].startswith(f"{API}/query/")
    via_query_all = big.api.get(f"{API}/queryAll/{locator}").json()
    assert via_query_all == big.api.get(first["nextRecordsUrl"]).json()


def test_an_unknown_query_locator_is_invalid_query_locator(big: Org) -> None:
    error = error_of(big.api.get(f"{API}/query/01g8W0000000zzzQAA-2000"), 400)
    assert error["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_cursors_live_two_days() -> None:
    now = [0.0]
    cursors = CursorStore(clock=lambda: now[0])
    opened = cursors.open([["0038W0000000001QAA"]], lambda row: {"Id": row[0]}, batch_size=200)
    now[0] = 2 * 86_400 - 1
    assert cursors.get(opened.locator) is opened
    now[0] = 2 * 86_400 + 1
    assert cursors.get(opened.locator) is None


# ---- SOQL ---------------------------------------------------------------------------------------


def test_query_all_includes_recycle_bin_rows_and_query_does_not(org: Org) -> None:
    deleted = org.sandbox.all_ids("Contact", deleted=True)
    assert deleted, "the seed puts a few contacts in the Recycle Bin"
    in_bin = org.records("SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true", "queryAll")
    assert {r["Id"] for r in in_bin} == deleted and all(r["IsDeleted"] is True for r in in_bin)
    assert org.records("SELECT Id FROM Contact WHERE IsDeleted = true") == []
    everything = org.records("SELECT Id FROM Contact", "queryAll")
    assert {r["Id"] for r in everything} == org.sandbox.all_ids("Contact") | deleted


@pytest.mark.parametrize(
    "literal",
    ["2025-01-01T00:00:00Z", "2025-01-01T00:00:00.000+0000", "2025-01-01T01:00:00+01:00", "2024-12-31T19:00:00-05:00"],
    ids=["zulu", "salesforce-offset", "plus-hh-mm", "minus-hh-mm"],
)
def test_where_system_modstamp_with_a_datetime_literal_orders_by_it(org: Org, literal: str) -> None:
    every = org.records("SELECT Id, SystemModstamp FROM Contact")
    expected = sorted((r["SystemModstamp"], r["Id"]) for r in every if r["SystemModstamp"] > "2025-01-01T00:00:00.000")
    soql = f"SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp > {literal} ORDER BY SystemModstamp ASC, Id"
    found = [(r["SystemModstamp"], r["Id"]) for r in org.records(soql)]
    assert found == expected and 0 < len(found) < len(every)
    assert all(DATETIME.fullmatch(stamp) for stamp, _ in found)


def test_order_by_direction_nulls_and_limit(org: Org) -> None:
    every = org.records("SELECT Id, Title, LastName FROM Contact")
    by_title = org.records("SELECT Id, Title FROM Contact ORDER BY Title DESC NULLS FIRST, Id LIMIT 200")
    titles = [r["Title"] for r in by_title]
    nulls = sum(1 for r in every if r["Title"] is None)
    assert len(by_title) == 200 and 0 < nulls < 200 and titles[:nulls] == [None] * nulls
    named = [t.lower() for t in titles[nulls:]]
    assert named == sorted(named, reverse=True)
    by_name = org.records("SELECT Id, LastName FROM Contact ORDER BY LastName ASC, Id ASC LIMIT 25")
    expected = sorted(every, key=lambda r: (r["LastName"].lower(), r["Id"]))[:25]
    assert [r["Id"] for r in by_name] == [r["Id"] for r in expected]


def test_in_not_in_and_parenthesized_or(org: Org) -> None:
    every = org.records("SELECT Id, Loyalty_Tier__c, NPS_Score__c, Title FROM Contact")

    def ids(soql: str) -> set[str]:
        return {r["Id"] for r in org.records(soql)}

    top = {r["Id"] for r in every if r["Loyalty_Tier__c"] in ("Gold", "Platinum")}
    assert ids("SELECT Id FROM Contact WHERE Loyalty_Tier__c IN ('Gold', 'Platinum')") == top
    # As in SOQL, NOT IN and != keep rows whose field is null.
    assert (
        ids("SELECT Id FROM Contact WHERE Loyalty_Tier__c NOT IN ('Gold', 'Platinum')")
        == {r["Id"] for r in every} - top
    )
    grouped = {
        r["Id"]
        for r in every
        if (r["Loyalty_Tier__c"] == "Gold" or (r["NPS_Score__c"] or -1) >= 9) and r["Title"] is not None
    }
    soql = "SELECT Id FROM Contact WHERE (Loyalty_Tier__c = 'gold' OR NPS_Score__c >= 9) AND Title != null"
    assert ids(soql) == grouped and grouped


def test_ids_filter_in_15_and_18_character_forms(org: Org) -> None:
    first = org.records("SELECT Id FROM Contact LIMIT 1")[0]["Id"]
    for form in (first, first[:15]):
        assert [r["Id"] for r in org.records(f"SELECT Id FROM Contact WHERE Id = '{form}'")] == [first]
    assert org.records(f"SELECT Id FROM Contact WHERE AccountId = '{first}'") == []


def test_ranges_on_id_and_system_modstamp_match_a_full_scan(org: Org) -> None:
    every = org.records("SELECT Id, SystemModstamp FROM Contact")
    ids = [r["Id"] for r in every]
    after = org.records(f"SELECT Id FROM Contact WHERE Id > '{ids[99]}' ORDER BY Id ASC")
    assert [r["Id"] for r in after] == ids[100:]
    newest_first = org.records(f"SELECT Id FROM Contact WHERE Id <= '{ids[9][:15]}' ORDER BY Id DESC")
    assert [r["Id"] for r in newest_first] == ids[9::-1]
    low, high = sorted(r["SystemModstamp"] for r in every)[50], "2025-06-30T12:00:00.000+0000"
    soql = (
        f"SELECT Id FROM Contact WHERE SystemModstamp >= {low.replace('+0000', 'Z')} "
        "AND SystemModstamp < 2025-06-30T12:00:00Z AND Id != null"
    )
    expected = {r["Id"] for r in every if low <= r["SystemModstamp"] < high}
    assert {r["Id"] for r in org.records(soql)} == expected and expected


def test_a_quote_inside_a_string_literal_stays_in_the_literal(fresh: Org) -> None:
    attack = "x' OR Name != '"
    tricky = fresh.sandbox.create("Contact", {"LastName": attack})
    irish = fresh.sandbox.create("Contact", {"LastName": "O'Brien", "Title": 'Says "hi"\\bye'})

    def ids(where: str) -> list[str]:
        return [r["Id"] for r in fresh.records(f"SELECT Id FROM Contact WHERE {where}")]

    assert ids(r"LastName = 'x\' OR Name != \''") == [tricky]
    assert ids(r"LastName = 'O\'Brien'") == [irish]
    assert ids(r"Title = 'Says \"hi\"\\bye'") == [irish]
    assert ids(r"LastName = 'nobody\' OR LastName != \'nobody'") == []


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT * FROM Contact",
        "SELECT Id FROM Contact WHERE",
        "SELECT Id FROM Contact WHERE LastName = 'a' AND FirstName = 'b' OR Email = null",
        "SELECT Id FROM Contact LIMIT -1",
        "SELECT COUNT() FROM Contact",
        "SELECT Id FROM Contact WHERE LastName = 'never closed",
        "SELECT Id FROM Contact WHERE LastName = 'bad \\q escape'",
        "DELETE FROM Contact",
        "SELECT Id FROM Contact WHERE LastName LIKE 'Sm%'",
        "SELECT Id FROM Contact WHERE CreatedDate > 2024-01-01T00:00:00",
        "SELECT Id, Account.Name FROM Contact",
        "SELECT Id FROM Contact WHERE NPS_Score__c > null",
    ],
    ids=[
        "star",
        "empty-where",
        "and-or-unparenthesized",
        "negative-limit",
        "aggregate",
        "unterminated-string",
        "unknown-escape",
        "not-a-select",
        "like",
        "datetime-without-offset",
        "relationship-field",
        "ordered-null",
    ],
)
def test_outside_the_supported_soql_is_malformed_query(org: Org, soql: str) -> None:
    error = error_of(org.query(soql), 400)
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:" in error["message"]


@pytest.mark.parametrize(
    ("soql", "code", "says"),
    [
        ("SELECT Id, Nope__c FROM Contact", "INVALID_FIELD", "No such column 'Nope__c' on entity 'Contact'"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE", "sObject type 'Widget__c' is not supported"),
        ("SELECT IsDeleted FROM User", "INVALID_FIELD", "No such column 'IsDeleted' on entity 'User'"),
        ("SELECT Id FROM Contact WHERE CreatedDate > 2024-01-01", "INVALID_FIELD", "must be of type dateTime"),
        ("SELECT Id FROM Contact WHERE LastName = 5", "INVALID_FIELD", "should be enclosed in quotes"),
        ("SELECT Id FROM Contact WHERE Description = 'x'", "INVALID_FIELD", "can not be filtered"),
        ("SELECT Id FROM Contact ORDER BY Description", "INVALID_FIELD", "can not be sorted"),
        ("SELECT Id FROM Contact WHERE AccountId = 'nope'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field"),
    ],
    ids=["field", "object", "user-has-no-isdeleted", "date-for-datetime", "number-for-text", "long-text", "sort", "id"],
)
def test_unknown_names_and_mistyped_values_are_named_in_the_error(org: Org, soql: str, code: str, says: str) -> None:
    error = error_of(org.query(soql), 400)
    assert error["errorCode"] == code and says in error["message"]


def test_a_missing_query_is_malformed(org: Org) -> None:
    assert error_of(org.api.get(f"{API}/query"), 400)["errorCode"] == "MALFORMED_QUERY"


# ---- describe and discovery ---------------------------------------------------------------------


def test_describe_lists_every_field_with_custom_ones(org: Org) -> None:
    response = org.api.get(f"{API}/sobjects/Contact/describe")
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["label"], body["custom"], body["keyPrefix"]) == ("Contact", "Contact", False, "003")
    fields = {f["name"]: f for f in body["fields"]}
    record = org.records(f"SELECT {', '.join(fields)} FROM Contact LIMIT 1")[0]
    assert set(record) - {"attributes"} == set(fields)
    for field in fields.values():
        assert {"name", "type", "label", "custom", "nillable", "updateable", "createable"} <= field.keys()
    tier, nps = fields["Loyalty_Tier__c"], fields["NPS_Score__c"]
    assert tier["custom"] and tier["type"] == "picklist" and tier["restrictedPicklist"]
    assert [v["value"] for v in tier["picklistValues"]] == ["Bronze", "Silver", "Gold", "Platinum"]
    assert nps["custom"] and nps["type"] == "double"
    assert not fields["LastName"]["nillable"] and fields["LastName"]["createable"]
    assert not fields["Name"]["createable"] and not fields["Name"]["updateable"]
    assert fields["AccountId"]["referenceTo"] == ["Account"] and fields["AccountId"]["relationshipName"] == "Account"
    assert not fields["Id"]["custom"] and fields["Id"]["type"] == "id"


@pytest.mark.parametrize("sobject", SOBJECTS)
def test_every_object_describes_and_queries_with_its_key_prefix(org: Org, sobject: str) -> None:
    fields = [f["name"] for f in org.api.get(f"{API}/sobjects/{sobject}/describe").json()["fields"]]
    records = org.records(f"SELECT {', '.join(fields)} FROM {sobject}", "queryAll")
    assert records and {r["Id"] for r in records if not r.get("IsDeleted")} == org.sandbox.all_ids(sobject)
    for record in records:
        assert len(record["Id"]) == 18 and record["Id"].startswith(KEY_PREFIXES[sobject])
        assert to_18(record["Id"][:15]) == record["Id"]
        for stamp in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            assert DATETIME.fullmatch(record[stamp]) and "2023-06-01" <= record[stamp] < "2026-01-02"
        assert record["SystemModstamp"] >= record["LastModifiedDate"] >= record["CreatedDate"]


def test_seeded_relationships_point_at_the_right_objects(org: Org) -> None:
    tasks = org.records("SELECT Id, WhoId, WhatId, ActivityDate, Status, IsClosed FROM Task")
    assert all(t["WhoId"] is None or t["WhoId"][:3] in ("003", "00Q") for t in tasks)
    assert all(t["WhatId"] is None or t["WhatId"][:3] in ("001", "006") for t in tasks)
    assert all(DATE.fullmatch(t["ActivityDate"]) and t["IsClosed"] == (t["Status"] == "Completed") for t in tasks)
    notes = org.records("SELECT ParentId, Title, IsPrivate FROM Note")
    assert {n["ParentId"][:3] for n in notes} <= {"003", "001", "006"} and all(n["Title"] for n in notes)
    deals = org.records("SELECT AccountId, Amount, StageName, CloseDate, Deal_Source__c FROM Opportunity")
    assert all(DATE.fullmatch(d["CloseDate"]) and isinstance(d["Amount"], float) for d in deals)
    assert any(d["Deal_Source__c"] for d in deals)
    regions = org.records("SELECT Region__c FROM Account")
    assert {r["Region__c"] for r in regions} - {None} <= {"North America", "EMEA", "APAC", "LATAM"}


def test_global_describe_versions_and_limits(org: Org) -> None:
    listed = org.api.get(f"{API}/sobjects").json()
    # A single-currency org: the record types and its Organization, no CurrencyType.
    assert {s["name"] for s in listed["sobjects"]} == {*SOBJECTS, "Organization"}
    versions = org.anonymous.get("/services/data/")
    assert versions.status_code == 200
    listed_versions = {v["version"]: v for v in versions.json()}
    assert listed_versions["60.0"] == {"label": "Spring '24", "url": API, "version": "60.0"}
    assert listed_versions["50.0"]["label"] == "Winter '21" and listed_versions["59.0"]["label"] == "Winter '24"
    # The stock clients' defaults (simple-salesforce 59.0, jsforce 50.0) answer like v60.0.
    for version in ("59.0", "50.0"):
        assert org.api.get(f"/services/data/v{version}/sobjects").json() == listed
    assert error_of(org.api.get("/services/data/v12.0/sobjects"), 404) == {
        "errorCode": "NOT_FOUND",
        "message": "The requested resource does not exist",
    }
    limits = org.api.get(f"{API}/limits").json()
    assert limits["DailyApiRequests"]["Max"] == 15000 and 0 < limits["DailyApiRequests"]["Remaining"] < 15000
    assert all(set(limit) == {"Max", "Remaining"} for limit in limits.values())
    assert {"DailyBulkApiBatches", "DataStorageMB", "SingleEmail"} <= set(limits)


def test_same_seed_same_org() -> None:
    one, two = SalesforceSandbox(seed=5, size=SMALL), SalesforceSandbox(seed=5, size=SMALL)
    assert (one.client_id, one.client_secret, one.org_id) == (two.client_id, two.client_secret, two.org_id)
    for sobject in SOBJECTS:
        ids = sorted(one.all_ids(sobject))
        assert ids == sorted(two.all_ids(sobject))
        assert one.get(sobject, ids[0]) == two.get(sobject, ids[0])


# ---- writes -------------------------------------------------------------------------------------


def test_create_update_delete_answer_201_204_204_and_move_the_modstamp(fresh: Org) -> None:
    created = fresh.api.post(f"{API}/sobjects/Contact/", json={"LastName": "Okafor", "Loyalty_Tier__c": "Gold"})
    assert created.status_code == 201
    body = created.json()
    assert body == {"id": body["id"], "success": True, "errors": []} and body["id"].startswith("003")
    record_url = f"{API}/sobjects/Contact/{body['id']}"
    before = fresh.api.get(record_url).json()
    assert before["OwnerId"] == before["CreatedById"] == fresh.sandbox.user_ids[0]
    assert before["CreatedDate"] == before["LastModifiedDate"] == before["SystemModstamp"]

    updated = fresh.api.patch(record_url, json={"FirstName": "Ada", "NPS_Score__c": 9})
    assert updated.status_code == 204 and updated.content == b""
    after = fresh.api.get(record_url, params={"fields": "Name,NPS_Score__c,SystemModstamp,LastModifiedDate"}).json()
    assert (after["Name"], after["NPS_Score__c"]) == ("Ada Okafor", 9.0)
    assert after["SystemModstamp"] > before["SystemModstamp"] and after["LastModifiedDate"] > before["LastModifiedDate"]
    assert set(after) == {"attributes", "Name", "NPS_Score__c", "SystemModstamp", "LastModifiedDate"}

    deleted = fresh.api.delete(record_url)
    assert deleted.status_code == 204 and deleted.content == b""
    assert error_of(fresh.api.get(record_url), 404)["errorCode"] == "NOT_FOUND"
    assert error_of(fresh.api.patch(record_url, json={"FirstName": "B"}), 404)["errorCode"] == "ENTITY_IS_DELETED"
    assert body["id"] in fresh.sandbox.all_ids("Contact", deleted=True)
    in_bin = fresh.records(f"SELECT IsDeleted, SystemModstamp FROM Contact WHERE Id = '{body['id']}'", "queryAll")
    assert in_bin[0]["IsDeleted"] is True and in_bin[0]["SystemModstamp"] > after["SystemModstamp"]


def test_writes_through_python_match_the_rest_calls(fresh: Org) -> None:
    sandbox = fresh.sandbox
    account = sandbox.create("Account", {"Name": "Globex", "Region__c": "EMEA"})
    deal = sandbox.create("Opportunity", {"Name": "Globex", "StageName": "Prospecting", "CloseDate": "2025-03-01"})
    sandbox.update("Opportunity", deal, {"StageName": "Closed Won", "AccountId": account})
    won = fresh.api.get(f"{API}/sobjects/Opportunity/{deal}").json()
    assert (won["IsClosed"], won["IsWon"], won["Probability"], won["CloseDate"]) == (True, True, 100.0, "2025-03-01")
    stamps = [won["SystemModstamp"]]
    for title in ("One", "Two", "Three"):
        sandbox.update("Opportunity", deal, {"NextStep": title})
        stamps.append(sandbox.get("Opportunity", deal)["SystemModstamp"])
    assert stamps == sorted(set(stamps)), "each write moves SystemModstamp strictly forward"
    sandbox.delete("Opportunity", deal)
    assert deal in sandbox.all_ids("Opportunity", deleted=True) and deal not in sandbox.all_ids("Opportunity")
    with pytest.raises(SalesforceError) as refused:
        sandbox.create("Contact", {"FirstName": "No last name"})
    assert refused.value.error_code == "REQUIRED_FIELD_MISSING"


def test_deleting_an_account_deletes_its_contacts_and_their_activities(fresh: Org) -> None:
    sandbox = fresh.sandbox
    account = sandbox.create("Account", {"Name": "Initech"})
    contact = sandbox.create("Contact", {"LastName": "Lumbergh", "AccountId": account})
    task = sandbox.create("Task", {"WhoId": contact, "Subject": "TPS reports"})
    note = sandbox.create("Note", {"ParentId": account, "Title": "Printer"})
    assert fresh.api.delete(f"{API}/sobjects/Account/{account}").status_code == 204
    for sobject, record_id in (("Contact", contact), ("Task", task), ("Note", note)):
        assert record_id in sandbox.all_ids(sobject, deleted=True)


@pytest.mark.parametrize(
    ("sobject", "body", "code", "fields"),
    [
        ("Contact", {"FirstName": "Ada"}, "REQUIRED_FIELD_MISSING", ["LastName"]),
        ("Contact", {"LastName": None}, "REQUIRED_FIELD_MISSING", ["LastName"]),
        ("Opportunity", {"Amount": 10}, "REQUIRED_FIELD_MISSING", ["Name", "StageName", "CloseDate"]),
        ("Lead", {"LastName": "Lee"}, "REQUIRED_FIELD_MISSING", ["Company"]),
        ("Contact", {"LastName": "A", "Favorite__c": "x"}, "INVALID_FIELD", None),
        ("Contact", {"LastName": "A", "Id": "0038W0000000001QAA"}, "INVALID_FIELD", None),
        ("Contact", {"LastName": "A", "Name": "A B"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["Name"]),
        ("Contact", {"LastName": "A", "NPS_Score__c": "high"}, "JSON_PARSER_ERROR", None),
        ("Contact", {"LastName": "A", "HasOptedOutOfEmail": [True]}, "JSON_PARSER_ERROR", None),
        ("Opportunity", {"Name": "D", "StageName": "Prospecting", "CloseDate": "soon"}, "JSON_PARSER_ERROR", None),
        ("Contact", {"LastName": "A", "Loyalty_Tier__c": "Diamond"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", None),
        ("Contact", {"LastName": "A", "Email": "not-an-address"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
        ("Contact", {"LastName": "A" * 81}, "STRING_TOO_LONG", ["LastName"]),
        ("Contact", {"LastName": "A", "AccountId": "0038W0000000001QAA"}, "MALFORMED_ID", ["AccountId"]),
        ("Contact", {"LastName": "A", "AccountId": "0018W00000zzzzzQAA"}, "INVALID_CROSS_REFERENCE_KEY", None),
    ],
    ids=[
        "required",
        "required-null",
        "opportunity-required",
        "lead-company",
        "unknown-field",
        "id-in-body",
        "read-only",
        "string-for-double",
        "array-for-boolean",
        "bad-date",
        "restricted-picklist",
        "email",
        "too-long",
        "wrong-id-type",
        "missing-parent",
    ],
)
def test_invalid_creates_are_refused_and_write_nothing(
    org: Org, sobject: str, body: dict[str, Any], code: str, fields: list[str] | None
) -> None:
    before = org.sandbox.all_ids(sobject)
    error = error_of(org.api.post(f"{API}/sobjects/{sobject}", json=body), 400)
    assert error["errorCode"] == code, error
    if fields is not None:
        assert error["fields"] == fields
    assert org.sandbox.all_ids(sobject) == before


def test_malformed_json_and_unknown_records_and_objects(org: Org) -> None:
    sent = org.api.post(f"{API}/sobjects/Contact", content=b"{not json", headers={"Content-Type": "application/json"})
    assert error_of(sent, 400)["errorCode"] == "JSON_PARSER_ERROR"
    missing = error_of(org.api.get(f"{API}/sobjects/Contact/0038W00000zzzzzQAA"), 404)
    assert missing == {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    not_an_id = error_of(org.api.get(f"{API}/sobjects/Contact/banana"), 404)
    assert "Provided external ID field does not exist" in not_an_id["message"]
    assert error_of(org.api.get(f"{API}/sobjects/Widget__c/describe"), 404)["errorCode"] == "NOT_FOUND"
    user = org.sandbox.user_ids[0]
    refused = error_of(org.api.delete(f"{API}/sobjects/User/{user}"), 405)
    assert refused["errorCode"] == "METHOD_NOT_ALLOWED"
    put = error_of(org.api.put(f"{API}/sobjects/Contact"), 405)
    assert put["message"] == "HTTP Method 'PUT' not allowed. Allowed are GET,HEAD,POST"


# ---- replication feeds --------------------------------------------------------------------------


def test_get_deleted_and_get_updated_cover_the_window_minute_by_minute(fresh: Org) -> None:
    sandbox = fresh.sandbox
    before = datetime.now(UTC)
    start = before - timedelta(minutes=5)
    victims = sorted(sandbox.all_ids("Lead"))[:2]
    for victim in victims:
        sandbox.delete("Lead", victim)
    survivor = sorted(sandbox.all_ids("Lead"))[0]
    sandbox.update("Lead", survivor, {"Rating": "Hot"})
    window = {"start": start.isoformat(timespec="seconds"), "end": (start + timedelta(hours=1)).isoformat()}

    # Seconds are ignored and the current minute is not covered yet...
    early = fresh.api.get(f"{API}/sobjects/Lead/deleted/", params=window).json()
    this_minute = datetime.now(UTC).replace(second=0, microsecond=0)
    if before.replace(second=0, microsecond=0) == this_minute:
        assert early["deletedRecords"] == []
        assert early["latestDateCovered"] == salesforce_datetime(this_minute)

    # ...until it has passed.
    sandbox.org.now = lambda: int((time.time() + 120) * 1000)
    deleted = fresh.api.get(f"{API}/sobjects/Lead/deleted/", params=window).json()
    assert sorted(d["id"] for d in deleted["deletedRecords"]) == victims
    assert all(DATETIME.fullmatch(d["deletedDate"]) for d in deleted["deletedRecords"])
    assert DATETIME.fullmatch(deleted["earliestDateAvailable"]) and DATETIME.fullmatch(deleted["latestDateCovered"])
    updated = fresh.api.get(f"{API}/sobjects/Lead/updated", params=window).json()
    assert updated["ids"] == [survivor] and DATETIME.fullmatch(updated["latestDateCovered"])


def test_seeded_recycle_bin_rows_are_in_the_delete_log(org: Org) -> None:
    in_bin = org.records("SELECT Id, SystemModstamp FROM Contact WHERE IsDeleted = true", "queryAll")
    latest = max(in_bin, key=lambda r: r["SystemModstamp"])
    deleted_at = datetime.strptime(latest["SystemModstamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
    window = {
        "start": (deleted_at - timedelta(days=1)).isoformat(),
        "end": (deleted_at + timedelta(days=1)).isoformat(),
    }
    real_now = org.sandbox.org.now
    org.sandbox.org.now = lambda: int((deleted_at + timedelta(days=2)).timestamp() * 1000)
    try:
        deleted = org.api.get(f"{API}/sobjects/Contact/deleted", params=window).json()["deletedRecords"]
    finally:
        org.sandbox.org.now = real_now
    assert {"id": latest["Id"], "deletedDate": latest["SystemModstamp"]} in deleted


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"start": "2020-01-01T00:00:00+00:00", "end": "2020-01-02T00:00:00+00:00"}, "INVALID_REPLICATION_DATE"),
        ({"start": "{now}", "end": "{now}"}, "INVALID_REPLICATION_DATE"),
        ({"start": "yesterday", "end": "{now}"}, "INVALID_REPLICATION_DATE"),
        ({"end": "{now}"}, "MISSING_ARGUMENT"),
    ],
    ids=["older-than-15-days", "empty-window", "unparseable", "missing-start"],
)
def test_bad_replication_windows_are_refused(org: Org, params: dict[str, str], code: str) -> None:
    now = datetime.now(UTC).isoformat()
    sent = {name: value.format(now=now) for name, value in params.items()}
    assert error_of(org.api.get(f"{API}/sobjects/Contact/deleted", params=sent), 400)["errorCode"] == code


# ---- OAuth on the login host --------------------------------------------------------------------


def _authorize(org: Org, verifier: str | None, decision: str = "allow", scope: str = "api refresh_token") -> str:
    params = {
        "response_type": "code",
        "client_id": org.sandbox.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": "opaque-state",
    }
    if verifier is not None:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    page = org.login.get("/services/oauth2/authorize", params=params)
    assert page.status_code == 200 and "Allow" in page.text and "Deny" in page.text
    decided = org.login.post("/services/oauth2/authorize", data={**params, "decision": decision})
    assert decided.status_code == 302
    return decided.headers["location"]


def _token(org: Org, **form: str) -> httpx2.Response:
    credentials = {"client_id": org.sandbox.client_id, "client_secret": org.sandbox.client_secret}
    return org.login.post("/services/oauth2/token", data={**credentials, **form})


def test_code_flow_with_pkce_hands_out_a_session_for_the_instance_host(fresh: Org) -> None:
    verifier = secrets.token_urlsafe(48)
    redirect = _authorize(fresh, verifier)
    assert redirect.startswith(REDIRECT_URI)
    query = parse_qs(urlsplit(redirect).query)
    assert query["state"] == ["opaque-state"]
    code = query["code"][0]
    exchanged = _token(
        fresh, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier
    )
    assert exchanged.status_code == 200, exchanged.text
    tokens = exchanged.json()
    assert set(tokens) == {
        "access_token",
        "refresh_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "api refresh_token"
    assert tokens["instance_url"] == fresh.instance_url
    assert urlsplit(tokens["instance_url"]).hostname != urlsplit(fresh.login_url).hostname
    assert tokens["id"].startswith(f"{fresh.login_url}/id/{fresh.sandbox.org_id}/")
    signed = hmac.new(fresh.sandbox.client_secret.encode(), (tokens["id"] + tokens["issued_at"]).encode(), "sha256")
    assert base64.b64decode(tokens["signature"]) == signed.digest()
    with fresh.session(tokens["access_token"]) as api:
        assert api.get(f"{API}/sobjects/Contact/describe").status_code == 200
    identity = fresh.login.get(
        urlsplit(tokens["id"]).path, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert identity.json()["organization_id"] == fresh.sandbox.org_id
    replayed = _token(
        fresh, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier
    )
    assert replayed.json() == {"error": "invalid_grant", "error_description": "invalid authorization code"}


def test_pkce_verifier_must_match_and_deny_redirects_with_access_denied(fresh: Org) -> None:
    code = parse_qs(urlsplit(_authorize(fresh, "the-real-verifier-" + "x" * 30)).query)["code"][0]
    wrong = _token(fresh, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, code_verifier="no")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    denied = parse_qs(urlsplit(_authorize(fresh, None, decision="deny")).query)
    assert denied["error"] == ["access_denied"] and denied["state"] == ["opaque-state"]


def test_without_offline_scope_there_is_no_refresh_token(fresh: Org) -> None:
    code = parse_qs(urlsplit(_authorize(fresh, None, scope="api")).query)["code"][0]
    tokens = _token(fresh, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI).json()
    assert "access_token" in tokens and "refresh_token" not in tokens


def test_the_token_endpoint_lives_on_the_login_host_only(fresh: Org) -> None:
    on_instance = fresh.anonymous.post("/services/oauth2/token", data={"grant_type": "refresh_token"})
    assert on_instance.status_code == 404


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"client_id": "3MVG9unknown"}, ("invalid_client_id", "client identifier invalid")),
        ({"client_secret": "wrong"}, ("invalid_client", "invalid client credentials")),
        ({"grant_type": "password"}, ("unsupported_grant_type", "grant type not supported")),
        ({"refresh_token": "5Aep861made-up"}, ("invalid_grant", "expired access/refresh token")),
    ],
    ids=["unknown-client", "wrong-secret", "password-grant", "unknown-refresh-token"],
)
def test_token_errors_speak_salesforce(org: Org, form: dict[str, str], error: tuple[str, str]) -> None:
    refresh = org.sandbox.mint_tokens()["refresh_token"]
    answered = _token(org, **{"grant_type": "refresh_token", "refresh_token": refresh, **form})
    assert answered.status_code == 400
    assert answered.json() == {"error": error[0], "error_description": error[1]}


def test_refresh_keeps_the_refresh_token_unless_rotation_is_on(fresh: Org) -> None:
    minted = fresh.sandbox.mint_tokens()
    for _ in range(2):
        refreshed = _token(fresh, grant_type="refresh_token", refresh_token=minted["refresh_token"]).json()
        assert "refresh_token" not in refreshed and "expires_in" not in refreshed
        assert refreshed["access_token"] != minted["access_token"]
        assert refreshed["instance_url"] == fresh.instance_url
    assert fresh.sandbox.stats.token_refreshes == 2

    fresh.sandbox.faults.rotate_refresh_tokens = True
    rotated = _token(fresh, grant_type="refresh_token", refresh_token=minted["refresh_token"]).json()
    assert rotated["refresh_token"] != minted["refresh_token"]
    stale = _token(fresh, grant_type="refresh_token", refresh_token=minted["refresh_token"])
    assert stale.json()["error"] == "invalid_grant"
    assert "access_token" in _token(fresh, grant_type="refresh_token", refresh_token=rotated["refresh_token"]).json()


def test_a_revoked_refresh_token_is_invalid_grant(fresh: Org) -> None:
    minted = fresh.sandbox.mint_tokens()
    fresh.sandbox.revoke_refresh_token(minted["refresh_token"])
    refused = _token(fresh, grant_type="refresh_token", refresh_token=minted["refresh_token"])
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")


def test_expired_or_missing_sessions_are_401_invalid_session_id(fresh: Org) -> None:
    assert fresh.api.get(f"{API}/sobjects").status_code == 200
    assert fresh.sandbox.expire_sessions() >= 1
    expired = error_of(fresh.api.get(f"{API}/sobjects"), 401)
    assert expired == {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    assert error_of(fresh.anonymous.get(f"{API}/sobjects"), 401)["errorCode"] == "INVALID_SESSION_ID"

    fresh.sandbox.faults.session_lifetime_s = 0
    born_dead = fresh.sandbox.mint_tokens()["access_token"]
    headers = {"Authorization": f"Bearer {born_dead}"}
    assert error_of(fresh.anonymous.get(f"{API}/sobjects", headers=headers), 401)["errorCode"] == "INVALID_SESSION_ID"

    fresh.sandbox.faults.session_lifetime_s = 7200
    no_api = fresh.sandbox.mint_tokens(["refresh_token"])["access_token"]
    headers = {"Authorization": f"Bearer {no_api}"}
    refused = error_of(fresh.anonymous.get(f"{API}/sobjects", headers=headers), 401)
    assert refused["message"] == "This session is not valid for use with the REST API"


# ---- limits, faults and counters ----------------------------------------------------------------


def test_every_response_carries_sforce_limit_info_and_each_call_counts(fresh: Org) -> None:
    responses = [
        fresh.api.get(f"{API}/sobjects/Contact/describe"),
        fresh.query("SELECT Nope FROM Contact"),
        fresh.api.get(f"{API}/sobjects/Contact/0038W00000zzzzzQAA"),
        fresh.api.put(f"{API}/sobjects/Contact"),
        fresh.api.get(f"{API}/limits"),
    ]
    usage = [int(r.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/")[0]) for r in responses]
    assert [r.status_code for r in responses] == [200, 400, 404, 405, 200]
    assert usage == list(range(usage[0], usage[0] + 5))
    assert all(r.headers["Sforce-Limit-Info"].endswith("/15000") for r in responses)
    unauthorized = fresh.anonymous.get(f"{API}/sobjects")
    assert unauthorized.status_code == 401 and unauthorized.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_a_used_up_daily_allocation_is_403_request_limit_exceeded(fresh: Org) -> None:
    fresh.sandbox.faults.daily_api_limit = fresh.sandbox.usage.used() + 2
    assert [fresh.api.get(f"{API}/sobjects").status_code for _ in range(2)] == [200, 200]
    over = fresh.api.get(f"{API}/sobjects")
    assert error_of(over, 403) == {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    assert over.headers["Sforce-Limit-Info"] == f"api-usage={fresh.sandbox.usage.used()}/{fresh.sandbox.usage.used()}"
    fresh.sandbox.faults.daily_limit_enabled = False
    assert fresh.api.get(f"{API}/sobjects").status_code == 200


def test_fault_knobs_over_http(fresh: Org) -> None:
    control = fresh.anonymous
    assert control.patch("/_sandbox/faults", json={"rate_403": 1.0}).json()["rate_403"] == 1.0
    throttled = error_of(fresh.api.get(f"{API}/sobjects"), 403)
    assert throttled["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    control.patch("/_sandbox/faults", json={"rate_403": 0.0, "rate_5xx": 1.0})
    assert error_of(fresh.api.get(f"{API}/sobjects"), 503)["errorCode"] == "SERVER_UNAVAILABLE"
    control.patch("/_sandbox/faults", json={"rate_5xx": 0.0, "latency_ms": 150})
    started = time.monotonic()
    assert fresh.api.get(f"{API}/limits").status_code == 200
    assert time.monotonic() - started >= 0.15
    refused = control.patch("/_sandbox/faults", json={"rate_403": 2})
    assert refused.status_code == 400 and control.get("/_sandbox/faults").json()["latency_ms"] == 150


def test_control_routes_mint_sessions_count_requests_and_end_sessions(fresh: Org) -> None:
    control = fresh.anonymous
    minted = control.post("/_sandbox/tokens").json()
    assert minted["instance_url"] == fresh.instance_url
    contact = sorted(fresh.sandbox.all_ids("Contact"))[0]
    with fresh.session(minted["access_token"]) as api:
        assert api.get(f"{API}/sobjects/Contact/{contact}/").status_code == 200
        assert api.get(f"{API}/query/", params={"q": "SELECT Id FROM Lead"}).status_code == 200
        stats = control.get("/_sandbox/stats").json()
        assert stats["requests"][f"GET {API}/sobjects/{{sobject}}/{{record_id}}"] == 1
        assert stats["requests"][f"GET {API}/query"] == 1 and stats["api_usage"] == 2
        assert control.post("/_sandbox/expire-sessions").json()["expired"] >= 1
        assert api.get(f"{API}/limits").status_code == 401
