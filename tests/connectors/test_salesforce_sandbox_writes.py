"""Salesforce sandbox write rules beyond field validation, driven over real HTTP: the standard
duplicate rules on Contact and Lead, and Opportunity.ContactId (the primary contact)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.salesforce.sandbox import SalesforceError, SalesforceSandbox
from tests.connectors.test_salesforce_sandbox import API, SMALL, Org, _serve, error_of

DUPLICATE_MESSAGE = "You're creating a duplicate record. We recommend you use an existing record instead."
DUPLICATE_RULE_HEADER = "Sforce-Duplicate-Rule-Header"
DEAL = {"Name": "Primary contact deal", "StageName": "Prospecting", "CloseDate": "2026-03-01"}


@pytest.fixture(scope="module")
def org() -> Iterator[Org]:
    """Default-sized and read-only: tests that write use `fresh`."""
    yield from _serve(SalesforceSandbox(seed=7))


@pytest.fixture
def fresh() -> Iterator[Org]:
    yield from _serve(SalesforceSandbox(seed=11, size=SMALL))


def duplicate_error(sobject: str, existing: list[str]) -> dict[str, Any]:
    rules = {
        "Contact": ("Standard_Contact_Duplicate_Rule", "Standard_Contact_Match_Rule_v1_1"),
        "Lead": ("Standard_Lead_Duplicate_Rule", "Standard_Lead_Match_Rule_v1_0"),
    }
    duplicate_rule, match_rule = rules[sobject]
    return {
        "message": DUPLICATE_MESSAGE,
        "errorCode": "DUPLICATES_DETECTED",
        "fields": [],
        "duplicateResult": {
            "allowSave": False,
            "duplicateRule": duplicate_rule,
            "duplicateRuleEntityType": sobject,
            "errorMessage": DUPLICATE_MESSAGE,
            "matchResults": [
                {
                    "entityType": sobject,
                    "errors": [],
                    "matchEngine": "ExactMatchEngine",
                    "matchRecords": [
                        {
                            "additionalInformation": [],
                            "fieldDiffs": [],
                            "matchConfidence": 100.0,
                            "record": {
                                "attributes": {"type": sobject, "url": f"{API}/sobjects/{sobject}/{record_id}"},
                                "Id": record_id,
                            },
                        }
                        for record_id in existing
                    ],
                    "rule": match_rule,
                    "size": len(existing),
                }
            ],
        },
    }


def seeded_with_email(org: Org, sobject: str) -> dict[str, Any]:
    """A live seeded record with an Email."""
    records = org.records(f"SELECT Id, Email, SystemModstamp FROM {sobject} ORDER BY Id LIMIT 20")
    return next(r for r in records if r["Email"])


# ---- duplicate rules ----------------------------------------------------------------------------


def test_a_contact_with_another_contacts_email_is_refused_and_nothing_is_written(fresh: Org) -> None:
    existing = seeded_with_email(fresh, "Contact")
    before = fresh.sandbox.all_ids("Contact")
    # The match is on the trimmed, case-insensitive address.
    body = {"LastName": "Twin", "Email": existing["Email"].upper()}
    response = fresh.api.post(f"{API}/sobjects/Contact", json=body)
    assert response.status_code == 400
    assert response.json() == [duplicate_error("Contact", [existing["Id"]])]
    assert fresh.sandbox.all_ids("Contact") == before
    assert fresh.records("SELECT Id FROM Contact WHERE LastName = 'Twin'") == []
    # A refused create uses up no id: the next one is the same as if it had never been tried.
    single = {"LastName": "Single", "Email": "single@example.org"}
    created = fresh.api.post(f"{API}/sobjects/Contact", json=single)
    assert created.status_code == 201
    assert created.json()["id"] == SalesforceSandbox(seed=11, size=SMALL).create("Contact", single)


@pytest.mark.parametrize(
    "header",
    ["allowSave=true", "AllowSave=TRUE", "runAsCurrentUser=true, allowSave = true ,includeRecordDetails=false"],
)
def test_the_duplicate_rule_header_with_allow_save_lets_the_duplicate_through(fresh: Org, header: str) -> None:
    existing = seeded_with_email(fresh, "Contact")
    body = {"LastName": "Twin", "Email": existing["Email"]}
    created = fresh.api.post(f"{API}/sobjects/Contact", json=body, headers={DUPLICATE_RULE_HEADER: header})
    assert created.status_code == 201, created.text
    twin = created.json()["id"]
    assert fresh.api.get(f"{API}/sobjects/Contact/{twin}").json()["Email"] == existing["Email"]
    # The rule still runs on the next save of either record without the header.
    refused = error_of(fresh.api.patch(f"{API}/sobjects/Contact/{twin}", json={"Title": "CFO"}), 400)
    assert refused == duplicate_error("Contact", [existing["Id"]])
    allowed = fresh.api.patch(
        f"{API}/sobjects/Contact/{twin}", json={"Title": "CFO"}, headers={DUPLICATE_RULE_HEADER: header}
    )
    assert allowed.status_code == 204


@pytest.mark.parametrize("header", ["allowSave=false", "runAsCurrentUser=true", ""])
def test_a_header_without_allow_save_true_does_not_let_it_through(fresh: Org, header: str) -> None:
    existing = seeded_with_email(fresh, "Contact")
    body = {"LastName": "Twin", "Email": existing["Email"]}
    sent = fresh.api.post(f"{API}/sobjects/Contact", json=body, headers={DUPLICATE_RULE_HEADER: header})
    assert error_of(sent, 400)["errorCode"] == "DUPLICATES_DETECTED"


def test_updating_a_contact_to_its_own_email_is_not_a_duplicate(fresh: Org) -> None:
    existing = seeded_with_email(fresh, "Contact")
    url = f"{API}/sobjects/Contact/{existing['Id']}"
    assert fresh.api.patch(url, json={"Email": existing["Email"].upper()}).status_code == 204
    assert fresh.api.patch(url, json={"Title": "Head of Operations"}).status_code == 204
    assert fresh.api.get(url).json()["Email"] == existing["Email"].upper()


def test_updating_a_contact_to_another_contacts_email_is_refused_and_changes_nothing(fresh: Org) -> None:
    existing = seeded_with_email(fresh, "Contact")
    other = fresh.api.post(f"{API}/sobjects/Contact", json={"LastName": "Other", "Email": "other@example.org"})
    other_id = other.json()["id"]
    url = f"{API}/sobjects/Contact/{other_id}"
    before = fresh.api.get(url).json()
    sent = fresh.api.patch(url, json={"Email": f" {existing['Email']}", "Title": "CTO"})
    # A leading space is no valid address; the same address is refused as a duplicate.
    assert error_of(sent, 400)["errorCode"] == "INVALID_EMAIL_ADDRESS"
    sent = fresh.api.patch(url, json={"Email": existing["Email"], "Title": "CTO"})
    assert error_of(sent, 400) == duplicate_error("Contact", [existing["Id"]])
    assert fresh.api.get(url).json() == before


def test_a_deleted_contact_no_longer_counts_as_a_duplicate(fresh: Org) -> None:
    existing = seeded_with_email(fresh, "Contact")
    assert fresh.api.delete(f"{API}/sobjects/Contact/{existing['Id']}").status_code == 204
    created = fresh.api.post(f"{API}/sobjects/Contact", json={"LastName": "Heir", "Email": existing["Email"]})
    assert created.status_code == 201, created.text


def test_every_match_is_listed(fresh: Org) -> None:
    first = fresh.sandbox.create("Contact", {"LastName": "One", "Email": "shared@example.org"})
    second = fresh.sandbox.create("Contact", {"LastName": "Two", "Email": "Shared@Example.org"}, allow_duplicates=True)
    sent = fresh.api.post(f"{API}/sobjects/Contact", json={"LastName": "Three", "Email": "SHARED@example.org"})
    assert error_of(sent, 400) == duplicate_error("Contact", sorted([first, second]))


def test_lead_duplicates_are_matched_against_leads_only(fresh: Org) -> None:
    lead = seeded_with_email(fresh, "Lead")
    contact = seeded_with_email(fresh, "Contact")
    body = {"LastName": "Lee", "Company": "Acme", "Email": lead["Email"].title()}
    assert error_of(fresh.api.post(f"{API}/sobjects/Lead", json=body), 400) == duplicate_error("Lead", [lead["Id"]])
    # A lead may share its address with a contact, and a contact with a lead.
    as_contact = fresh.api.post(f"{API}/sobjects/Lead", json={**body, "Email": contact["Email"]})
    assert as_contact.status_code == 201, as_contact.text
    new_lead = as_contact.json()["id"]
    sent = fresh.api.patch(f"{API}/sobjects/Lead/{new_lead}", json={"Email": lead["Email"]})
    assert error_of(sent, 400) == duplicate_error("Lead", [lead["Id"]])
    allowed = fresh.api.post(f"{API}/sobjects/Lead", json=body, headers={DUPLICATE_RULE_HEADER: "allowSave=true"})
    assert allowed.status_code == 201


def test_the_python_facade_applies_the_rule_unless_told_to_allow_duplicates(fresh: Org) -> None:
    sandbox = fresh.sandbox
    existing = seeded_with_email(fresh, "Contact")
    before = sandbox.all_ids("Contact")
    with pytest.raises(SalesforceError) as refused:
        sandbox.create("Contact", {"LastName": "Twin", "Email": existing["Email"]})
    assert refused.value.error_code == "DUPLICATES_DETECTED" and refused.value.status == 400
    assert refused.value.body() == [duplicate_error("Contact", [existing["Id"]])]
    assert sandbox.all_ids("Contact") == before
    twin = sandbox.create("Contact", {"LastName": "Twin", "Email": existing["Email"]}, allow_duplicates=True)
    with pytest.raises(SalesforceError):
        sandbox.update("Contact", twin, {"Title": "COO"})
    sandbox.update("Contact", twin, {"Title": "COO"}, allow_duplicates=True)
    assert sandbox.get("Contact", twin)["Title"] == "COO"


def test_the_seeded_org_has_no_duplicate_emails() -> None:
    sandbox = SalesforceSandbox(seed=7)
    for sobject in ("Contact", "Lead"):
        emails = [sandbox.get(sobject, record_id)["Email"] for record_id in sandbox.all_ids(sobject)]
        keys = [email.strip().lower() for email in emails if email]
        assert len(keys) == len(set(keys))


# ---- Opportunity.ContactId ----------------------------------------------------------------------


def test_contact_id_is_described_as_a_create_only_reference_to_contact(org: Org) -> None:
    body = org.api.get(f"{API}/sobjects/Opportunity/describe").json()
    field = next(f for f in body["fields"] if f["name"] == "ContactId")
    assert (field["type"], field["referenceTo"], field["relationshipName"]) == ("reference", ["Contact"], "Contact")
    assert field["createable"] and not field["updateable"]
    assert field["nillable"] and field["filterable"] and field["soapType"] == "tns:ID"
    children = org.api.get(f"{API}/sobjects/Contact/describe").json()["childRelationships"]
    deals = [c for c in children if c["childSObject"] == "Opportunity"]
    assert deals == [
        {
            "cascadeDelete": False,
            "childSObject": "Opportunity",
            "deprecatedAndHidden": False,
            "field": "ContactId",
            "relationshipName": "Opportunities",
            "restrictedDelete": False,
        }
    ]


def test_seeded_opportunities_mostly_name_a_contact_of_their_account(org: Org) -> None:
    deals = org.records("SELECT Id, AccountId, ContactId FROM Opportunity")
    contacts = {c["Id"]: c["AccountId"] for c in org.records("SELECT Id, AccountId FROM Contact")}
    with_contacts = {account for account in contacts.values() if account}
    eligible = [d for d in deals if d["AccountId"] in with_contacts]
    named = [d for d in deals if d["ContactId"]]
    assert all(contacts[d["ContactId"]] == d["AccountId"] for d in named)
    assert 0.5 <= len(named) / len(eligible) <= 0.9
    again = SalesforceSandbox(seed=7)
    assert all(again.get("Opportunity", d["Id"])["ContactId"] == d["ContactId"] for d in deals)


def test_contact_id_given_on_create_reads_back_by_get_and_soql(fresh: Org) -> None:
    contact = fresh.sandbox.create("Contact", {"LastName": "Primary", "Email": "primary@example.org"})
    created = fresh.api.post(f"{API}/sobjects/Opportunity", json={**DEAL, "ContactId": contact[:15]})
    assert created.status_code == 201, created.text
    deal = created.json()["id"]
    record = fresh.api.get(f"{API}/sobjects/Opportunity/{deal}", params={"fields": "ContactId,Name"}).json()
    assert record["ContactId"] == contact
    rows = fresh.records(f"SELECT Id, ContactId FROM Opportunity WHERE ContactId = '{contact}'")
    assert [(r["Id"], r["ContactId"]) for r in rows] == [(deal, contact)]
    without = fresh.api.post(f"{API}/sobjects/Opportunity", json={**DEAL, "ContactId": None})
    assert without.status_code == 201
    assert fresh.api.get(f"{API}/sobjects/Opportunity/{without.json()['id']}").json()["ContactId"] is None
    # Deleting the contact leaves the deal, and the stored id, in place.
    assert fresh.api.delete(f"{API}/sobjects/Contact/{contact}").status_code == 204
    assert fresh.api.get(f"{API}/sobjects/Opportunity/{deal}").json()["ContactId"] == contact


@pytest.mark.parametrize("value", ["set", None])
def test_contact_id_cannot_be_updated(fresh: Org, value: str | None) -> None:
    contact = fresh.sandbox.create("Contact", {"LastName": "Primary", "Email": "primary@example.org"})
    deal = fresh.sandbox.create("Opportunity", DEAL)
    url = f"{API}/sobjects/Opportunity/{deal}"
    before = fresh.api.get(url).json()
    sent = fresh.api.patch(url, json={"ContactId": contact if value else None, "NextStep": "Demo"})
    assert error_of(sent, 400) == {
        "message": "Unable to create/update fields: ContactId. Please check the security settings of this field "
        "and verify that it is read/write for your profile or permission set.",
        "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
        "fields": ["ContactId"],
    }
    assert fresh.api.get(url).json() == before


def test_a_contact_id_that_is_no_live_contact_is_refused(fresh: Org) -> None:
    gone = fresh.sandbox.create("Contact", {"LastName": "Gone"})
    fresh.sandbox.delete("Contact", gone)
    account = next(iter(sorted(fresh.sandbox.all_ids("Account"))))
    before = fresh.sandbox.all_ids("Opportunity")
    cases = [
        ("0038W00000zzzzzQAA", "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"),
        (gone, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"),
        (account, "MALFORMED_ID", f"Contact ID: id value of incorrect type: {account}"),
        ("banana", "MALFORMED_ID", "Contact ID: id value of incorrect type: banana"),
    ]
    for value, code, message in cases:
        sent = fresh.api.post(f"{API}/sobjects/Opportunity", json={**DEAL, "ContactId": value})
        assert error_of(sent, 400) == {"message": message, "errorCode": code, "fields": ["ContactId"]}
    assert fresh.sandbox.all_ids("Opportunity") == before
