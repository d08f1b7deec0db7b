"""stripe-python, Stripe's official client, driven against the Stripe sandbox: a client written against the real
API pages, writes, retries idempotently, verifies webhooks and reads errors the same way here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import stripe

from connectors.kit.sandbox import serve_in_thread
from connectors.stripe.sandbox import SandboxSize, StripeSandbox, create_app
from connectors.stripe.sandbox.account import Account

API_VERSION = "2024-06-20"


@dataclass
class Sdk:
    sandbox: StripeSandbox
    url: str
    client: stripe.StripeClient

    @property
    def account(self) -> Account:
        return self.sandbox.account()

    def client_for(self, key: str) -> stripe.StripeClient:
        return stripe.StripeClient(
            key,
            base_addresses={"api": self.url, "connect": self.url},
            stripe_version=API_VERSION,
            max_network_retries=0,
        )


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    sandbox = StripeSandbox(seed=13, size=SandboxSize(customers=230, invoices=40, subscriptions=10))
    sandbox.faults.rate_limit_enabled = False
    with sandbox, serve_in_thread(create_app(sandbox)) as url:
        box = Sdk(sandbox, url, stripe.StripeClient("unused"))
        box.client = box.client_for(sandbox.account().identity.secret_key)
        yield box


def test_auto_paging_walks_every_customer_newest_first(sdk: Sdk) -> None:
    walked = [customer.id for customer in sdk.client.customers.list(params={"limit": 100}).auto_paging_iter()]
    assert walked == sorted((c["id"] for c in sdk.account.collections["customers"].live()), reverse=True)
    assert sdk.sandbox.stats.requests["GET /v1/customers"] == 3


def test_customers_are_created_updated_and_deleted(sdk: Sdk) -> None:
    created = sdk.client.customers.create(
        params={"email": "ada@example.com", "name": "Ada", "metadata": {"crm_id": "42"}}
    )
    assert created.object == "customer" and created.metadata == {"crm_id": "42"}
    updated = sdk.client.customers.update(created.id, params={"metadata": {"crm_id": ""}, "phone": "+44 20 7946 0000"})
    assert updated.metadata == {} and updated.phone == "+44 20 7946 0000"
    deleted = sdk.client.customers.delete(created.id)
    assert deleted.deleted is True
    assert sdk.client.customers.retrieve(created.id).get("deleted") is True


def test_an_idempotent_retry_creates_one_customer(sdk: Sdk) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "create-ada"}
    first = sdk.client.customers.create(params={"email": "ada@example.com"}, options=options)
    again = sdk.client.customers.create(params={"email": "ada@example.com"}, options=options)
    assert first.id == again.id
    assert len(sdk.account.collections["customers"]) == 231
    with pytest.raises(stripe.IdempotencyError):
        sdk.client.customers.create(params={"email": "eve@example.com"}, options=options)


def test_errors_arrive_as_stripe_pythons_classes(sdk: Sdk) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sdk.client.customers.retrieve("cus_missing")
    assert missing.value.code == "resource_missing" and missing.value.param == "id"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sdk.client.invoices.list(params={"expand": ["data.owner"]})
    assert unknown.value.param == "expand"
    with pytest.raises(stripe.CardError) as declined:
        sdk.client.payment_intents.create(
            params={"amount": 1500, "currency": "jpy", "payment_method": "pm_card_chargeDeclined", "confirm": True}
        )
    assert declined.value.code == "card_declined" and declined.value.http_status == 402
    with pytest.raises(stripe.AuthenticationError):
        sdk.client_for(sdk.account.identity.publishable_key).customers.list()
    sdk.sandbox.faults.rate_limit_enabled = True
    sdk.sandbox.faults.rate_limit_max = 1
    sdk.client.customers.list()
    with pytest.raises(stripe.RateLimitError) as limited:
        sdk.client.customers.list()
    assert limited.value.http_status == 429


def test_expanded_lists_and_money_in_yen(sdk: Sdk) -> None:
    invoices = sdk.client.invoices.list(params={"limit": 100, "expand": ["data.customer"]})
    yen = [invoice for invoice in invoices.data if invoice.currency == "jpy"]
    assert yen and all(isinstance(invoice.customer, stripe.Customer) for invoice in yen)
    assert all(isinstance(line.amount, int) for invoice in yen for line in invoice.lines.data)


def test_connect_oauth_through_the_sdk(sdk: Sdk) -> None:
    platform = sdk.client_for(sdk.sandbox.platform.identity.secret_key)
    url = platform.oauth.authorize_url(
        params={"client_id": sdk.sandbox.client_id, "scope": "read_write", "redirect_uri": "https://p.example/back"}
    )
    local = sdk.url + urlsplit(url).path + "?" + urlsplit(url).query
    code = parse_qs(urlsplit(httpx2.get(local).headers["location"]).query)["code"][0]
    token = platform.oauth.token(params={"grant_type": "authorization_code", "code": code})
    assert token.stripe_user_id == sdk.account.id
    assert token.access_token is not None
    connected = sdk.client_for(token.access_token)
    assert connected.customers.list().data[0].id == sdk.client.customers.list().data[0].id
    as_platform = platform.customers.list(options={"stripe_account": sdk.account.id})
    assert as_platform.data[0].id == sdk.client.customers.list().data[0].id
