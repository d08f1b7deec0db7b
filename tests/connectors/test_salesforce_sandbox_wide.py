"""The sandbox as wide orgs meet Salesforce: Composite for long queries, the SOQL length limit,
refused parameters, and the identity services (userinfo, identity URL templates)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox

API = "/services/data/v60.0"
SIZE = SalesforceSize(contacts=30, leads=2, accounts=3, opportunities=2, users=2, tasks=2, notes=2, contact_fields=500)


@pytest.fixture(scope="module")
def org() -> Iterator[tuple[SalesforceSandbox, httpx2.Client, str]]:
    sandbox = SalesforceSandbox(seed=12, size=SIZE)
    with serve_sandbox(sandbox) as (login_url, instance_url):
        token = sandbox.mint_tokens()["access_token"]
        with httpx2.Client(base_url=instance_url, headers={"Authorization": f"Bearer {token}"}) as api:
            yield sandbox, api, login_url


def _composite(api: httpx2.Client, *subrequests: dict[str, Any], all_or_none: bool = False) -> httpx2.Response:
    return api.post(f"{API}/composite", json={"allOrNone": all_or_none, "compositeRequest": list(subrequests)})


def _query(ref: str, soql: str, resource: str = "query") -> dict[str, Any]:
    return {"method": "GET", "url": f"{API}/{resource}?{httpx2.QueryParams({'q': soql})}", "referenceId": ref}


def test_composite_runs_a_query_too_long_for_a_url_as_one_api_call(
    org: tuple[SalesforceSandbox, httpx2.Client, str],
) -> None:
    sandbox, api, _ = org
    fields = ", ".join(f.name for f in sandbox.org.schema.sobjects["Contact"].fields)
    soql = f"SELECT {fields} FROM Contact ORDER BY Id"
    used = sandbox.usage.used()
    answer = _composite(
        api, _query("all", soql), _query("deleted", "SELECT Id FROM Contact WHERE IsDeleted = true", "queryAll")
    )
    assert answer.status_code == 200 and sandbox.usage.used() == used + 1
    first, deleted = answer.json()["compositeResponse"]
    assert first["httpStatusCode"] == 200 and first["referenceId"] == "all" and first["httpHeaders"] == {}
    direct = api.post(f"{API}/composite", json={"compositeRequest": [_query("again", soql)]}).json()
    assert (
        first["body"]["totalSize"]
        == len(sandbox.all_ids("Contact"))
        == direct["compositeResponse"][0]["body"]["totalSize"]
    )
    record = first["body"]["records"][0]
    assert len(record) == 501 and record == {"attributes": record["attributes"], **sandbox.get("Contact", record["Id"])}
    assert {r["Id"] for r in deleted["body"]["records"]} == sandbox.all_ids("Contact", deleted=True)


def test_composite_pages_through_a_cursor_and_refuses_what_it_does_not_serve(
    org: tuple[SalesforceSandbox, httpx2.Client, str],
) -> None:
    _, api, _ = org
    paged = _composite(
        api, {**_query("p", "SELECT Id FROM Contact"), "httpHeaders": {"Sforce-Query-Options": "batchSize=200"}}
    )
    body = paged.json()["compositeResponse"][0]["body"]
    assert body["done"] is True  # 30 contacts fit one batch of 200
    answer = _composite(
        api,
        _query("good", "SELECT Id FROM Contact"),
        _query("bad", "SELECT Nope__c FROM Contact"),
        {"method": "POST", "url": f"{API}/sobjects/Contact", "referenceId": "write", "body": {"LastName": "X"}},
        {"method": "GET", "url": f"{API}/nowhere", "referenceId": "missing"},
        all_or_none=True,
    ).json()["compositeResponse"]
    by_ref = {result["referenceId"]: result for result in answer}
    assert by_ref["bad"]["httpStatusCode"] == 400 and by_ref["bad"]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert by_ref["write"]["httpStatusCode"] == 400 and by_ref["write"]["body"][0]["errorCode"] == "INVALID_API_INPUT"
    assert by_ref["missing"]["httpStatusCode"] == 404 and by_ref["missing"]["body"][0]["errorCode"] == "NOT_FOUND"
    # With allOrNone, the subrequest that succeeded is rolled back too.
    assert by_ref["good"]["httpStatusCode"] == 400 and by_ref["good"]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    six = _composite(api, *(_query(f"q{i}", "SELECT Id FROM Contact") for i in range(6)))
    assert six.status_code == 400 and six.json()[0]["errorCode"] == "INVALID_API_INPUT"
    assert api.post(f"{API}/composite", json={"compositeRequest": [], "extra": 1}).status_code == 400
    assert api.post(f"{API}/composite", content=b"{nope").json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_a_soql_statement_over_100000_characters_is_malformed(
    org: tuple[SalesforceSandbox, httpx2.Client, str],
) -> None:
    _, api, _ = org
    ids = ", ".join(["'003000000000001AAA'"] * 5_000)
    soql = f"SELECT Id FROM Contact WHERE Id IN ({ids})"
    assert len(soql) > 100_000
    answer = _composite(api, _query("long", soql)).json()["compositeResponse"][0]
    assert answer["httpStatusCode"] == 400
    assert answer["body"] == [
        {"message": "SOQL statements cannot be longer than 100000 characters", "errorCode": "MALFORMED_QUERY"}
    ]


def test_parameters_the_api_does_not_take_are_refused_not_ignored(
    org: tuple[SalesforceSandbox, httpx2.Client, str],
) -> None:
    _, api, _ = org
    for path, params in (
        (f"{API}/query", {"q": "SELECT Id FROM Contact", "explain": "true"}),
        (f"{API}/sobjects/Contact/describe", {"fields": "Id"}),
        (f"{API}/limits", {"verbose": "1"}),
    ):
        answer = api.get(path, params=params)
        assert answer.status_code == 400, path
        assert answer.json()[0]["errorCode"] == "INVALID_API_INPUT"


def test_userinfo_and_identity_speak_openid_connect_and_salesforce(
    org: tuple[SalesforceSandbox, httpx2.Client, str],
) -> None:
    sandbox, _, login_url = org
    tokens = sandbox.mint_tokens()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    for base in (login_url, sandbox.instance_url):
        info = httpx2.get(f"{base}/services/oauth2/userinfo", headers=headers).json()
        assert info["sub"] == tokens["id"] and info["organization_id"] == sandbox.org_id
        assert {"preferred_username", "email", "given_name", "family_name", "zoneinfo", "updated_at"} <= set(info)
        assert info["urls"]["rest"] == f"{sandbox.instance_url}/services/data/v{{version}}/"
    identity = httpx2.get(tokens["id"], headers=headers).json()
    assert identity["user_id"] == tokens["id"].rsplit("/", 1)[1] and "{version}" in identity["urls"]["query"]
    refused = httpx2.get(f"{login_url}/services/oauth2/userinfo", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 403 and refused.text == "Bad_OAuth_Token"


def test_the_wide_contact_describes_compound_addresses_and_custom_fields(
    org: tuple[SalesforceSandbox, httpx2.Client, str],
) -> None:
    _, api, _ = org
    fields = {f["name"]: f for f in api.get(f"{API}/sobjects/Contact/describe").json()["fields"]}
    assert len(fields) == 500
    assert fields["MailingAddress"]["type"] == "address" and not fields["MailingAddress"]["createable"]
    assert fields["MailingStreet"]["compoundFieldName"] == "MailingAddress"
    assert fields["OtherLatitude"]["compoundFieldName"] == "OtherAddress"
    custom = [f for f in fields.values() if f["custom"]]
    assert len(custom) > 400 and all(len(f["name"].removesuffix("__c").split("__")[-1]) <= 40 for f in custom)
    assert {f["type"] for f in custom} >= {"picklist", "double", "date", "email", "textarea", "boolean", "currency"}
    refused = api.get(f"{API}/query", params={"q": "SELECT Id FROM Contact WHERE MailingAddress = null"})
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_FIELD"
    some_id = api.get(f"{API}/query", params={"q": "SELECT Id FROM Contact LIMIT 1"}).json()["records"][0]["Id"]
    written = api.patch(f"{API}/sobjects/Contact/{some_id}", json={"MailingAddress": {"city": "X"}})
    assert written.status_code == 400 and written.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
