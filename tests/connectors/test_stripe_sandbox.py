"""The Stripe sandbox behaves as Stripe's API (version 2024-06-20) does, driven over real HTTP: keys and
Connect, list paging both ways with `created` filters, `expand[]`, form bodies with bracket nesting,
idempotency keys, events and their retention, signed webhooks, rate limits, faults, invoices and money in
zero- and three-decimal currencies."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import orjson
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.sandbox import serve_in_thread
from connectors.stripe.sandbox import SandboxSize, StripeSandbox, create_app
from connectors.stripe.sandbox.account import Account
from connectors.stripe.sandbox.driver import STREAM_COLLECTIONS, StripeDriver, dev_driver

SIZE = SandboxSize(customers=60, invoices=80, subscriptions=30, payment_intents=20)
DAY = 86_400


@dataclass
class Stripe:
    sandbox: StripeSandbox
    url: str
    http: httpx2.Client

    @property
    def account(self) -> Account:
        return self.sandbox.account()

    def get(self, path: str, params: Any = None, **headers: str) -> httpx2.Response:
        return self.http.get(self.url + path, params=params, headers=headers)

    def post(self, path: str, data: Any = None, **headers: str) -> httpx2.Response:
        return self.http.post(self.url + path, data=data, headers=headers)

    def delete(self, path: str) -> httpx2.Response:
        return self.http.delete(self.url + path)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api() -> Iterator[Stripe]:
    sandbox = StripeSandbox(seed=5, size=SIZE)
    sandbox.faults.rate_limit_enabled = False
    key = sandbox.account().identity.secret_key
    with sandbox, serve_in_thread(create_app(sandbox)) as url, httpx2.Client(headers=bearer(key)) as http:
        yield Stripe(sandbox, url, http)


def error_of(response: httpx2.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def ids(response: httpx2.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


# ---- lists --------------------------------------------------------------------------------------------


def test_lists_are_newest_first_and_page_both_ways(api: Stripe) -> None:
    everything = sorted((c["id"] for c in api.account.collections["customers"].live()), reverse=True)
    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": 25}
    while True:
        response = api.get("/v1/customers", params)
        body = response.json()
        assert body["object"] == "list" and body["url"] == "/v1/customers"
        pages.append(ids(response))
        if not body["has_more"]:
            break
        params = {"limit": 25, "starting_after": pages[-1][-1]}
    assert [i for page in pages for i in page] == everything
    assert [len(page) for page in pages] == [25, 25, 10]
    # Back from the last page: the page before it, still newest first.
    back = api.get("/v1/customers", {"limit": 25, "ending_before": pages[-1][0]})
    assert ids(back) == pages[1] and back.json()["has_more"] is True
    assert api.get("/v1/customers", {"limit": 25, "ending_before": pages[1][0]}).json()["has_more"] is False


def test_the_default_page_is_ten_and_limits_are_checked(api: Stripe) -> None:
    assert len(ids(api.get("/v1/customers"))) == 10
    for limit in (0, 101, "ten"):
        response = api.get("/v1/customers", {"limit": limit})
        assert response.status_code == 400 and error_of(response)["param"] == "limit"
    first = ids(api.get("/v1/customers", {"limit": 2}))
    both = api.get("/v1/customers", {"starting_after": first[0], "ending_before": first[1]})
    assert both.status_code == 400 and error_of(both)["type"] == "invalid_request_error"


def test_an_unknown_cursor_is_a_missing_resource_named_by_its_parameter(api: Stripe) -> None:
    for param in ("starting_after", "ending_before"):
        response = api.get("/v1/customers", {param: "cus_doesnotexist"})
        assert response.status_code == 404
        assert error_of(response) | {"doc_url": None} == {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": param,
            "message": "No such customer: 'cus_doesnotexist'",
            "doc_url": None,
        }


def test_created_filters_bound_the_list(api: Stripe) -> None:
    customers = list(api.account.collections["customers"].live())
    middle = customers[len(customers) // 2]["created"]
    newer = ids(api.get("/v1/customers", {"limit": 100, "created[gte]": middle}))
    older = ids(api.get("/v1/customers", {"limit": 100, "created[lt]": middle}))
    assert set(newer) | set(older) == {c["id"] for c in customers} and not set(newer) & set(older)
    assert all(c["created"] >= middle for c in customers if c["id"] in newer)
    exact = ids(api.get("/v1/customers", {"created": middle}))
    assert exact and all(api.account.find("customers", i)["created"] == middle for i in exact)
    gt = ids(api.get("/v1/customers", {"limit": 100, "created[gt]": middle, "created[lte]": middle + 10 * DAY}))
    assert middle not in {api.account.find("customers", i)["created"] for i in gt}


def test_list_filters_and_canceled_subscriptions(api: Stripe) -> None:
    paid = api.get("/v1/invoices", {"limit": 100, "status": "paid"}).json()["data"]
    assert paid and all(invoice["status"] == "paid" for invoice in paid)
    customer = paid[0]["customer"]
    theirs = api.get("/v1/invoices", {"limit": 100, "customer": customer}).json()["data"]
    assert theirs and all(invoice["customer"] == customer for invoice in theirs)
    listed = api.get("/v1/subscriptions", {"limit": 100}).json()["data"]
    everything = api.get("/v1/subscriptions", {"limit": 100, "status": "all"}).json()["data"]
    canceled = {s["id"] for s in everything if s["status"] == "canceled"}
    assert canceled and not canceled & {s["id"] for s in listed}
    assert len(everything) == SIZE.subscriptions
    bad = api.get("/v1/invoices", {"status": "lost"})
    assert bad.status_code == 400 and error_of(bad)["param"] == "status"


def test_invoice_lines_page_on_their_own(api: Stripe) -> None:
    invoice = next(i for i in api.account.collections["invoices"].live() if len(i["lines"]["data"]) >= 2)
    first = api.get(f"/v1/invoices/{invoice['id']}/lines", {"limit": 1}).json()
    assert first["has_more"] is True and first["data"][0]["object"] == "line_item"
    rest = api.get(f"/v1/invoices/{invoice['id']}/lines", {"starting_after": first["data"][0]["id"]}).json()
    assert [line["id"] for line in first["data"] + rest["data"]] == [line["id"] for line in invoice["lines"]["data"]]


# ---- expand -------------------------------------------------------------------------------------------


def test_expand_replaces_ids_with_objects(api: Stripe) -> None:
    invoices = api.get("/v1/invoices", {"limit": 5, "expand[]": ["data.customer", "data.payment_intent"]}).json()
    for invoice in invoices["data"]:
        assert invoice["customer"]["object"] == "customer"
        assert invoice["payment_intent"] is None or invoice["payment_intent"]["object"] == "payment_intent"
    intent = next(i for i in api.account.collections["payment_intents"].live() if i["invoice"])
    expanded = api.get(f"/v1/payment_intents/{intent['id']}", {"expand[0]": "invoice", "expand[1]": "customer"})
    assert expanded.json()["invoice"]["id"] == intent["invoice"]
    assert expanded.json()["customer"]["id"] == intent["customer"]
    embedded = api.get("/v1/invoices", {"expand[]": "data.lines"})
    assert embedded.status_code == 200
    deep = api.get(f"/v1/invoices/{intent['invoice']}", {"expand[]": "lines.data.price.product"}).json()
    assert all(line["price"]["product"]["object"] == "product" for line in deep["lines"]["data"])
    # The stored objects keep their ids.
    assert isinstance(api.account.find("payment_intents", intent["id"])["invoice"], str)


@pytest.mark.parametrize("path", ["data.owner", "data.currency", "data.customer.email"])
def test_an_unknown_expansion_is_refused_naming_expand(api: Stripe, path: str) -> None:
    response = api.get("/v1/invoices", {"expand[]": path})
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "expand" and error["message"].startswith("This property cannot be expanded")


# ---- form bodies --------------------------------------------------------------------------------------


def test_form_bodies_nest_and_empty_values_unset(api: Stripe) -> None:
    created = api.post(
        "/v1/customers",
        {"email": "ada@example.com", "description": "Engines", "metadata[crm_id]": "42", "metadata[tier]": "gold"},
    ).json()
    assert created["metadata"] == {"crm_id": "42", "tier": "gold"} and created["livemode"] is False
    updated = api.post(f"/v1/customers/{created['id']}", {"metadata[tier]": "", "description": ""}).json()
    assert updated["metadata"] == {"crm_id": "42"} and updated["description"] is None
    cleared = api.post(f"/v1/customers/{created['id']}", {"metadata": ""}).json()
    assert cleared["metadata"] == {}


def test_unknown_parameters_and_json_bodies_are_refused(api: Stripe) -> None:
    unknown = api.post("/v1/customers", {"emial": "typo@example.com"})
    assert unknown.status_code == 400
    assert error_of(unknown)["message"] == "Received unknown parameter: emial" and error_of(unknown)["param"] == "emial"
    listed = api.get("/v1/customers", {"colour": "red"})
    assert listed.status_code == 400 and error_of(listed)["param"] == "colour"
    as_json = api.http.post(api.url + "/v1/customers", json={"email": "a@example.com"})
    assert as_json.status_code == 400 and "Content-Type" in error_of(as_json)["message"]
    assert len(api.account.collections["customers"]) == SIZE.customers


@pytest.mark.parametrize(
    "fields",
    [
        {f"metadata[k{i}]": "v" for i in range(51)},
        {"metadata[" + "k" * 41 + "]": "v"},
        {"metadata[k]": "v" * 501},
    ],
    ids=["51 keys", "41-character key", "501-character value"],
)
def test_metadata_limits(api: Stripe, fields: dict[str, str]) -> None:
    response = api.post("/v1/customers", fields)
    assert response.status_code == 400 and error_of(response)["param"] == "metadata"


def test_metadata_may_not_grow_past_fifty_keys_by_updates(api: Stripe) -> None:
    created = api.post("/v1/customers", {f"metadata[k{i}]": "v" for i in range(50)}).json()
    response = api.post(f"/v1/customers/{created['id']}", {"metadata[one_more]": "v"})
    assert response.status_code == 400 and error_of(response)["param"] == "metadata"


# ---- idempotency ---------------------------------------------------------------------------------------


def test_a_retried_create_is_replayed(api: Stripe) -> None:
    first = api.post("/v1/customers", {"email": "once@example.com"}, **{"Idempotency-Key": "k-1"})
    again = api.post("/v1/customers", {"email": "once@example.com"}, **{"Idempotency-Key": "k-1"})
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert first.headers["Request-Id"] != again.headers["Request-Id"]
    assert again.headers["Original-Request"] == first.headers["Request-Id"]
    assert len(api.account.collections["customers"]) == SIZE.customers + 1


def test_a_key_with_other_parameters_is_an_idempotency_error(api: Stripe) -> None:
    api.post("/v1/customers", {"email": "once@example.com"}, **{"Idempotency-Key": "k-2"})
    other = api.post("/v1/customers", {"email": "twice@example.com"}, **{"Idempotency-Key": "k-2"})
    assert other.status_code == 400 and error_of(other)["type"] == "idempotency_error"
    elsewhere = api.post("/v1/invoices", {"customer": "cus_x"}, **{"Idempotency-Key": "k-2"})
    assert elsewhere.status_code == 400 and "same endpoint" in error_of(elsewhere)["message"]


def test_errors_from_the_endpoint_are_replayed_but_validation_failures_are_not_saved(api: Stripe) -> None:
    missing = api.post("/v1/invoices", {"customer": "cus_gone"}, **{"Idempotency-Key": "k-3"})
    replayed = api.post("/v1/invoices", {"customer": "cus_gone"}, **{"Idempotency-Key": "k-3"})
    assert missing.status_code == replayed.status_code == 404
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json() == missing.json()
    refused = api.post("/v1/customers", {"emial": "typo@example.com"}, **{"Idempotency-Key": "k-4"})
    assert refused.status_code == 400
    fixed = api.post("/v1/customers", {"email": "fixed@example.com"}, **{"Idempotency-Key": "k-4"})
    assert fixed.status_code == 200 and "Idempotent-Replayed" not in fixed.headers


def test_a_concurrent_retry_meets_a_conflict(api: Stripe) -> None:
    api.sandbox.faults.write_latency_ms = 400
    answers: list[int] = []

    def create() -> None:
        with httpx2.Client(headers=bearer(api.account.identity.secret_key)) as http:
            answers.append(
                http.post(
                    api.url + "/v1/customers", data={"email": "c@example.com"}, headers={"Idempotency-Key": "k-5"}
                ).status_code
            )

    first = threading.Thread(target=create)
    first.start()
    while not api.sandbox.idempotency.in_progress(api.account.id, "k-5"):
        time.sleep(0.005)
    create()
    first.join()
    assert sorted(answers) == [200, 409]
    assert len(api.account.collections["customers"]) == SIZE.customers + 1


def test_keys_are_long_lived_but_not_forever(api: Stripe) -> None:
    too_long = api.post("/v1/customers", {"email": "a@example.com"}, **{"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 400
    api.post("/v1/customers", {"email": "a@example.com"}, **{"Idempotency-Key": "k-6"})
    api.sandbox.age(DAY + 1)
    reused = api.post("/v1/customers", {"email": "b@example.com"}, **{"Idempotency-Key": "k-6"})
    assert reused.status_code == 200 and reused.json()["email"] == "b@example.com"


# ---- events ----------------------------------------------------------------------------------------------


def test_every_change_is_an_event_in_order(api: Stripe) -> None:
    created = api.post("/v1/customers", {"email": "e@example.com"}, **{"Idempotency-Key": "k-7"}).json()
    api.post(f"/v1/customers/{created['id']}", {"name": "Eve", "metadata[plan]": "pro"})
    api.delete(f"/v1/customers/{created['id']}")
    events = api.get("/v1/events", {"type": "customer.*"}).json()["data"]
    assert [e["type"] for e in events] == ["customer.deleted", "customer.updated", "customer.created"]
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    created_event, updated = events[2], events[1]
    assert created_event["request"]["idempotency_key"] == "k-7" and created_event["data"]["object"]["name"] is None
    assert updated["data"]["previous_attributes"] == {"name": None, "metadata": {"plan": None}}
    assert updated["data"]["object"]["metadata"] == {"plan": "pro"}
    chosen = api.get("/v1/events", {"types[]": ["customer.created", "customer.deleted"]}).json()["data"]
    assert [e["type"] for e in chosen] == ["customer.deleted", "customer.created"]
    assert api.get(f"/v1/events/{updated['id']}").json() == updated


def test_events_are_kept_thirty_days(api: Stripe) -> None:
    old = api.post("/v1/customers", {"email": "old@example.com"}).json()
    old_event = ids(api.get("/v1/events"))[0]
    api.sandbox.age(31 * DAY)
    api.post(f"/v1/customers/{old['id']}", {"name": "Renamed"})
    assert [e["type"] for e in api.get("/v1/events").json()["data"]] == ["customer.updated"]
    gone = api.get(f"/v1/events/{old_event}")
    assert gone.status_code == 404 and error_of(gone)["code"] == "resource_missing"
    past = api.get("/v1/events", {"starting_after": old_event})
    assert past.status_code == 404 and error_of(past)["param"] == "starting_after"


def test_deleted_customers_answer_with_their_stub(api: Stripe) -> None:
    customer = next(iter(api.account.collections["customers"].live()))
    deleted = api.delete(f"/v1/customers/{customer['id']}").json()
    assert deleted == {"id": customer["id"], "object": "customer", "deleted": True}
    assert api.get(f"/v1/customers/{customer['id']}").json() == deleted
    assert customer["id"] not in ids(api.get("/v1/customers", {"limit": 100}))
    again = api.delete(f"/v1/customers/{customer['id']}")
    assert again.status_code == 404 and error_of(again)["param"] == "id"


# ---- webhooks -------------------------------------------------------------------------------------------


def verified(body: str, header: str, secret: str) -> Any:
    """The event as stripe-python's own check accepts it (raises SignatureVerificationError otherwise)."""
    return stripe.Webhook.construct_event(body, header, secret)  # type: ignore[no-untyped-call]


@dataclass
class Receiver:
    url: str
    deliveries: list[tuple[bytes, str]] = field(default_factory=list)
    failures_left: int = 0
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int) -> list[tuple[bytes, str]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout=10)
            return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver("")

    async def hook(request: Request) -> Response:
        body = await request.body()
        if box.failures_left:
            box.failures_left -= 1
            return Response(status_code=503)
        with box.arrived:
            box.deliveries.append((body, request.headers["stripe-signature"]))
            box.arrived.notify_all()
        return Response(status_code=200)

    with serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        box.url = url + "/hook"
        yield box


def test_webhooks_are_signed_as_stripe_python_verifies(api: Stripe, receiver: Receiver) -> None:
    endpoint = api.post("/v1/webhook_endpoints", {"url": receiver.url, "enabled_events[]": ["customer.created"]}).json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["object"] == "webhook_endpoint"
    api.post("/v1/invoices", {"customer": next(iter(api.account.collections["customers"].live()))["id"]})
    created = api.post("/v1/customers", {"email": "hook@example.com"}).json()
    body, header = receiver.wait_for(1)[0]
    event = verified(body.decode(), header, endpoint["secret"])
    assert event["type"] == "customer.created" and event["data"]["object"]["id"] == created["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        verified(body.decode(), header, "whsec_wrong")
    assert "secret" not in api.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()


def test_a_rolled_secret_signs_beside_the_old_one(api: Stripe, receiver: Receiver) -> None:
    endpoint = api.post("/v1/webhook_endpoints", {"url": receiver.url, "enabled_events[0]": "*"}).json()
    new_secret = api.sandbox.webhooks.roll_secret(endpoint["id"])
    api.post("/v1/customers", {"email": "roll@example.com"})
    body, header = receiver.wait_for(1)[0]
    assert header.count("v1=") == 2
    for secret in (endpoint["secret"], new_secret):
        verified(body.decode(), header, secret)


def test_failed_deliveries_are_retried(api: Stripe, receiver: Receiver) -> None:
    receiver.failures_left = 2
    api.post("/v1/webhook_endpoints", {"url": receiver.url, "enabled_events[0]": "*"})
    api.post("/v1/customers", {"email": "retry@example.com"})
    assert len(receiver.wait_for(1)) == 1
    assert api.sandbox.webhooks.flush()
    assert api.sandbox.webhook_stats.snapshot() == {"delivered": 1, "attempts": 3, "failures": 2}


def test_the_platforms_connect_endpoint_hears_connected_accounts(api: Stripe, receiver: Receiver) -> None:
    secret = api.sandbox.send_events_to(receiver.url)
    api.post("/v1/customers", {"email": "connected@example.com"})
    body, header = receiver.wait_for(1)[0]
    event = verified(body.decode(), header, secret)
    assert event["account"] == api.account.id


# ---- auth, Connect, OAuth ------------------------------------------------------------------------------


def test_keys_are_checked_as_stripe_checks_them(api: Stripe) -> None:
    identity = api.account.identity
    publishable = api.http.get(api.url + "/v1/customers", headers=bearer(identity.publishable_key))
    assert publishable.status_code == 401 and "publishable API key" in error_of(publishable)["message"]
    unknown = api.http.get(api.url + "/v1/customers", headers=bearer("sk_test_000000000000wxyz"))
    assert unknown.status_code == 401
    assert error_of(unknown)["message"] == "Invalid API Key provided: sk_test_" + "*" * 12 + "wxyz"
    nothing = httpx2.get(api.url + "/v1/customers")
    assert nothing.status_code == 401 and error_of(nothing)["type"] == "invalid_request_error"
    basic = base64.b64encode(f"{identity.secret_key}:".encode()).decode()
    assert api.http.get(api.url + "/v1/customers", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    restricted = bearer(identity.restricted_key)
    assert api.http.get(api.url + "/v1/customers", headers=restricted).status_code == 200
    assert api.http.post(api.url + "/v1/customers", headers=restricted).status_code == 403
    live = bearer("sk_live_" + identity.secret_key.removeprefix("sk_test_"))
    assert api.http.get(api.url + "/v1/customers", headers=live).status_code == 401
    api.sandbox.faults.live_keys_enabled = True
    assert api.http.get(api.url + "/v1/customers", headers=live).status_code == 200


def test_the_platform_acts_on_connected_accounts_with_stripe_account(api: Stripe) -> None:
    platform = bearer(api.sandbox.platform.identity.secret_key)
    own = ids(api.http.get(api.url + "/v1/customers", headers=platform))
    theirs = ids(api.http.get(api.url + "/v1/customers", headers={**platform, "Stripe-Account": api.account.id}))
    assert theirs == ids(api.get("/v1/customers")) and not set(own) & set(theirs)
    other = api.sandbox.connected[1].id
    refused = api.get("/v1/customers", **{"Stripe-Account": other})
    assert refused.status_code == 403 and error_of(refused)["code"] == "account_invalid"
    unknown = api.http.get(api.url + "/v1/customers", headers={**platform, "Stripe-Account": "acct_nope"})
    assert unknown.status_code == 403


def test_connect_oauth_issues_keys_for_the_connected_account(api: Stripe) -> None:
    sandbox = api.sandbox
    authorize = httpx2.get(
        api.url + "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": sandbox.client_id,
            "scope": "read_write",
            "state": "s-1",
            "redirect_uri": "https://platform.example/back",
        },
    )
    assert authorize.status_code == 302
    back = parse_qs(urlsplit(authorize.headers["location"]).query)
    assert back["state"] == ["s-1"] and back["code"][0].startswith("ac_")
    token = httpx2.post(
        api.url + "/oauth/token",
        data={"grant_type": "authorization_code", "code": back["code"][0], "client_secret": sandbox.client_secret},
    ).json()
    assert token["stripe_user_id"] == api.account.id and token["token_type"] == "bearer"
    assert token["livemode"] is False and token["scope"] == "read_write"
    assert token["stripe_publishable_key"] == api.account.identity.publishable_key
    with_token = api.http.get(api.url + "/v1/customers", headers=bearer(token["access_token"]))
    assert ids(with_token) == ids(api.get("/v1/customers"))
    spent = httpx2.post(
        api.url + "/oauth/token",
        data={"grant_type": "authorization_code", "code": back["code"][0]},
        headers=bearer(sandbox.client_secret),
    )
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
    refreshed = httpx2.post(
        api.url + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(sandbox.client_secret, ""),
    ).json()
    assert refreshed["refresh_token"] == token["refresh_token"] and refreshed["access_token"] != token["access_token"]
    not_platform = httpx2.post(
        api.url + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        headers=bearer(api.account.identity.secret_key),
    )
    assert not_platform.status_code == 401 and not_platform.json()["error"] == "invalid_client"
    gone = httpx2.post(
        api.url + "/oauth/deauthorize",
        data={"client_id": sandbox.client_id, "stripe_user_id": api.account.id},
        headers=bearer(sandbox.client_secret),
    )
    assert gone.json() == {"stripe_user_id": api.account.id}
    assert api.http.get(api.url + "/v1/customers", headers=bearer(refreshed["access_token"])).status_code == 401


def test_a_key_names_its_account_and_the_platform_sees_its_connected_ones(api: Stripe) -> None:
    own = api.get("/v1/account").json()
    assert own["id"] == api.account.id and own["object"] == "account" and own["charges_enabled"] is True
    platform = bearer(api.sandbox.platform.identity.secret_key)
    acting = api.http.get(api.url + "/v1/account", headers={**platform, "Stripe-Account": api.account.id})
    assert acting.json()["id"] == api.account.id
    assert api.http.get(api.url + f"/v1/accounts/{api.account.id}", headers=platform).json()["id"] == api.account.id
    hidden = api.get(f"/v1/accounts/{api.sandbox.platform.id}")
    assert hidden.status_code == 404 and error_of(hidden)["code"] == "resource_missing"


def test_the_api_version_is_checked_and_echoed(api: Stripe) -> None:
    assert api.get("/v1/customers").headers["Stripe-Version"] == "2024-06-20"
    assert api.get("/v1/customers", **{"Stripe-Version": "2025-06-30.basil"}).headers["Stripe-Version"] == (
        "2025-06-30.basil"
    )
    for version in ("2024-13-01", "latest", "2024-06-20.Basil"):
        response = api.get("/v1/customers", **{"Stripe-Version": version})
        assert response.status_code == 400 and version in error_of(response)["message"]


# ---- limits and faults -----------------------------------------------------------------------------------


def test_test_mode_allows_twenty_five_requests_a_second_per_account(api: Stripe) -> None:
    api.sandbox.faults.rate_limit_enabled = True
    statuses = [api.get("/v1/customers", {"limit": 1}).status_code for _ in range(30)]
    assert statuses.count(200) == 25 and statuses[-1] == 429
    throttled = api.get("/v1/customers")
    assert error_of(throttled)["code"] == "rate_limit" and error_of(throttled)["type"] == "invalid_request_error"
    assert throttled.headers["Stripe-Rate-Limited-Reason"] == "global-rate" and throttled.headers["Request-Id"]
    # Another account has its own budget.
    platform = bearer(api.sandbox.platform.identity.secret_key)
    assert api.http.get(api.url + "/v1/customers", headers=platform).status_code == 200


def test_server_error_storms_say_a_retry_is_safe(api: Stripe) -> None:
    api.sandbox.faults.rate_5xx = 1.0
    response = api.get("/v1/customers")
    assert response.status_code in (500, 502, 503)
    assert response.headers["Stripe-Should-Retry"] == "true" and response.headers["Request-Id"].startswith("req_")
    assert error_of(response)["type"] == "api_error"
    assert api.sandbox.stats.responses_by_status[response.status_code] == 1


def test_throttling_storms_answer_as_the_rate_limit_does(api: Stripe) -> None:
    api.sandbox.faults.rate_429 = 1.0
    response = api.post("/v1/customers", {"email": "storm@example.com"})
    assert response.status_code == 429 and error_of(response)["code"] == "rate_limit"
    assert response.headers["Stripe-Rate-Limited-Reason"] and response.headers["Request-Id"].startswith("req_")
    assert api.sandbox.stats.responses_by_status[429] == 1
    assert len(api.account.collections["customers"]) == SIZE.customers


# ---- invoices, payments, subscriptions, money -------------------------------------------------------------


def customer_paying(api: Stripe, currency: str) -> str:
    return str(next(c["id"] for c in api.account.collections["customers"].live() if c["currency"] == currency))


def test_a_draft_invoice_in_yen_is_built_finalized_and_paid(api: Stripe) -> None:
    customer = customer_paying(api, "jpy")
    draft = api.post("/v1/invoices", {"customer": customer, "currency": "JPY", "metadata[order]": "A-1"}).json()
    assert draft["status"] == "draft" and draft["currency"] == "jpy" and draft["lines"]["data"] == []
    for amount, description in ((3000, "Parts"), (1500, "Assembly")):
        item = api.post(
            "/v1/invoiceitems",
            {
                "customer": customer,
                "invoice": draft["id"],
                "amount": amount,
                "currency": "jpy",
                "description": description,
            },
        )
        assert item.json()["object"] == "invoiceitem" and item.json()["invoice"] == draft["id"]
    built = api.get(f"/v1/invoices/{draft['id']}").json()
    assert [(line["amount"], line["description"]) for line in built["lines"]["data"]] == [
        (3000, "Parts"),
        (1500, "Assembly"),
    ]
    assert built["total"] == built["amount_due"] == 4500
    finalized = api.post(f"/v1/invoices/{draft['id']}/finalize").json()
    assert finalized["status"] == "open" and finalized["payment_intent"].startswith("pi_") and finalized["number"]
    declined = api.post(f"/v1/invoices/{draft['id']}/pay", {"payment_method": "pm_card_chargeDeclined"})
    assert declined.status_code == 402 and error_of(declined)["type"] == "card_error"
    assert error_of(declined)["decline_code"] == "generic_decline"
    paid = api.post(f"/v1/invoices/{draft['id']}/pay", {"payment_method": "pm_card_visa"}).json()
    assert paid["status"] == "paid" and paid["amount_paid"] == 4500 and paid["amount_remaining"] == 0
    intent = api.get(f"/v1/payment_intents/{paid['payment_intent']}").json()
    assert intent["status"] == "succeeded" and intent["amount_received"] == 4500 and intent["invoice"] == paid["id"]
    types = [e["type"] for e in api.get("/v1/events", {"limit": 100}).json()["data"]]
    assert types.index("invoice.paid") < types.index("payment_intent.succeeded") < types.index("invoice.finalized")
    assert "invoice.payment_failed" in types and "payment_intent.payment_failed" in types


def test_three_decimal_amounts_are_multiples_of_ten(api: Stripe) -> None:
    customer = customer_paying(api, "kwd")
    refused = api.post("/v1/invoiceitems", {"customer": customer, "amount": 1005, "currency": "kwd"})
    assert refused.status_code == 400 and error_of(refused)["param"] == "amount"
    assert api.post("/v1/invoiceitems", {"customer": customer, "amount": 1010, "currency": "kwd"}).status_code == 200
    unknown = api.post("/v1/invoiceitems", {"customer": customer, "amount": 100, "currency": "xyz"})
    assert unknown.status_code == 400 and error_of(unknown)["param"] == "currency"


def test_only_drafts_are_deleted_and_only_open_invoices_voided(api: Stripe) -> None:
    customer = customer_paying(api, "eur")
    draft = api.post("/v1/invoices", {"customer": customer}).json()
    assert api.post(f"/v1/invoices/{draft['id']}/void").status_code == 400
    deleted = api.delete(f"/v1/invoices/{draft['id']}").json()
    assert deleted == {"id": draft["id"], "object": "invoice", "deleted": True}
    other = api.post("/v1/invoices", {"customer": customer}).json()
    api.post("/v1/invoiceitems", {"customer": customer, "invoice": other["id"], "amount": 990})
    api.post(f"/v1/invoices/{other['id']}/finalize")
    assert api.delete(f"/v1/invoices/{other['id']}").status_code == 400
    voided = api.post(f"/v1/invoices/{other['id']}/void").json()
    assert voided["status"] == "void" and voided["status_transitions"]["voided_at"]
    assert api.get(f"/v1/payment_intents/{voided['payment_intent']}").json()["status"] == "canceled"


def test_payment_intents_fail_with_declining_cards_and_cancel(api: Stripe) -> None:
    declined = api.post(
        "/v1/payment_intents",
        {"amount": 2000, "currency": "usd", "payment_method": "pm_card_chargeDeclined", "confirm": "true"},
    )
    assert declined.status_code == 402
    error = error_of(declined)
    assert error["code"] == "card_declined" and error["payment_intent"]["status"] == "requires_payment_method"
    intent_id = error["payment_intent"]["id"]
    assert api.get(f"/v1/payment_intents/{intent_id}").json()["last_payment_error"]["code"] == "card_declined"
    canceled = api.post(f"/v1/payment_intents/{intent_id}/cancel").json()
    assert canceled["status"] == "canceled"
    assert api.post(f"/v1/payment_intents/{intent_id}/cancel").status_code == 400


def test_subscriptions_cancel_at_period_end_or_now(api: Stripe) -> None:
    sub = next(s for s in api.account.collections["subscriptions"].live() if s["status"] == "active")
    later = api.post(f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": "true", "metadata[why]": "price"})
    body = later.json()
    assert body["cancel_at_period_end"] is True and body["cancel_at"] == body["current_period_end"]
    assert body["status"] == "active" and body["metadata"]["why"] == "price"
    kept = api.post(f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": "false"}).json()
    assert kept["cancel_at"] is None and kept["canceled_at"] is None
    now = api.delete(f"/v1/subscriptions/{sub['id']}").json()
    assert now["status"] == "canceled" and now["canceled_at"] and now["ended_at"]
    types = [e["type"] for e in api.get("/v1/events", {"type": "customer.subscription.*"}).json()["data"]]
    assert types == ["customer.subscription.deleted", "customer.subscription.updated", "customer.subscription.updated"]
    expanded = api.get(f"/v1/subscriptions/{sub['id']}", {"expand[]": ["customer", "latest_invoice"]}).json()
    assert expanded["customer"]["id"] == sub["customer"]
    assert expanded["latest_invoice"] is None or expanded["latest_invoice"]["object"] == "invoice"


def test_subscriptions_are_created_from_recurring_prices(api: Stripe) -> None:
    customer = customer_paying(api, "gbp")
    prices = api.get("/v1/prices", {"currency": "gbp", "type": "recurring", "limit": 2}).json()["data"]
    created = api.post(
        "/v1/subscriptions",
        {
            "customer": customer,
            "items[0][price]": prices[0]["id"],
            "items[0][quantity]": "3",
            "items[1][price]": prices[1]["id"],
            "trial_period_days": "14",
        },
    ).json()
    assert created["status"] == "trialing" and created["currency"] == "gbp"
    assert [(i["price"]["id"], i["quantity"]) for i in created["items"]["data"]] == [
        (prices[0]["id"], 3),
        (prices[1]["id"], 1),
    ]
    assert created["trial_end"] - created["trial_start"] == 14 * DAY
    nested = api.post(
        "/v1/subscriptions", {"customer": customer, "items[0][price]": prices[0]["id"], "items[0][colour]": "red"}
    )
    assert error_of(nested)["message"] == "Received unknown parameter: items[0][colour]"
    missing = api.post("/v1/subscriptions", {"customer": customer})
    assert missing.status_code == 400 and error_of(missing)["param"] == "items"


@pytest.mark.parametrize(
    ("path", "fields", "param"),
    [
        ("/v1/invoiceitems", {"amount": "12.50", "currency": "usd"}, "amount"),
        ("/v1/invoiceitems", {"amount": "-5", "currency": "usd"}, "amount"),
        ("/v1/payment_intents", {"amount": "0", "currency": "usd"}, "amount"),
        ("/v1/payment_intents", {"amount": "100"}, "currency"),
        ("/v1/webhook_endpoints", {"url": "ftp://example.com", "enabled_events[0]": "*"}, "url"),
    ],
    ids=["fractional amount", "negative amount", "zero payment", "no currency", "not an http URL"],
)
def test_bad_values_name_their_parameter(api: Stripe, path: str, fields: dict[str, str], param: str) -> None:
    customer = customer_paying(api, "usd")
    response = api.post(path, {**({"customer": customer} if path == "/v1/invoiceitems" else {}), **fields})
    assert response.status_code == 400 and error_of(response)["param"] == param


def test_events_take_at_most_twenty_types(api: Stripe) -> None:
    response = api.get("/v1/events", {"types[]": [f"customer.t{i}" for i in range(21)]})
    assert response.status_code == 400 and error_of(response)["param"] == "types"


def test_the_control_routes_send_every_event_to_a_url(api: Stripe, receiver: Receiver) -> None:
    answer = httpx2.put(api.url + "/_sandbox/webhooks", content=orjson.dumps({"url": receiver.url}))
    api.post("/v1/customers", {"email": "ctl@example.com"})
    body, header = receiver.wait_for(1)[0]
    assert verified(body.decode(), header, answer.json()["secret"])["type"] == "customer.created"
    refused = httpx2.put(api.url + "/_sandbox/webhooks", content=orjson.dumps({"url": "mailto:x"}))
    assert refused.status_code == 400


# ---- seeding and the driver ----------------------------------------------------------------------------


def test_the_seed_has_every_currency_and_status() -> None:
    account = StripeSandbox(seed=9, size=SandboxSize(customers=300, invoices=300, subscriptions=80)).account()
    collections = account.collections
    assert {c["currency"] for c in collections["customers"].live()} == {"usd", "eur", "gbp", "jpy", "kwd"}
    assert {i["status"] for i in collections["invoices"].live()} == {"draft", "open", "paid", "void"}
    assert {s["status"] for s in collections["subscriptions"].live()} == {"active", "trialing", "past_due", "canceled"}
    assert {p["status"] for p in collections["payment_intents"].live()} == {
        "succeeded",
        "requires_payment_method",
        "canceled",
    }
    for invoice in collections["invoices"].live():
        assert invoice["total"] == sum(line["amount"] for line in invoice["lines"]["data"])
        if invoice["currency"] == "kwd":
            assert all(line["amount"] % 10 == 0 for line in invoice["lines"]["data"])
    for name, store in collections.items():
        listed = [obj["id"] for obj in store.live()]
        assert listed == sorted(listed), name
        assert [obj["created"] for obj in store.live()] == sorted(obj["created"] for obj in store.live()), name


def test_the_same_seed_makes_the_same_sandbox() -> None:
    # A benchmark counts what a sandbox in another process holds by seeding a twin.
    first, second = (StripeSandbox(seed=21, size=SandboxSize(customers=40, invoices=40)) for _ in range(2))
    assert first.client_id == second.client_id and first.client_secret == second.client_secret
    assert first.account().identity == second.account().identity
    for name, store in first.account().collections.items():
        assert list(store.live()) == list(second.account().collections[name].live()), name
    assert StripeSandbox(seed=22, size=SandboxSize(customers=40)).account().id != first.account().id


def test_the_driver_creates_changes_and_deletes_customers() -> None:
    driver = dev_driver(40)
    assert set(STREAM_COLLECTIONS) >= {driver.main_stream, *driver.write_streams.values()}
    created = driver.create()
    assert created in driver.expected_ids("customers")
    driver.update(created)
    assert driver.get("Customer", created)["description"]
    driver.delete(created)
    assert created not in driver.expected_ids("customers") and created in driver.ids("Customer", deleted=True)
    sub = next(iter(driver.ids("BillingSubscription")))
    driver.change("BillingSubscription", sub)
    assert driver.get("BillingSubscription", sub)["metadata"]["edited_in"] == "dashboard"
    with pytest.raises(KeyError):
        driver.expected_ids("tickets")


def test_the_drivers_write_cases_name_seeded_records() -> None:
    driver = StripeDriver(StripeSandbox(seed=11, size=SandboxSize(customers=30, invoices=30)))
    cases = driver.cases()
    assert set(cases) == set(driver.write_streams)
    invoice = cases["Invoice"].create
    assert driver.get("Customer", invoice["customerRemoteId"])["currency"] == "jpy"
    assert {line["amount"]["currency"] for line in invoice["lines"]} == {"JPY"}
    price = cases["BillingSubscription"].create["items"][0]["priceRemoteId"]
    assert driver.account.find("prices", price)["recurring"]["interval"] == "month"


def test_the_driver_serves_over_http_with_connect_tokens() -> None:
    driver = dev_driver(20)
    with driver.serve() as endpoints:
        assert endpoints.base_url is not None
        credentials = driver.tokens()
        assert credentials.access_token and credentials.refresh_token
        assert credentials.extra["stripe_user_id"] == driver.account.id
        response = httpx2.get(endpoints.base_url + "/v1/customers", headers=bearer(credentials.access_token))
        assert len(response.json()["data"]) == 10
        driver.expire_tokens()
        assert (
            httpx2.get(endpoints.base_url + "/v1/customers", headers=bearer(credentials.access_token)).status_code
            == 401
        )


def test_events_can_be_aged_through_the_control_routes(api: Stripe) -> None:
    api.post("/v1/customers", {"email": "aged@example.com"})
    assert len(ids(api.get("/v1/events"))) == 1
    assert httpx2.post(api.url + "/_sandbox/clock", content=orjson.dumps({"advance_s": 31 * DAY})).status_code == 200
    assert ids(api.get("/v1/events")) == []
