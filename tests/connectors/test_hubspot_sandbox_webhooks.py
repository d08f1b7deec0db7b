"""The HubSpot sandbox sends signed webhooks when its data changes, as HubSpot does: driven over
real HTTP, with a local receiver that records what arrives."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.hubspot.sandbox.timestamps import parse_instant
from connectors.hubspot.webhooks import SIGNATURE_V3
from connectors.kit.sandbox import serve_in_thread
from connectors.kit.webhooks import WebhookRejected, WebhookRequest

HOOK_PATH = "/hooks/hubspot?account=acme"


@dataclass
class Received:
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = orjson.loads(self.body)
        return events

    def as_webhook_request(self) -> WebhookRequest:
        return WebhookRequest("POST", self.url, self.headers, self.body)


@dataclass
class Receiver:
    """Records every request; answers with the scripted statuses first, then 200."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.base_url + HOOK_PATH

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.statuses.clear()
            self.delay_s = 0.0

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [event for received in self.requests for event in received.events]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.requests.append(Received(str(request.url), dict(request.headers), body))
            status = self.statuses.pop(0) if self.statuses else 200
            delay = self.delay_s
        if delay:
            await asyncio.sleep(delay)
        return Response(status_code=status)


@dataclass
class Portal:
    sandbox: HubSpotSandbox
    api: httpx2.Client
    control: httpx2.Client
    receiver: Receiver


@pytest.fixture(scope="module")
def served() -> Iterator[Portal]:
    receiver = Receiver()
    sink = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    sandbox = HubSpotSandbox(seed=5, size=SandboxSize(contacts=20, companies=5, deals=5, owners=2, notes=5, tasks=5))
    sandbox.faults.rate_limit_enabled = False
    token = sandbox.mint_tokens()["access_token"]
    with (
        sandbox,
        serve_in_thread(sink) as receiver_url,
        serve_in_thread(create_app(sandbox)) as base_url,
        httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as api,
        httpx2.Client(base_url=base_url) as control,
    ):
        receiver.base_url = receiver_url
        yield Portal(sandbox, api, control, receiver)


@pytest.fixture
def portal(served: Portal) -> Iterator[Portal]:
    """Webhooks on, to a receiver that has seen nothing yet; off again afterwards."""
    served.receiver.reset()
    served.sandbox.webhook_stats.reset()
    served.sandbox.configure_webhooks(served.receiver.url)
    try:
        yield served
    finally:
        served.sandbox.disable_webhooks()


def flushed(portal: Portal) -> list[dict[str, Any]]:
    assert portal.sandbox.flush_webhooks(timeout=3.0)
    return portal.receiver.events()


def create_contact(portal: Portal, **properties: str) -> str:
    response = portal.api.post("/crm/v3/objects/contacts", json={"properties": properties})
    assert response.status_code == 201, response.text
    record_id: str = response.json()["id"]
    return record_id


def test_a_rest_create_sends_one_signed_creation_event(portal: Portal) -> None:
    contact_id = create_contact(portal, email="hook@example.com", firstname="Hook")

    events = flushed(portal)
    assert len(portal.receiver.requests) == 1
    received = portal.receiver.requests[0]
    assert received.url == portal.receiver.url
    assert received.headers["content-type"] == "application/json"
    assert abs(int(received.headers["x-hubspot-request-timestamp"]) - time.time() * 1000) < 5_000
    SIGNATURE_V3.verify(received.as_webhook_request(), portal.sandbox.client_secret, now=time.time())
    with pytest.raises(WebhookRejected):
        SIGNATURE_V3.verify(received.as_webhook_request(), "another-secret", now=time.time())

    [event] = events
    # The portal is the one the sandbox's tokens name.
    assert portal.sandbox.hub_id == portal.sandbox.mint_tokens()["hub_id"]
    assert event == {
        "eventId": event["eventId"],
        "subscriptionId": event["subscriptionId"],
        "portalId": portal.sandbox.hub_id,
        "appId": portal.sandbox.app_id,
        "occurredAt": event["occurredAt"],
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": int(contact_id),
        "changeSource": "API",
    }
    assert isinstance(event["eventId"], int) and isinstance(event["subscriptionId"], int)
    assert event["occurredAt"] == parse_instant(portal.sandbox.get("contacts", contact_id)["createdAt"])
    stats = portal.sandbox.webhook_stats
    assert (stats.events_delivered, stats.requests_sent, stats.failures) == (1, 1, 0)
    assert stats.delivered_events == events


def test_an_update_sends_one_property_change_per_changed_property(portal: Portal) -> None:
    contact_id = create_contact(portal, email="props@example.com", firstname="Old", lastname="Same", jobtitle="CTO")
    assert portal.sandbox.flush_webhooks()
    portal.receiver.reset()

    properties = {"firstname": "New", "lastname": "Same", "jobtitle": "", "email": "props2@example.com"}
    response = portal.api.patch(f"/crm/v3/objects/contacts/{contact_id}", json={"properties": properties})
    assert response.status_code == 200, response.text

    events = flushed(portal)
    assert {e["subscriptionType"] for e in events} == {"contact.propertyChange"}
    assert {e["objectId"] for e in events} == {int(contact_id)}
    # lastname kept its value: no event; a cleared property reads as "".
    changes = {e["propertyName"]: e["propertyValue"] for e in events}
    assert changes == {"firstname": "New", "jobtitle": "", "email": "props2@example.com"}
    assert len(events) == 3 and len({e["eventId"] for e in events}) == 3


def test_an_archive_sends_a_deletion(portal: Portal) -> None:
    deal = portal.api.post("/crm/v3/objects/deals", json={"properties": {"dealname": "Doomed"}}).json()
    assert portal.api.delete(f"/crm/v3/objects/deals/{deal['id']}").status_code == 204
    assert portal.api.delete(f"/crm/v3/objects/deals/{deal['id']}").status_code == 204  # a no-op: no event

    events = flushed(portal)
    assert [(e["subscriptionType"], e["objectId"]) for e in events] == [
        ("deal.creation", int(deal["id"])),
        ("deal.deletion", int(deal["id"])),
    ]


def test_quick_changes_arrive_batched_in_one_array(portal: Portal) -> None:
    portal.sandbox.configure_webhooks(portal.receiver.url, batch_window_ms=300)
    ids = [create_contact(portal, email=f"batch{i}@example.com") for i in range(4)]
    company = portal.api.post("/crm/v3/objects/companies", json={"properties": {"name": "Batch Co"}}).json()

    events = flushed(portal)
    assert len(portal.receiver.requests) == 1
    assert [(e["subscriptionType"], e["objectId"]) for e in events] == [
        *(("contact.creation", int(i)) for i in ids),
        ("company.creation", int(company["id"])),
    ]


def test_a_batch_holds_at_most_max_batch_events(portal: Portal) -> None:
    portal.sandbox.configure_webhooks(portal.receiver.url, batch_window_ms=200, max_batch=2)
    for i in range(5):
        portal.sandbox.create("companies", {"name": f"Many {i}"})

    flushed(portal)
    assert [len(r.events) for r in portal.receiver.requests] == [2, 2, 1]


def test_a_failing_receiver_gets_the_events_again_until_it_accepts(portal: Portal) -> None:
    portal.receiver.statuses.extend([500, 503])
    contact_id = create_contact(portal, email="retry@example.com")

    flushed(portal)
    attempts = [r.events for r in portal.receiver.requests]
    assert [[e["attemptNumber"] for e in events] for events in attempts] == [[0], [1], [2]]
    assert {e["eventId"] for events in attempts for e in events} == {attempts[0][0]["eventId"]}
    assert attempts[2][0]["objectId"] == int(contact_id)
    for received in portal.receiver.requests:  # each attempt is signed afresh
        SIGNATURE_V3.verify(received.as_webhook_request(), portal.sandbox.client_secret, now=time.time())
    stats = portal.sandbox.webhook_stats
    assert (stats.events_delivered, stats.requests_sent, stats.failures, stats.retries) == (1, 3, 2, 2)
    assert stats.events_given_up == 0


def test_a_400_answer_is_not_retried(portal: Portal) -> None:
    portal.receiver.statuses.append(400)
    create_contact(portal, email="refused@example.com")

    flushed(portal)
    assert len(portal.receiver.requests) == 1
    stats = portal.sandbox.webhook_stats
    assert (stats.events_delivered, stats.events_given_up, stats.failures, stats.retries) == (0, 1, 1, 0)


def test_an_unreachable_receiver_is_retried(portal: Portal) -> None:
    with serve_in_thread(Starlette()) as gone:
        pass  # the port is closed again: connections are refused
    portal.sandbox.configure_webhooks(f"{gone}/hooks", batch_window_ms=0)
    portal.sandbox.create("contacts", {"email": "nobody@example.com"})
    deadline = time.monotonic() + 2.0
    while portal.sandbox.webhook_stats.retries < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = portal.sandbox.webhook_stats.snapshot()
    assert stats["retries"] >= 2 and stats["failures"] >= 2 and stats["events_delivered"] == 0
    assert "Connect" in (stats["last_error"] or "")


def test_writes_do_not_wait_for_delivery(portal: Portal) -> None:
    portal.receiver.delay_s = 0.3
    started = time.perf_counter()
    create_contact(portal, email="fast1@example.com")
    time.sleep(0.1)  # the first batch is now being delivered, and its receiver is slow
    create_contact(portal, email="fast2@example.com")
    assert time.perf_counter() - started < 0.25
    assert len(flushed(portal)) == 2


def test_facade_changes_and_associations(portal: Portal) -> None:
    company = portal.sandbox.create("companies", {"name": "Facade Co"})
    contact = portal.sandbox.create(
        "contacts", {"email": "facade@example.com"}, associations={"companies": [company["id"]]}
    )
    portal.sandbox.update("contacts", contact["id"], {"firstname": "Fay"})
    note = portal.sandbox.create("notes", {"hs_timestamp": "2024-01-01T00:00:00Z", "hs_note_body": "no event"})
    portal.sandbox.associate("notes", note["id"], "contacts", contact["id"])  # notes emit nothing
    response = portal.api.delete(f"/crm/v4/objects/contacts/{contact['id']}/associations/companies/{company['id']}")
    assert response.status_code == 204

    events = flushed(portal)
    contact_id, company_id = int(contact["id"]), int(company["id"])
    simple = [
        (e["subscriptionType"], e.get("objectId"), e["changeSource"])
        for e in events
        if e["subscriptionType"].endswith(("creation", "propertyChange"))
    ]
    assert simple == [
        ("company.creation", company_id, "CRM_UI"),
        ("contact.creation", contact_id, "CRM_UI"),
        ("contact.propertyChange", contact_id, "CRM_UI"),
    ]
    links = [
        (
            e["subscriptionType"],
            e["associationType"],
            e["fromObjectId"],
            e["toObjectId"],
            e["associationRemoved"],
            e["changeSource"],
        )
        for e in events
        if e["subscriptionType"].endswith("associationChange") and company_id in (e["fromObjectId"], e["toObjectId"])
    ]
    assert links == [
        ("contact.associationChange", "CONTACT_TO_COMPANY", contact_id, company_id, False, "CRM_UI"),
        ("company.associationChange", "COMPANY_TO_CONTACT", company_id, contact_id, False, "CRM_UI"),
        ("contact.associationChange", "CONTACT_TO_COMPANY", contact_id, company_id, True, "API"),
        ("company.associationChange", "COMPANY_TO_CONTACT", company_id, contact_id, True, "API"),
    ]
    assert not any("note" in e["subscriptionType"] or e.get("objectId") == int(note["id"]) for e in events)


def test_the_control_route_configures_webhooks(served: Portal) -> None:
    sandbox, control, receiver = served.sandbox, served.control, served.receiver
    receiver.reset()
    sandbox.webhook_stats.reset()
    try:
        settings = {"targetUrl": receiver.url, "clientSecret": "app-secret", "appId": 54321, "portalId": 62515}
        configured = control.put("/_sandbox/webhooks", json=settings)
        assert configured.status_code == 200, configured.text
        assert configured.json()["enabled"] and configured.json()["portalId"] == 62515
        assert "clientSecret" not in configured.json()
        company = sandbox.create("companies", {"name": "Routed Co"})
        assert sandbox.flush_webhooks()
        [received] = receiver.requests
        SIGNATURE_V3.verify(received.as_webhook_request(), "app-secret", now=time.time())
        [event] = received.events
        assert (event["portalId"], event["appId"], event["objectId"]) == (62515, 54321, int(company["id"]))
        assert control.get("/_sandbox/webhooks").json()["stats"]["events_delivered"] == 1
        assert control.get("/_sandbox/stats").json()["webhooks"]["requests_sent"] == 1

        for bad in ({}, {"targetUrl": "not a url"}, {"targetUrl": receiver.url, "appId": "x"}):
            assert control.put("/_sandbox/webhooks", json=bad).status_code == 400

        assert control.delete("/_sandbox/webhooks").status_code == 204
        assert control.get("/_sandbox/webhooks").json()["enabled"] is False
        sandbox.create("companies", {"name": "Unheard Co"})
        assert sandbox.flush_webhooks()
        assert len(receiver.requests) == 1
    finally:
        sandbox.disable_webhooks()
