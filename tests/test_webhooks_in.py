"""Provider webhooks in: signatures (good, bad, stale, replayed) and the changes they bring."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2
import orjson

from connectors.hubspot.webhooks import signature_v3
from connectors.kit.oauth import OAuthApp
from sync.tenancy.platforms import set_provider_app
from tests.support import SyncedHubSpot, cached_ids, new_tenant, synced_fixture


class Setup(SyncedHubSpot):
    @property
    def url(self) -> str:
        return f"{self.api.url}/webhooks/hubspot"

    def events(self, *events: dict[str, Any]) -> bytes:
        base = {"portalId": self.sandbox.hub_id, "appId": 1, "subscriptionId": 1, "attemptNumber": 0}
        stamped = [{**base, "eventId": i, "occurredAt": int(time.time() * 1000), **e} for i, e in enumerate(events)]
        return orjson.dumps(stamped)

    async def post(
        self, body: bytes, *, secret: str | None = None, timestamp: int | None = None, url: str | None = None
    ) -> httpx2.Response:
        stamp = str(timestamp if timestamp is not None else int(time.time() * 1000))
        signature = signature_v3(secret or self.sandbox.client_secret, "POST", url or self.url, body, stamp)
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": stamp,
        }
        async with httpx2.AsyncClient() as client:
            return await client.post(self.url, content=body, headers=headers)


setup = synced_fixture(Setup)


async def test_a_signed_event_brings_the_change_at_once(setup: Setup) -> None:
    contact = min(setup.sandbox.all_ids("contacts"), key=int)
    setup.sandbox.update("contacts", contact, {"jobtitle": "Told by webhook"})
    start = await setup.position()
    body = setup.events(
        {"subscriptionType": "contact.propertyChange", "objectId": int(contact), "propertyName": "jobtitle"}
    )
    answer = await setup.post(body)
    assert answer.status_code == 200, answer.text
    logged = await setup.logged_since(start)
    assert [(c.op, c.remote_id, c.changed_fields) for c in logged] == [("UPDATED", contact, ["job_title"])]


async def test_creation_and_deletion_events(setup: Setup) -> None:
    created = setup.sandbox.create("contacts", {"email": "hooked@example.org", "lastname": "Hooked"})["id"]
    doomed = max(setup.sandbox.all_ids("contacts") - {created}, key=int)
    setup.sandbox.archive("contacts", doomed)
    start = await setup.position()
    body = setup.events(
        {"subscriptionType": "contact.creation", "objectId": int(created)},
        {"subscriptionType": "contact.deletion", "objectId": int(doomed)},
    )
    assert (await setup.post(body)).status_code == 200
    assert sorted((c.op, c.remote_id) for c in await setup.logged_since(start)) == sorted(
        [("CREATED", created), ("DELETED", doomed)]
    )
    assert created in await cached_ids(setup.store, setup.connection_id, "contacts")
    assert doomed in await cached_ids(setup.store, setup.connection_id, "contacts", deleted=True)


async def test_a_bad_signature_is_refused_and_changes_nothing(setup: Setup) -> None:
    contact = min(setup.sandbox.all_ids("contacts"), key=int)
    setup.sandbox.update("contacts", contact, {"jobtitle": "Forged"})
    start = await setup.position()
    body = setup.events({"subscriptionType": "contact.propertyChange", "objectId": int(contact)})
    forged = await setup.post(body, secret="not-the-app-secret")
    assert forged.status_code == 401
    assert forged.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    tampered_url = await setup.post(body, url=setup.url + "?x=1")
    assert tampered_url.status_code == 401
    assert await setup.logged_since(start) == []


async def test_a_stale_timestamp_is_refused(setup: Setup) -> None:
    contact = min(setup.sandbox.all_ids("contacts"), key=int)
    body = setup.events({"subscriptionType": "contact.propertyChange", "objectId": int(contact)})
    start = await setup.position()
    six_minutes_ago = int((time.time() - 360) * 1000)
    stale = await setup.post(body, timestamp=six_minutes_ago)
    assert stale.status_code == 401
    assert "five minutes" in stale.json()["errors"][0]["message"]
    assert await setup.logged_since(start) == []


async def test_a_replayed_delivery_changes_nothing_twice(setup: Setup) -> None:
    contact = min(setup.sandbox.all_ids("contacts"), key=int)
    setup.sandbox.update("contacts", contact, {"jobtitle": "Once"})
    start = await setup.position()
    body = setup.events({"subscriptionType": "contact.propertyChange", "objectId": int(contact)})
    stamp = int(time.time() * 1000)
    assert (await setup.post(body, timestamp=stamp)).status_code == 200
    assert (await setup.post(body, timestamp=stamp)).status_code == 200  # the same request, again
    assert len(await setup.logged_since(start)) == 1


async def test_another_platforms_app_cannot_touch_these_connections(setup: Setup) -> None:
    intruder = await new_tenant(setup.store, "intruder")
    await set_provider_app(setup.store, intruder.platform_id, "hubspot", OAuthApp("other-client", "other-secret"))
    contact = min(setup.sandbox.all_ids("contacts"), key=int)
    setup.sandbox.update("contacts", contact, {"jobtitle": "Intruded"})
    start = await setup.position()
    body = setup.events({"subscriptionType": "contact.propertyChange", "objectId": int(contact)})
    answer = await setup.post(body, secret="other-secret")  # valid for the intruder's own app
    # Checked only against the platform that owns the portal, whose secret this is not.
    assert answer.status_code == 401
    assert await setup.logged_since(start) == []


async def test_unknown_providers_and_malformed_bodies(setup: Setup) -> None:
    async with httpx2.AsyncClient() as client:
        assert (await client.post(f"{setup.api.url}/webhooks/nope", content=b"[]")).status_code == 404
    assert (await setup.post(b'{"not": "an array"}')).status_code == 400


async def test_the_sandbox_webhooks_reach_the_log_without_a_sync(setup: Setup) -> None:
    """End to end: HubSpot (the sandbox) signs and sends its own batched events to our endpoint."""
    setup.sandbox.configure_webhooks(setup.url)
    try:
        contact = min(setup.sandbox.all_ids("contacts"), key=int)
        start = await setup.position()
        setup.sandbox.update("contacts", contact, {"jobtitle": "Pushed by HubSpot"})
        deadline = time.monotonic() + 10
        logged: list[Any] = []
        while not logged and time.monotonic() < deadline:
            logged = await setup.logged_since(start)
            await asyncio.sleep(0.05)
        assert [(c.op, c.remote_id, c.changed_fields) for c in logged] == [("UPDATED", contact, ["job_title"])]
        assert setup.sandbox.webhook_stats.events_delivered >= 1
    finally:
        setup.sandbox.close()
