"""HubSpot's current OAuth paths and token metadata, pipelines (Deal stage labels), property groups and
custom object schemas: the sandbox as HubSpot's specs describe them, and what the connector makes of them."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import orjson
import pytest
from sqlalchemy import select

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox.pipelines import DEAL_STAGE_IDS, DEFAULT_PIPELINE, RENEWALS_PIPELINE
from connectors.hubspot.webhooks import signature_v3
from connectors.kit.errors import BadInput
from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp
from connectors.salesforce.mapping import DEAL_MAPPING as SALESFORCE_DEAL_MAPPING
from sync.storage.store import Store
from sync.storage.tables import connections
from sync.tenancy.platforms import set_provider_app
from tests.support import (
    SyncedHubSpot,
    cached_ids,
    data,
    error_codes,
    gateway,
    imported_hubspot_tokens,
    new_tenant,
    synced_fixture,
)

LABELS = {s.id: s.label for p in (DEFAULT_PIPELINE, RENEWALS_PIPELINE) for s in p.stages}


def _client(url: str, token: str | None = None) -> httpx2.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.Client(base_url=url, headers=headers)


# ---- OAuth: current token path, v1 while served, introspection --------------------------------------


def test_every_token_path_refreshes_and_only_v1_reads_secrets_from_the_query(
    hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    minted = hubspot.mint_tokens()
    form = {
        "grant_type": "refresh_token",
        "client_id": hubspot.client_id,
        "client_secret": hubspot.client_secret,
        "refresh_token": minted["refresh_token"],
    }
    in_query = {"client_secret": form["client_secret"], "refresh_token": form["refresh_token"]}
    in_body = {"grant_type": "refresh_token", "client_id": hubspot.client_id}
    with _client(hubspot_url) as client:
        for path in ("/oauth/2026-03/token", "/oauth/v3/token", "/oauth/v1/token"):
            answer = client.post(path, data=form)
            assert answer.status_code == 200, (path, answer.text)
            body = answer.json()
            assert body["hub_id"] == hubspot.hub_id and body["token_use"] == "access_token"
            assert body["refresh_token"] == minted["refresh_token"]
        assert client.post("/oauth/v1/token", params=in_query, data=in_body).status_code == 200
        refused = client.post("/oauth/2026-03/token", params=in_query, data=in_body)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_client" and refused.json()["error_description"]


def test_introspection_tells_the_portal_of_a_live_token_and_nothing_of_others(
    hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    minted = hubspot.mint_tokens()
    app = {"client_id": hubspot.client_id, "client_secret": hubspot.client_secret}
    with _client(hubspot_url) as client:
        live = client.post("/oauth/2026-03/token/introspect", data={**app, "token": minted["access_token"]}).json()
        assert live["active"] is True and live["hub_id"] == hubspot.hub_id and live["token_use"] == "access_token"
        assert live["client_id"] == hubspot.client_id and live["app_id"] == hubspot.app_id
        assert 0 < live["expires_in"] <= 1800 and live["scopes"] == minted["scopes"]
        assert live["signed_access_token"]["hubId"] == hubspot.hub_id
        refresh = client.post(
            "/oauth/v3/token/introspect",
            data={**app, "token": minted["refresh_token"], "token_type_hint": "refresh_token"},
        ).json()
        assert refresh["active"] is True and refresh["token_use"] == "refresh_token"
        assert refresh["hub_id"] == hubspot.hub_id
        for token in ("C-never-issued", ""):
            answer = client.post("/oauth/2026-03/token/introspect", data={**app, "token": token})
            assert answer.status_code == 200 if token else answer.status_code == 400
            if token:
                assert answer.json() == {"active": False}
        wrong_secret = client.post(
            "/oauth/2026-03/token/introspect", data={**app, "client_secret": "x", "token": minted["access_token"]}
        )
        assert wrong_secret.status_code == 400 and wrong_secret.json()["status"] == "BAD_CLIENT_SECRET"

        # v1 metadata: the token in the path, no client credentials, no `active`.
        legacy = client.get(f"/oauth/v1/access-tokens/{minted['access_token']}")
        assert legacy.status_code == 200
        assert {"hub_id", "user", "scopes", "expires_in", "app_id", "token_type", "user_id", "hub_domain"} <= set(
            legacy.json()
        )
        assert "active" not in legacy.json()
        assert client.get("/oauth/v1/access-tokens/C-never-issued").status_code == 404
        hubspot.expire_access_tokens()
        expired = client.post("/oauth/2026-03/token/introspect", data={**app, "token": minted["access_token"]})
        assert expired.json() == {"active": False}


async def test_a_connection_imported_without_hub_id_matches_its_webhooks_at_once(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> None:
    hubspot.faults.rate_limit_enabled = False
    tenant = await new_tenant(store)
    await set_provider_app(store, tenant.platform_id, "hubspot", OAuthApp(hubspot.client_id, hubspot.client_secret))
    create = """mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }"""
    async with gateway(store, kit, secret_key) as api:
        # Tokens only: no hub_id, as a platform moving its users from another tool has them.
        imported = imported_hubspot_tokens(hubspot, hubspot_url, "imported")
        body = await api.graphql(create, tenant.api_key, input=imported)
        data(body)
        async with store.engine.connect() as conn:
            (account,) = (await conn.execute(select(connections.c.account_id))).one()
        assert account == str(hubspot.hub_id)
        assert hubspot.stats.token_refreshes == 0  # learned from introspection, not by spending a refresh

        contact = min(hubspot.all_ids("contacts"), key=int)
        events = [
            {
                "portalId": hubspot.hub_id,
                "appId": hubspot.app_id,
                "subscriptionId": 1,
                "attemptNumber": 0,
                "eventId": 1,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": "contact.creation",
                "objectId": int(contact),
            }
        ]
        raw = orjson.dumps(events)
        stamp = str(int(time.time() * 1000))
        url = f"{api.url}/webhooks/hubspot"
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature_v3(hubspot.client_secret, "POST", url, raw, stamp),
            "X-HubSpot-Request-Timestamp": stamp,
        }
        answer = await api.client.post(url, content=raw, headers=headers)
        assert answer.status_code == 200, answer.text
        async with store.engine.connect() as conn:
            (connection_id,) = (await conn.execute(select(connections.c.id))).one()
        # Matched before any sync ran: the webhook alone brought the contact.
        assert await cached_ids(store, connection_id, "contacts") == {contact}


# ---- pipelines, property groups, schemas -----------------------------------------------------------


def test_pipelines_as_hubspot_serves_them(hubspot: HubSpotSandbox, hubspot_url: str) -> None:
    with _client(hubspot_url, hubspot.mint_tokens()["access_token"]) as client:
        listed = client.get("/crm/v3/pipelines/deals").json()["results"]
        assert [p["id"] for p in listed] == ["default", RENEWALS_PIPELINE.id]
        default = listed[0]
        assert default["label"] == "Sales Pipeline" and default["archived"] is False
        assert {"id", "label", "displayOrder", "archived", "createdAt", "updatedAt", "stages"} <= set(default)
        assert [s["id"] for s in default["stages"]] == [
            "appointmentscheduled",
            "qualifiedtobuy",
            "presentationscheduled",
            "decisionmakerboughtin",
            "contractsent",
            "closedwon",
            "closedlost",
        ]
        won = default["stages"][5]
        assert won["label"] == "Closed Won" and won["metadata"] == {"isClosed": "true", "probability": "1.0"}
        assert all(s["id"].isdigit() for s in listed[1]["stages"])
        one = client.get(f"/crm/v3/pipelines/0-3/{RENEWALS_PIPELINE.id}")
        assert one.status_code == 200 and one.json() == listed[1]
        stages = client.get("/crm/v3/pipelines/deals/default/stages").json()["results"]
        assert stages == default["stages"]
        assert client.get("/crm/v3/pipelines/deals/default/stages/closedwon").json() == won
        for path in ("/crm/v3/pipelines/deals/404404", "/crm/v3/pipelines/deals/default/stages/nope"):
            missing = client.get(path)
            assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
        assert client.get("/crm/v3/pipelines/contacts").status_code == 400

        # Deal records carry the pipelines' ids, and the dealstage property offers every one of them.
        deals = client.get("/crm/v3/objects/deals", params={"limit": 100}).json()["results"]
        used = {(d["properties"]["pipeline"], d["properties"]["dealstage"]) for d in deals}
        assert {pipeline for pipeline, _ in used} == {"default", RENEWALS_PIPELINE.id}
        for pipeline, stage in used:
            owner = DEFAULT_PIPELINE if pipeline == "default" else RENEWALS_PIPELINE
            assert owner.stage(stage) is not None
        dealstage = client.get("/crm/v3/properties/deals/dealstage").json()
        assert [o["value"] for o in dealstage["options"]] == list(DEAL_STAGE_IDS)


def test_property_groups_and_custom_object_schemas(hubspot: HubSpotSandbox, hubspot_url: str) -> None:
    with _client(hubspot_url, hubspot.mint_tokens()["access_token"]) as client:
        groups = client.get("/crm/v3/properties/contacts/groups").json()["results"]
        assert groups[0] == {
            "name": "contactinformation",
            "label": "Contact information",
            "displayOrder": 0,
            "archived": False,
        }
        properties = client.get("/crm/v3/properties/contacts").json()["results"]
        assert {p["groupName"] for p in properties} == {g["name"] for g in groups}
        assert client.get("/crm/v3/properties/deals/groups/dealinformation").json()["label"] == "Deal information"
        assert client.get("/crm/v3/properties/deals/groups/nope").status_code == 404

        schemas = client.get("/crm/v3/schemas").json()["results"]
        assert client.get("/crm-object-schemas/v3/schemas").json()["results"] == schemas
        (project,) = schemas
        assert project["objectTypeId"].startswith("2-") and project["labels"] == {
            "singular": "Project",
            "plural": "Projects",
        }
        assert project["fullyQualifiedName"] == f"p{hubspot.hub_id}_project"
        assert set(project["requiredProperties"]) <= {p["name"] for p in project["properties"]}
        assert {a["toObjectTypeId"] for a in project["associations"]} == {"0-1", "0-2"}
        assert client.get(f"/crm/v3/schemas/{project['objectTypeId']}").json() == project
        assert client.get("/crm/v3/schemas/2-999").status_code == 404


# ---- Deal stage: the label in stage, the id in remoteStage -----------------------------------------

DEALS = """query($stage: String) { deals(first: 100, filter: {remoteStage: {eq: $stage}}) {
    edges { node { id remoteId stage remoteStage pipeline raw } } } }"""
UPDATE = """mutation($id: ID!, $input: DealInput!) { updateDeal(id: $id, input: $input) {
    deal { stage remoteStage raw } } }"""


class Deals(SyncedHubSpot):
    async def nodes(self, remote_stage: str | None = None) -> list[dict[str, Any]]:
        body = await self.api.graphql(DEALS, self.tenant.api_key, stage=remote_stage)
        return [edge["node"] for edge in data(body)["deals"]["edges"]]

    async def update(self, node_id: str, **values: Any) -> dict[str, Any]:
        return await self.api.graphql(UPDATE, self.tenant.api_key, id=node_id, input=values)


deals = synced_fixture(Deals)


async def test_a_deal_shows_its_stage_label_and_keeps_the_id(deals: Deals) -> None:
    nodes = await deals.nodes()
    assert nodes and {n["pipeline"] for n in nodes} == {"default", RENEWALS_PIPELINE.id}
    for node in nodes:
        assert node["remoteStage"] == node["raw"]["properties"]["dealstage"]
        assert node["stage"] == LABELS[node["remoteStage"]]
    won = await deals.nodes("closedwon")
    assert won and {n["stage"] for n in won} == {"Closed Won"}


async def test_a_deal_stage_is_written_by_label_or_by_id(deals: Deals) -> None:
    node = next(n for n in await deals.nodes() if n["pipeline"] == "default" and n["remoteStage"] != "contractsent")
    by_label = data(await deals.update(node["id"], stage="Contract Sent"))["updateDeal"]["deal"]
    assert (by_label["stage"], by_label["remoteStage"]) == ("Contract Sent", "contractsent")
    assert deals.sandbox.get("deals", node["remoteId"])["properties"]["dealstage"] == "contractsent"

    by_id = data(await deals.update(node["id"], remoteStage="closedlost"))["updateDeal"]["deal"]
    assert (by_id["stage"], by_id["remoteStage"]) == ("Closed Lost", "closedlost")
    both = data(await deals.update(node["id"], stage="Closed Won", remoteStage="closedwon"))["updateDeal"]["deal"]
    assert both["remoteStage"] == "closedwon"

    for values, field in (
        ({"stage": "closedlost"}, "stage"),  # an id where the label goes
        ({"stage": "Won-ish"}, "stage"),
        ({"stage": "Closed Lost", "remoteStage": "closedwon"}, "stage"),
    ):
        refused = await deals.update(node["id"], **values)
        assert error_codes(refused) == ["BAD_USER_INPUT"], values
        assert refused["errors"][0]["extensions"]["field"] == field
    assert "'Closed Won'" in (await deals.update(node["id"], stage="Won-ish"))["errors"][0]["message"]
    assert deals.sandbox.get("deals", node["remoteId"])["properties"]["dealstage"] == "closedwon"


async def test_webhook_refetch_maps_the_stage_label_too(deals: Deals) -> None:
    deal = next(n for n in await deals.nodes() if n["remoteStage"] != "presentationscheduled")
    deals.sandbox.update("deals", deal["remoteId"], {"dealstage": "presentationscheduled"})
    events = [
        {
            "portalId": deals.sandbox.hub_id,
            "appId": 1,
            "subscriptionId": 1,
            "attemptNumber": 0,
            "eventId": 7,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": "deal.propertyChange",
            "objectId": int(deal["remoteId"]),
            "propertyName": "dealstage",
        }
    ]
    raw = orjson.dumps(events)
    stamp = str(int(time.time() * 1000))
    url = f"{deals.api.url}/webhooks/hubspot"
    signature = signature_v3(deals.sandbox.client_secret, "POST", url, raw, stamp)
    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp}
    assert (await deals.api.client.post(url, content=raw, headers=headers)).status_code == 200
    refetched = next(n for n in await deals.nodes() if n["remoteId"] == deal["remoteId"])
    assert (refetched["stage"], refetched["remoteStage"]) == ("Presentation Scheduled", "presentationscheduled")


def test_salesforce_stage_and_remote_stage_both_read_stagename_and_must_agree_on_write() -> None:
    common = SALESFORCE_DEAL_MAPPING.to_common({"StageName": "Closed Won"})
    assert common["stage"] == common["remote_stage"] == "Closed Won"
    assert SALESFORCE_DEAL_MAPPING.provider_values({"stage": "Prospecting", "remote_stage": "Prospecting"}) == {
        "StageName": "Prospecting"
    }
    with pytest.raises(BadInput) as refused:
        SALESFORCE_DEAL_MAPPING.provider_values({"stage": "Closed Won", "remote_stage": "Prospecting"})
    assert refused.value.extensions["field"] == "remoteStage"
