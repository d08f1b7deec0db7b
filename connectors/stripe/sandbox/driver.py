"""The Stripe sandbox as the kit drives it: in `xkit dev`, the conformance suite and the writeback suite.

The connection's account is the main connected account: its tokens come from the platform's Connect OAuth
app (an access token is a secret key for that account), its records are customers (the main stream, each with
`metadata.segment`), invoices, payment_intents, subscriptions (canceled ones too), products, prices and charges.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connectors.kit.credentials import Credentials
from connectors.kit.oauth import OAuthApp
from connectors.kit.registry import DriverBase, Endpoints, WriteCase, in_proportion
from connectors.kit.sandbox import serve_in_thread
from connectors.stripe.connector import ACCOUNT_KEY, STRIPE
from connectors.stripe.sandbox.account import Account
from connectors.stripe.sandbox.app import create_app
from connectors.stripe.sandbox.data import SEGMENT_KEY, SandboxSize
from connectors.stripe.sandbox.sandbox import StripeSandbox
from connectors.stripe.sandbox.webhooks import new_secret

SEED = 42
PAGE_SIZE = 100  # Stripe's largest list page: what the connector asks for
# Common model -> the connector's stream its writes land in.
WRITE_STREAMS = {"Customer": "customers", "Invoice": "invoices", "BillingSubscription": "subscriptions"}
STREAM_COLLECTIONS = {
    "customers": "customers",
    "invoices": "invoices",
    "payment_intents": "payment_intents",
    "subscriptions": "subscriptions",
    "products": "products",
    "prices": "prices",
    "charges": "charges",
}
MODEL_COLLECTIONS = {"Customer": "customers", "Invoice": "invoices", "BillingSubscription": "subscriptions"}


class StripeDriver(DriverBase[StripeSandbox]):
    """Stripe throttles with 429 (no Retry-After). A connection's custom fields are its objects' `metadata`."""

    provider, throttle_knob = "stripe", "rate_429"
    main_stream, page_size, custom_field_path = "customers", PAGE_SIZE, f"metadata.{SEGMENT_KEY}"

    write_streams = WRITE_STREAMS

    def __init__(self, sandbox: StripeSandbox) -> None:
        super().__init__(sandbox)
        # The platform's Connect webhook endpoint secret, made before the endpoint so the demo app can hold it.
        self.webhook_secret = new_secret()

    @property
    def account(self) -> Account:
        return self.sandbox.account()

    @property
    def api_key(self) -> str:
        """The main account's own secret key: what a connection made with a key (not through Connect) sends."""
        return self.account.identity.secret_key

    def dev_credentials(self) -> Credentials:
        """A key, as most Stripe users connect (not Connect): the account's own secret key, with the API version
        a connection made today pins and the account id its webhooks name."""
        pinned = {**STRIPE.pinned, ACCOUNT_KEY: self.account.identity.id}
        return Credentials(api_key=self.api_key, extra=pinned)

    @contextmanager
    def serve(self, port: int | None = None) -> Iterator[Endpoints]:
        with serve_in_thread(create_app(self.sandbox), port=port or 0) as url:
            app = OAuthApp(
                self.sandbox.client_id,
                self.sandbox.client_secret,
                authorize_url=f"{url}/oauth/authorize",
                base_url=url,
                webhook_secret=self.webhook_secret,
            )
            yield Endpoints(app, url, (url,))

    def expected_ids(self, stream: str) -> set[str]:
        collection = STREAM_COLLECTIONS.get(stream)
        if collection is None:
            raise KeyError(f"the Stripe sandbox has no stream {stream!r}; it has {', '.join(STREAM_COLLECTIONS)}")
        return {obj["id"] for obj in self.account.collections[collection].live()}

    def create(self) -> str:
        n = self.serial()
        fields = {"email": f"conformance{n}@example.com", "name": f"Conformance {n}", "metadata": {SEGMENT_KEY: "smb"}}
        return str(self.account.create_customer(fields)["id"])

    def update(self, remote_id: str) -> None:
        self.account.update_customer(remote_id, {"description": f"Changed {self.serial()}"})

    def delete(self, remote_id: str) -> None:
        self.account.delete_customer(remote_id)

    def push_changes_to(self, gateway_url: str) -> None:
        """Every account's events, to the gateway's Stripe intake, through a Connect endpoint of the platform
        signed with the endpoint's own `whsec_` secret, as Stripe signs them (the app `serve` hands out holds it)."""
        self.sandbox.send_events_to(f"{gateway_url}/webhooks/stripe", self.webhook_secret)

    def age_events(self, days: int) -> None:
        """Move the sandbox clock `days` forward: events older than 30 days are gone from /v1/events."""
        self.sandbox.age(days * 86_400)

    # ---- writeback ---------------------------------------------------------------------------------------

    def ids(self, model: str, *, deleted: bool = False) -> set[str]:
        store = self.account.collections[self._collection(model)]
        if deleted:
            if model == "BillingSubscription":
                return {obj["id"] for obj in store.live() if obj["status"] == "canceled"}
            return set(store.deleted)
        return {obj["id"] for obj in store.live()}

    def get(self, model: str, remote_id: str) -> dict[str, Any]:
        found = self.account.collections[self._collection(model)].objects.get(remote_id)
        if found is None:
            raise KeyError(f"the Stripe sandbox has no {model} {remote_id}")
        return found

    def change(self, model: str, remote_id: str) -> None:
        """Someone edits the object in the Dashboard: its metadata gains a note."""
        self._collection(model)
        changes = {"metadata": {"edited_in": "dashboard"}}
        if model == "Customer":
            self.account.update_customer(remote_id, changes)
        elif model == "Invoice":
            self.account.update_invoice(remote_id, changes)
        else:
            self.account.update_subscription(remote_id, changes)

    def cases(self) -> dict[str, WriteCase]:
        """A customer; a draft invoice in yen for the first seeded JPY customer; a subscription to a seeded monthly
        price, then set to cancel at the period's end (Stripe starts subscriptions from a price and a customer: a
        connector may refuse the create and take only the update and the cancel)."""
        customer = WriteCase(
            {
                "email": f"ada.{uuid.uuid4().hex[:8]}@engines.example",
                "name": "Ada Lovelace",
                "phone": "+44 20 7946 0000",
                "description": "Analytical Engines",
                "metadata": {"crm_id": "ENG-1042"},
            },
            {"tax_exempt": "exempt"},
            "tax_exempt",
            {"name": "Ada King", "metadata": {"crm_id": "ENG-1043"}},
        )
        invoice = WriteCase(
            {
                "customerRemoteId": self._customer_paying("jpy"),
                "currency": "JPY",
                "lines": [
                    {"description": "Engine parts", "quantity": 2, "amount": {"amount": "3000", "currency": "JPY"}},
                    {"description": "Assembly", "quantity": 1, "amount": {"amount": "1500", "currency": "JPY"}},
                ],
                "metadata": {"order": "A-1042"},
            },
            {"footer": "Thank you for your order"},
            "footer",
            {"metadata": {"order": "A-1042", "channel": "xkit"}},
        )
        subscription = WriteCase(
            {
                "customerRemoteId": self._customer_paying("usd"),
                "items": [{"priceRemoteId": self._recurring_price("usd"), "quantity": 2}],
                "metadata": {"seats": "2"},
            },
            {"description": "Engine lease"},
            "description",
            {"cancelAtPeriodEnd": True, "metadata": {"seats": "2", "reason": "downsizing"}},
        )
        return {"Customer": customer, "Invoice": invoice, "BillingSubscription": subscription}

    def _recurring_price(self, currency: str) -> str:
        prices = self.account.collections["prices"].live()
        return str(next(p["id"] for p in prices if p["currency"] == currency and p["recurring"] is not None))

    def _customer_paying(self, currency: str) -> str:
        return str(next(c["id"] for c in self.account.collections["customers"].live() if c["currency"] == currency))

    @staticmethod
    def _collection(model: str) -> str:
        collection = MODEL_COLLECTIONS.get(model)
        if collection is None:
            raise KeyError(f"the Stripe connector writes no {model}")
        return collection


def dev_driver(customers: int) -> StripeDriver:
    """`customers` customers, an invoice each, a subscription for one in four, standalone payments for one in ten."""
    others = in_proportion(customers, {"invoices": 1, "subscriptions": 4, "payment_intents": 10})
    return StripeDriver(StripeSandbox(seed=SEED, size=SandboxSize(customers=customers, **others)))


def conformance_driver() -> StripeDriver:
    sandbox = StripeSandbox(seed=7, size=SandboxSize(customers=260, invoices=300, subscriptions=60, payment_intents=40))
    sandbox.faults.rate_limit_enabled = False
    return StripeDriver(sandbox)


def writeback_driver() -> StripeDriver:
    sandbox = StripeSandbox(seed=11, size=SandboxSize(customers=30, invoices=30, subscriptions=10, payment_intents=10))
    sandbox.faults.rate_limit_enabled = False
    return StripeDriver(sandbox)
