"""simple-salesforce (pinned in the dev dependencies), the stock Python client for Salesforce's REST
API, drives the sandbox through what our connector calls and what a user of the sandbox would call:
SOQL with its cursors, describe, sObject rows, the replication feeds, limits and the version list.
Every call must answer as Salesforce would, or fail with the client's own exception for the status
Salesforce would send."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import (
    Salesforce,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.api import DEFAULT_API_VERSION

from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox

SANDBOX_VERSION = "60.0"
# Salesforce never returns fewer than 200 rows a batch when a query asks for a smaller one.
SMALLEST_BATCH = {"Sforce-Query-Options": "batchSize=200"}


class PlainHttpAdapter(HTTPAdapter):
    """simple-salesforce builds every URL as https://{instance}; the sandbox serves plain HTTP on
    127.0.0.1, so this adapter, mounted for the sandbox's host only, sends the same request over http."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        assert request.url is not None
        request.url = "http://" + request.url.removeprefix("https://")
        return super().send(request, **kwargs)


@dataclass
class Org:
    sandbox: SalesforceSandbox
    login_url: str
    instance_url: str
    http: requests.Session

    def client(self, session_id: str | None = None, version: str = SANDBOX_VERSION) -> Salesforce:
        token = session_id if session_id is not None else self.sandbox.mint_tokens()["access_token"]
        return Salesforce(instance_url=self.instance_url, session_id=token, version=version, session=self.http)

    @contextmanager
    def later(self, minutes: int) -> Iterator[None]:
        """Let the org's clock run `minutes` ahead, so the replication feeds cover this minute."""
        real_now = self.sandbox.org.now
        self.sandbox.org.now = lambda: int((time.time() + minutes * 60) * 1000)
        try:
            yield
        finally:
            self.sandbox.org.now = real_now


@pytest.fixture(scope="module")
def org() -> Iterator[Org]:
    sandbox = SalesforceSandbox(seed=11, size=SalesforceSize(contacts=450, leads=20, accounts=20, opportunities=20))
    with serve_sandbox(sandbox) as (login_url, instance_url):
        http = requests.Session()
        http.mount(instance_url.replace("http://", "https://", 1), PlainHttpAdapter())
        yield Org(sandbox, login_url, instance_url, http)
        http.close()


@pytest.fixture
def sf(org: Org) -> Salesforce:
    return org.client()


# ---- SOQL ----------------------------------------------------------------------------------------


def test_query_pages_with_next_records_url_and_query_more(org: Org, sf: Salesforce) -> None:
    live = org.sandbox.all_ids("Contact")
    first = sf.query("SELECT Id, LastName FROM Contact ORDER BY Id", headers=SMALLEST_BATCH)
    assert first["totalSize"] == len(live) > 400 and first["done"] is False and len(first["records"]) == 200
    assert first["records"][0]["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v{SANDBOX_VERSION}/sobjects/Contact/{first['records'][0]['Id']}",
    }
    by_url = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=SMALLEST_BATCH)
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    by_locator = sf.query_more(locator, headers=SMALLEST_BATCH)
    assert by_url["records"] == by_locator["records"] and len(by_url["records"]) == 200

    ids = [record["Id"] for record in sf.query_all_iter("SELECT Id FROM Contact ORDER BY Id", headers=SMALLEST_BATCH)]
    assert ids == sorted(live) and ids[:200] == [record["Id"] for record in first["records"]]
    everything = sf.query_all("SELECT Id, IsDeleted FROM Contact", include_deleted=True, headers=SMALLEST_BATCH)
    in_bin = {r["Id"] for r in everything["records"] if r["IsDeleted"]}
    assert in_bin == org.sandbox.all_ids("Contact", deleted=True) and in_bin
    assert everything["totalSize"] == len(live) + len(in_bin)


def test_a_malformed_query_raises_malformed_request(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as unknown_field:
        sf.query("SELECT Shoe_Size__c FROM Contact")
    assert unknown_field.value.status == 400 and unknown_field.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as unknown_object:
        sf.query("SELECT Id FROM Spaceship__c")
    assert unknown_object.value.content[0]["errorCode"] == "INVALID_TYPE"
    with pytest.raises(SalesforceMalformedRequest) as unknown_cursor:
        sf.query_more("01gNOTACURSOR-2000")
    assert unknown_cursor.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


# ---- describe -------------------------------------------------------------------------------------


def test_describe_lists_sobjects_and_describes_contact(sf: Salesforce) -> None:
    sobjects = {s["name"]: s for s in sf.describe()["sobjects"]}
    assert {"Contact", "Lead", "Account", "Opportunity", "User", "Task"} <= set(sobjects)
    assert sobjects["Contact"]["keyPrefix"] == "003" and sobjects["Contact"]["queryable"] is True

    described = sf.Contact.describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert described["name"] == "Contact" and {"Id", "LastName", "Email", "SystemModstamp", "IsDeleted"} <= set(fields)
    assert fields["Email"]["type"] == "email" and fields["LastName"]["nillable"] is False
    metadata = sf.Contact.metadata()
    assert metadata["objectDescribe"]["name"] == "Contact" and metadata["recentItems"] == []
    with pytest.raises(SalesforceResourceNotFound):
        sf.Spaceship__c.describe()


# ---- rows --------------------------------------------------------------------------------------


def test_create_get_update_and_delete_a_contact(org: Org, sf: Salesforce) -> None:
    created = sf.Contact.create({"LastName": "Sdk", "FirstName": "Simple", "Email": "simple.sdk@example.org"})
    assert created["success"] is True and created["errors"] == [] and created["id"].startswith("003")
    record = sf.Contact.get(created["id"])
    assert record["Name"] == "Simple Sdk" and record["Email"] == "simple.sdk@example.org"
    assert record["attributes"]["type"] == "Contact"

    assert sf.Contact.update(created["id"], {"Title": "Engineer"}) == 204
    assert sf.Contact.get(created["id"])["Title"] == "Engineer"
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.Contact.create({"LastName": "Twin", "Email": "SIMPLE.sdk@example.org"})
    assert duplicate.value.content[0]["errorCode"] == "DUPLICATES_DETECTED"
    with pytest.raises(SalesforceMalformedRequest) as unknown_field:
        sf.Contact.create({"LastName": "Odd", "Shoe_Size__c": 9})
    assert unknown_field.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as missing_required:
        sf.Contact.create({"FirstName": "Nameless"})
    assert missing_required.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"

    assert sf.Contact.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(created["id"])
    with pytest.raises(SalesforceResourceNotFound) as update_deleted:
        sf.Contact.update(created["id"], {"Title": "Gone"})
    assert update_deleted.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert created["id"] in org.sandbox.all_ids("Contact", deleted=True)


def test_get_updated_and_get_deleted_cover_a_window_once_its_minute_has_passed(org: Org, sf: Salesforce) -> None:
    start = datetime.now(UTC) - timedelta(minutes=2)
    changed = sf.Contact.create({"LastName": "Changed"})["id"]
    removed = sf.Contact.create({"LastName": "Removed"})["id"]
    sf.Contact.update(changed, {"Title": "Changed again"})
    sf.Contact.delete(removed)
    end = start + timedelta(minutes=10)
    with org.later(minutes=2):
        updated = sf.Contact.updated(start, end)
        deleted = sf.Contact.deleted(start, end)
    assert changed in updated["ids"] and removed not in updated["ids"]
    assert removed in {d["id"] for d in deleted["deletedRecords"]}
    assert {"earliestDateAvailable", "latestDateCovered"} <= set(deleted)
    with pytest.raises(SalesforceMalformedRequest) as too_short:
        sf.Contact.updated(start, start)
    assert too_short.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"


# ---- sessions, limits and versions ------------------------------------------------------------------


def test_refresh_token_grant_gives_a_session_the_client_can_use(org: Org) -> None:
    tokens = org.sandbox.mint_tokens()
    app = {"client_id": org.sandbox.client_id, "client_secret": org.sandbox.client_secret}
    org.sandbox.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as expired:
        org.client(tokens["access_token"]).query("SELECT Id FROM Contact LIMIT 1")
    assert expired.value.status == 401 and expired.value.content[0]["errorCode"] == "INVALID_SESSION_ID"

    # simple-salesforce has no refresh call: this is the documented POST any client makes.
    grant = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **app}
    refreshed = requests.post(f"{org.login_url}/services/oauth2/token", data=grant, timeout=10)
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert "refresh_token" not in body and body["instance_url"] == org.instance_url
    again = Salesforce(
        instance_url=body["instance_url"], session_id=body["access_token"], version=SANDBOX_VERSION, session=org.http
    )
    assert again.query("SELECT Id FROM Contact LIMIT 1")["totalSize"] == 1

    revoked = {**grant, "refresh_token": "5Aep861NotAToken"}
    refused = requests.post(f"{org.login_url}/services/oauth2/token", data=revoked, timeout=10)
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}


def test_limits_and_the_usage_header_agree(sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Contact LIMIT 1")
    limits = sf.limits()
    daily = limits["DailyApiRequests"]
    assert daily["Max"] > daily["Remaining"] >= 0
    usage = sf.api_usage["api-usage"]
    assert usage.total == daily["Max"] and usage.used >= daily["Max"] - daily["Remaining"]


def test_the_version_resources_name_the_api_roots(sf: Salesforce) -> None:
    resources = sf.restful("")
    assert resources["sobjects"] == f"/services/data/v{SANDBOX_VERSION}/sobjects"
    assert resources["query"] == f"/services/data/v{SANDBOX_VERSION}/query"
    # simple-salesforce has no call for the version list; restful resolves "../" against its versioned base URL.
    versions = sf.restful("../")
    assert {"label", "url", "version"} <= set(versions[0])
    assert SANDBOX_VERSION in {v["version"] for v in versions}


def test_the_clients_default_version_is_served(org: Org) -> None:
    default = Salesforce(
        instance_url=org.instance_url, session_id=org.sandbox.mint_tokens()["access_token"], session=org.http
    )
    assert default.sf_version == DEFAULT_API_VERSION
    assert DEFAULT_API_VERSION in {v["version"] for v in default.restful("../")}
    assert default.query("SELECT Id FROM Contact LIMIT 1")["totalSize"] == 1
    assert default.Contact.describe()["name"] == "Contact"


def test_an_unserved_version_is_not_found(org: Org) -> None:
    ancient = org.client(version="20.0")
    with pytest.raises(SalesforceResourceNotFound) as missing:
        ancient.query("SELECT Id FROM Contact LIMIT 1")
    assert missing.value.status == 404 and missing.value.content[0]["errorCode"] == "NOT_FOUND"
