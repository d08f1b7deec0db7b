"""HubSpot's own Python client (`hubspot-api-client`, pinned in the dev dependencies) drives the
sandbox through what our connector calls and what a user of the sandbox would call. Every call
must parse into the SDK's models (whose required fields it checks) or fail with the SDK's own
exception, status and error body, as it would against api.hubapi.com."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import (
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.contacts.exceptions import NotFoundException, UnauthorizedException
from hubspot.crm.objects.notes import PublicObjectSearchRequest as NotesSearchRequest
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from hubspot.oauth.exceptions import ApiException as OAuthApiException

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.kit.sandbox import serve_in_thread

REDIRECT_URI = "https://app.example.org/oauth/hubspot/callback"


@dataclass
class Portal:
    sandbox: HubSpotSandbox
    url: str

    def client(self, access_token: str | None = None) -> HubSpot:
        """The SDK pointed at the sandbox: `host` replaces https://api.hubapi.com in every API's Configuration."""
        token = access_token if access_token is not None else self.sandbox.mint_tokens()["access_token"]
        return HubSpot(access_token=token, host=self.url)


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    sandbox = HubSpotSandbox(
        seed=11, size=SandboxSize(contacts=230, companies=30, deals=40, owners=5, notes=5, tasks=5)
    )
    # The SDK calls here stay under HubSpot's ten-second burst limit anyway; off so a slow machine cannot trip it.
    sandbox.faults.rate_limit_enabled = False
    with serve_in_thread(create_app(sandbox)) as url:
        yield Portal(sandbox, url)
    sandbox.close()


def error_body(error: Exception) -> dict[str, Any]:
    body = json.loads(getattr(error, "body", None) or "null")
    assert isinstance(body, dict)
    return body


# ---- OAuth ------------------------------------------------------------------------------------


def test_oauth_code_exchange_and_refresh_through_the_sdk_tokens_api(portal: Portal) -> None:
    sandbox = portal.sandbox
    code = sandbox.tokens.create_code(
        sandbox.grant(sandbox.client_id, ["crm.objects.contacts.read"]), REDIRECT_URI, None
    )
    tokens_api = portal.client("").oauth.tokens_api
    app = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret}

    issued = tokens_api.create(grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, **app)
    assert issued.token_type == "bearer" and issued.expires_in > 0 and issued.refresh_token.startswith("na1-")
    refreshed = tokens_api.create(grant_type="refresh_token", refresh_token=issued.refresh_token, **app)
    assert refreshed.access_token != issued.access_token
    assert portal.client(refreshed.access_token).crm.contacts.basic_api.get_page(limit=1).results

    with pytest.raises(OAuthApiException) as reused:
        tokens_api.create(grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, **app)
    assert reused.value.status == 400
    assert error_body(reused.value)["status"] == "BAD_AUTH_CODE"
    with pytest.raises(OAuthApiException) as unknown:
        tokens_api.create(grant_type="refresh_token", refresh_token="na1-not-a-token", **app)
    assert unknown.value.status == 400
    assert error_body(unknown.value)["status"] == "BAD_REFRESH_TOKEN"
    with pytest.raises(OAuthApiException) as wrong_secret:
        tokens_api.create(
            grant_type="refresh_token",
            refresh_token=issued.refresh_token,
            client_id=sandbox.client_id,
            client_secret="wrong",
        )
    assert wrong_secret.value.status == 400
    assert error_body(wrong_secret.value)["status"] == "BAD_CLIENT_SECRET"


def test_access_token_metadata_names_the_portal_and_scopes(portal: Portal) -> None:
    sandbox = portal.sandbox
    token = sandbox.mint_tokens(["crm.objects.contacts.read"])["access_token"]
    info = portal.client("").oauth.access_tokens_api.get(token)
    assert info.hub_id == sandbox.hub_id and info.user_id == sandbox.user_id and info.app_id == sandbox.app_id
    assert info.token == token and info.token_type == "access" and info.expires_in > 0
    assert "crm.objects.contacts.read" in info.scopes


def test_an_expired_or_unknown_token_is_refused_with_401(portal: Portal) -> None:
    client = portal.client()
    portal.sandbox.expire_access_tokens()
    with pytest.raises(UnauthorizedException) as expired:
        client.crm.contacts.basic_api.get_page(limit=1)
    assert expired.value.status == 401
    assert error_body(expired.value)["category"] == "EXPIRED_AUTHENTICATION"
    with pytest.raises(UnauthorizedException) as unknown:
        portal.client("C-not-a-token").crm.contacts.basic_api.get_page(limit=1)
    assert error_body(unknown.value)["category"] == "INVALID_AUTHENTICATION"


# ---- objects ----------------------------------------------------------------------------------


def test_get_page_pages_to_the_end_and_get_all_agrees(portal: Portal) -> None:
    contacts = portal.client().crm.contacts
    seen: list[str] = []
    after = None
    while True:
        page = contacts.basic_api.get_page(limit=100, after=after, properties=["email", "firstname"])
        seen.extend(record.id for record in page.results)
        assert all({"email", "firstname", "hs_object_id"} <= set(r.properties) for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert len(seen) == len(set(seen)) == len(portal.sandbox.all_ids("contacts")) > 200
    assert set(seen) == portal.sandbox.all_ids("contacts")
    assert [record.id for record in contacts.get_all()] == seen


def test_get_by_id_returns_the_asked_properties_and_associations(portal: Portal) -> None:
    client = portal.client()
    deal = next(
        d for d in client.crm.deals.basic_api.get_page(limit=100, associations=["contacts"]).results if d.associations
    )
    contact_id = deal.associations["contacts"].results[0].id

    contact = client.crm.contacts.basic_api.get_by_id(
        contact_id, properties=["email", "lastname"], associations=["deals"]
    )
    assert contact.id == contact_id and contact.archived is False
    assert contact.properties["email"] == portal.sandbox.get("contacts", contact_id)["properties"]["email"]
    linked = contact.associations["deals"].results
    assert deal.id in {link.id for link in linked}
    assert {link.type for link in linked} <= {"contact_to_deal", "contact_to_deal_unlabeled"}

    with pytest.raises(NotFoundException) as missing:
        client.crm.contacts.basic_api.get_by_id("999999999")
    assert missing.value.status == 404
    assert error_body(missing.value)["category"] == "OBJECT_NOT_FOUND"


def test_create_update_and_archive_a_contact(portal: Portal) -> None:
    basic = portal.client().crm.contacts.basic_api
    created = basic.create(
        SimplePublicObjectInputForCreate(properties={"email": "sdk.crud@example.org", "firstname": "Sdk"})
    )
    assert created.properties["email"] == "sdk.crud@example.org" and created.id in portal.sandbox.all_ids("contacts")

    with pytest.raises(ContactsApiException) as duplicate:
        basic.create(SimplePublicObjectInputForCreate(properties={"email": "SDK.crud@example.org"}))
    assert duplicate.value.status == 409
    conflict = error_body(duplicate.value)
    assert conflict["category"] == "CONFLICT" and conflict["message"].endswith(f"Existing ID: {created.id}")
    with pytest.raises(ContactsApiException) as unknown_property:
        basic.create(SimplePublicObjectInputForCreate(properties={"email": "other@example.org", "shoe_size": "9"}))
    assert unknown_property.value.status == 400
    assert error_body(unknown_property.value)["category"] == "VALIDATION_ERROR"

    updated = basic.update(created.id, SimplePublicObjectInput(properties={"lastname": "Kit"}))
    assert updated.properties["lastname"] == "Kit" and updated.updated_at >= created.updated_at

    assert basic.archive(created.id) is None
    with pytest.raises(NotFoundException):
        basic.get_by_id(created.id)
    archived = basic.get_by_id(created.id, archived=True)
    assert archived.archived is True and archived.archived_at is not None
    with pytest.raises(NotFoundException):
        basic.update(created.id, SimplePublicObjectInput(properties={"lastname": "Gone"}))


def test_an_invalid_email_is_refused_with_hubspots_validation_error(portal: Portal) -> None:
    basic = portal.client().crm.contacts.basic_api
    with pytest.raises(ContactsApiException) as refused:
        basic.create(SimplePublicObjectInputForCreate(properties={"email": "not-an-email"}))
    assert refused.value.status == 400
    body = error_body(refused.value)
    assert body["category"] == "VALIDATION_ERROR" and "INVALID_EMAIL" in body["message"]


# ---- search and batch read ----------------------------------------------------------------------


def test_search_filters_sorts_and_pages(portal: Portal) -> None:
    search = portal.client().crm.contacts.search_api
    request: dict[str, Any] = {
        "filter_groups": [{"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}]}],
        "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
        "properties": ["email", "lifecyclestage", "createdate"],
        "limit": 25,
    }
    found: list[Any] = []
    after: str | None = None
    while True:
        page = search.do_search(PublicObjectSearchRequest(**request, after=after))
        found.extend(page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert page.total == len(found) > 25
    assert all(record.properties["lifecyclestage"] == "lead" for record in found)
    created = [record.properties["createdate"] for record in found]
    assert created == sorted(created)
    expected = {
        i
        for i in portal.sandbox.all_ids("contacts")
        if portal.sandbox.get("contacts", i)["properties"].get("lifecyclestage") == "lead"
    }
    assert {record.id for record in found} == expected

    with pytest.raises(ContactsApiException) as bad_operator:
        search.do_search(
            PublicObjectSearchRequest(
                filter_groups=[{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "a"}]}]
            )
        )
    assert bad_operator.value.status == 400
    assert error_body(bad_operator.value)["category"] == "VALIDATION_ERROR"


def test_search_query_finds_text_in_the_default_searchable_properties(portal: Portal) -> None:
    search = portal.client().crm.contacts.search_api
    contact_id = sorted(portal.sandbox.all_ids("contacts"))[7]
    email = portal.sandbox.get("contacts", contact_id)["properties"]["email"]
    found = search.do_search(PublicObjectSearchRequest(query=email.upper(), properties=["email"]))
    assert found.total == 1 and [r.id for r in found.results] == [contact_id]
    lastname = portal.sandbox.get("contacts", contact_id)["properties"]["lastname"]
    by_name = search.do_search(PublicObjectSearchRequest(query=lastname, limit=100, properties=["lastname"]))
    assert contact_id in {r.id for r in by_name.results} and by_name.total < len(portal.sandbox.all_ids("contacts"))
    nothing = search.do_search(PublicObjectSearchRequest(query="no-such-text-anywhere"))
    assert nothing.total == 0 and nothing.results == []

    # Notes search their body text.
    note_id = sorted(portal.sandbox.all_ids("notes"))[0]
    body = portal.sandbox.get("notes", note_id)["properties"]["hs_note_body"]
    word = max(body.split(), key=len)
    notes = portal.client().crm.objects.notes.search_api.do_search(NotesSearchRequest(query=word, limit=100))
    assert note_id in {r.id for r in notes.results}


def test_batch_read_by_id_reports_missing_ids_as_207_errors(portal: Portal) -> None:
    batch = portal.client().crm.contacts.batch_api
    ids = sorted(portal.sandbox.all_ids("contacts"))[:3]
    read = batch.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in ids], properties=["email"], properties_with_history=[]
        )
    )
    assert read.status == "COMPLETE" and sorted(r.id for r in read.results) == ids
    assert not getattr(read, "errors", None)

    partial = batch.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=ids[0]), SimplePublicObjectId(id="999999999")],
            properties=["email"],
            properties_with_history=[],
        )
    )
    assert [r.id for r in partial.results] == [ids[0]]
    assert partial.num_errors == 1 and partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context == {"ids": ["999999999"]}


def test_batch_read_by_email_finds_contacts_by_their_email(portal: Portal) -> None:
    batch = portal.client().crm.contacts.batch_api
    ids = sorted(portal.sandbox.all_ids("contacts"))[:2]
    emails = [portal.sandbox.get("contacts", i)["properties"]["email"] for i in ids]
    read = batch.read(
        BatchReadInputSimplePublicObjectId(
            id_property="email",
            inputs=[SimplePublicObjectId(id=e.upper()) for e in emails],
            properties=["email"],
            properties_with_history=[],
        )
    )
    assert not getattr(read, "errors", None)
    assert sorted(r.id for r in read.results) == ids
    assert sorted(r.properties["email"] for r in read.results) == sorted(emails)

    with pytest.raises(ContactsApiException) as not_unique:
        batch.read(
            BatchReadInputSimplePublicObjectId(
                id_property="firstname",
                inputs=[SimplePublicObjectId(id="Ada")],
                properties=[],
                properties_with_history=[],
            )
        )
    assert not_unique.value.status == 400


# ---- metadata ---------------------------------------------------------------------------------


def test_properties_describe_every_contact_property(portal: Portal) -> None:
    core = portal.client().crm.properties.core_api
    properties = {p.name: p for p in core.get_all("contacts").results}
    assert {"email", "firstname", "lastname", "lifecyclestage", "hs_object_id"} <= set(properties)
    assert properties["email"].type == "string" and properties["email"].has_unique_value is True
    assert properties["lifecyclestage"].type == "enumeration" and properties["lifecyclestage"].options
    assert core.get_by_name("contacts", "email").label == properties["email"].label
    with pytest.raises(PropertiesApiException) as missing:
        core.get_by_name("contacts", "shoe_size")
    assert missing.value.status == 404


def test_owners_page_and_read_by_id(portal: Portal) -> None:
    owners_api = portal.client().crm.owners.owners_api
    first = owners_api.get_page(limit=2)
    assert len(first.results) == 2 and first.paging.next.after
    rest = owners_api.get_page(limit=100, after=first.paging.next.after)
    everyone = [*first.results, *rest.results]
    assert [o.id for o in everyone] == [o.id for o in portal.sandbox.crm.owners]
    owner = owners_api.get_by_id(int(everyone[0].id))
    assert owner.email == everyone[0].email and owner.teams
    by_email = owners_api.get_page(email=everyone[1].email.upper())
    assert [o.id for o in by_email.results] == [everyone[1].id]
    # The SDK asks for /crm/v3/owners/ (the spec's path): answered in place, never redirected.
    assert "307" not in portal.sandbox.stats.snapshot()["responses_by_status"]


def test_associations_v4_batch_read_labels_each_link(portal: Portal) -> None:
    client = portal.client()
    deals = client.crm.deals.basic_api.get_page(limit=100, associations=["contacts"]).results
    linked = {d.associations["contacts"].results[0].id for d in deals if d.associations}
    unlinked = next(i for i in sorted(portal.sandbox.all_ids("contacts")) if i not in linked)
    some_linked = sorted(linked)[:3]
    read = client.crm.associations.v4.batch_api.get_page(
        "contacts",
        "deals",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in [*some_linked, unlinked]]
        ),
    )
    assert sorted(r._from.id for r in read.results) == some_linked
    for result in read.results:
        assert result.to and all(t.association_types for t in result.to)
        assert {spec.category for t in result.to for spec in t.association_types} <= {"HUBSPOT_DEFINED", "USER_DEFINED"}
    assert read.num_errors == 1 and read.errors[0].category == "OBJECT_NOT_FOUND"
    assert read.errors[0].context["fromObjectId"] == [unlinked]


def test_deal_pipelines_name_every_stage(portal: Portal) -> None:
    pipelines = portal.client().crm.pipelines.pipelines_api.get_all("deals").results
    assert pipelines and all(p.stages and p.label for p in pipelines)
    stage_ids = {stage.id for p in pipelines for stage in p.stages}
    deal_stages = {d.properties["dealstage"] for d in portal.client().crm.deals.get_all(properties=["dealstage"])}
    assert deal_stages <= stage_ids
