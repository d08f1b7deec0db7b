"""Salesforce mapping, errors and limit headers."""

from __future__ import annotations

import httpx2

from connectors.kit.errors import RateLimited
from connectors.salesforce.errors import parse_error, pause_near_daily_limit
from connectors.salesforce.mapping import COMPANY_MAPPING, LEAD_MAPPING, NOTE_MAPPING, TASK_MAPPING


def test_task_lookups_are_routed_by_key_prefix() -> None:
    common = TASK_MAPPING.to_common(
        {"Subject": "Call", "WhoId": "00Q000000000001AAA", "WhatId": "006000000000002AAA", "AccountId": None}
    )
    assert common["contacts"] == ["00Q000000000001AAA"]
    assert common["deals"] == ["006000000000002AAA"]
    assert common["companies"] == []
    TASK_MAPPING.model.validate(common)


def test_note_parent_on_an_account_is_a_company() -> None:
    common = NOTE_MAPPING.to_common(
        {"Body": "Met", "ParentId": "001000000000003AAA", "CreatedDate": "2025-01-02T03:04:05.000+0000"}
    )
    assert common["companies"] == ["001000000000003AAA"]
    assert common["contacts"] == [] and common["deals"] == []
    assert common["timestamp"].year == 2025


def test_leads_are_contacts_marked_as_leads() -> None:
    common = LEAD_MAPPING.to_common({"FirstName": "Ada", "LastName": "Lovelace", "Status": "Open - Not Contacted"})
    assert common["is_lead"] is True
    assert common["lifecycle_stage"] == "Open - Not Contacted"


def test_company_domain_comes_from_the_website() -> None:
    for website, domain in (("https://www.acme.com/about", "acme.com"), ("acme.io", "acme.io"), (None, None)):
        assert COMPANY_MAPPING.to_common({"Name": "Acme", "Website": website})["domain"] == domain


def test_the_sync_slows_down_near_the_daily_allowance() -> None:
    assert pause_near_daily_limit({"sforce-limit-info": "api-usage=100/15000"}) is None
    assert pause_near_daily_limit({"sforce-limit-info": "api-usage=13600/15000"}) == 10.0
    assert pause_near_daily_limit({"sforce-limit-info": "api-usage=14900/15000, per-app-api-usage=5/250"}) == 600.0
    assert pause_near_daily_limit({}) is None


def test_errors_are_read_from_the_array_envelope() -> None:
    limited = parse_error(
        httpx2.Response(403, json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    )
    assert isinstance(limited, RateLimited)
    required = {"message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING"}
    missing = parse_error(httpx2.Response(400, json=[{**required, "fields": ["LastName"]}]))
    assert (missing.provider_code, missing.field) == ("REQUIRED_FIELD_MISSING", "LastName")
    refused = parse_error(
        httpx2.Response(400, json={"error": "invalid_grant", "error_description": "expired access/refresh token"})
    )
    assert (refused.provider_code, refused.message) == ("invalid_grant", "expired access/refresh token")
