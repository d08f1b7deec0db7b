"""The Stripe connector, declared. Facts: shared/providers/stripe.md.

A connection holds a secret or restricted key (`sk_`/`rk_`, sent as a Bearer token), or is a Connect
account authorized through the platform's Stripe app (connect.stripe.com OAuth, no PKCE); its requests then
carry the platform's own key (the app's client secret, read at each request) and `Stripe-Account`. Each
connection keeps the API version it was made with (`stripe_version`) and sends it on every request, so the
shapes it stores never change under it; older connections without one get the connector's version.

Streams are listed newest first (`limit=100`, `starting_after`) for the backfill; after it, Stripe's Events
API brings every change (connectors/stripe/events.py). Stripe's test mode allows 25 requests a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.kit.declaration import Connector, KeyAccount, Stream
from connectors.kit.egress import HostPatterns, ProviderHosts
from connectors.kit.errors import Conflict
from connectors.kit.keys import ApiKey, KeyFormat
from connectors.kit.mapping import ModelMapping
from connectors.kit.oauth import OAuth2
from connectors.kit.ratelimit import RateLimit
from connectors.kit.token_calls import TokenCall
from connectors.stripe.catalog import METADATA_CATALOGS
from connectors.stripe.errors import parse_error
from connectors.stripe.events import StripeEvents
from connectors.stripe.mapping import CUSTOMER_MAPPING, INVOICE_MAPPING, PAYMENT_MAPPING, SUBSCRIPTION_MAPPING
from connectors.stripe.reads import ById, InvoiceListing, listing
from connectors.stripe.webhooks import SIGNATURE, StripeDeliveries
from connectors.stripe.writes import CUSTOMER_WRITER, InvoiceWriter, SubscriptionWriter

STRIPE_VERSION = "2024-06-20"
# Where a connection keeps what names it at Stripe.
VERSION_KEY = "stripe_version"
ACCOUNT_KEY = "stripe_user_id"

STRIPE_HOSTS = HostPatterns(("api.stripe.com",))
CONNECT_HOSTS = HostPatterns(("connect.stripe.com",))

KEY_FORMAT = KeyFormat(
    prefixes=("sk_test_", "sk_live_", "rk_test_", "rk_live_"),
    refused={
        "pk_": "a publishable key (pk_...) only identifies an account in browsers and cannot read its data: "
        "use a secret key (sk_...) or a restricted key (rk_...) from the Stripe dashboard's API keys page",
    },
    live_prefixes=("sk_live_", "rk_live_"),
    pattern=r"[sr]k_(?:test|live)_[A-Za-z0-9]{16,247}",
    hint="a Stripe secret key (sk_test_... or sk_live_...) or restricted key (rk_...)",
)


@dataclass(frozen=True)
class PinnedVersion:
    """What a Connect connection keeps from the moment it is made: the API version then current (no
    request; the token answer's `stripe_user_id` is kept as it comes)."""

    keeps: tuple[str, ...] = (VERSION_KEY,)
    base_url_key: None = None

    async def learn(self, call: TokenCall, access_token: str) -> dict[str, Any]:
        return {VERSION_KEY: STRIPE_VERSION}


def events_of(kind: str, *actions: str) -> tuple[str, ...]:
    return tuple(f"{kind}.{action}" for action in actions)


@dataclass(frozen=True)
class Changes:
    """A stream's event types: those that change its objects, those that delete them, and those about
    another object naming one of them (an invoice item's `invoice`)."""

    changed: tuple[str, ...]
    deleted: tuple[str, ...] = ()
    naming: Mapping[str, str] | None = None

    @property
    def types(self) -> tuple[str, ...]:
        return self.changed + self.deleted + tuple(self.naming or {})


def _lines_left_out(invoice: dict[str, Any]) -> bool:
    lines = invoice.get("lines")
    return isinstance(lines, dict) and bool(lines.get("has_more"))


def _every_copy(obj: dict[str, Any]) -> bool:
    return True


def stripe_stream(
    name: str,
    path: str,
    changes: Changes,
    *,
    mapping: ModelMapping | None = None,
    params: Mapping[str, Any] | None = None,
    lookup_params: Mapping[str, Any] | None = None,
    invoices: bool = False,
    stale_when: Callable[[dict[str, Any]], bool] | None = None,
    **more: Any,
) -> Stream:
    pages = InvoiceListing(listing(params)) if invoices else listing(params)
    lookup = ById(path, lookup_params or {}, invoices=invoices)
    return Stream(
        name=name,
        path=path,
        pagination=pages,
        incremental=StripeEvents(
            changes.types,
            relist=pages,
            refetch=lookup.read,
            deleted_types=frozenset(changes.deleted),
            stale_when=stale_when,
            subject_of=dict(changes.naming or {}),
        ),
        mapping=mapping,
        created_at="created",
        epoch_unit="seconds",
        lookup=lookup,
        **more,
    )


CUSTOMER_EVENTS = Changes(events_of("customer", "created", "updated"), deleted=("customer.deleted",))
INVOICE_EVENTS = Changes(
    events_of(
        "invoice",
        "created",
        "updated",
        "finalized",
        "finalization_failed",
        "paid",
        "payment_failed",
        "payment_succeeded",
        "marked_uncollectible",
        "voided",
        "sent",
        "overdue",
    ),
    deleted=("invoice.deleted",),
    # Adding, changing or removing a draft's item changes the invoice's lines.
    naming={f"invoiceitem.{action}": "invoice" for action in ("created", "updated", "deleted")},
)
PAYMENT_EVENTS = Changes(
    events_of(
        "payment_intent",
        "created",
        "processing",
        "requires_action",
        "amount_capturable_updated",
        "partially_funded",
        "succeeded",
        "payment_failed",
        "canceled",
    )
)
# A cancelled subscription stays, canceled: `customer.subscription.deleted` is a change, not a deletion.
SUBSCRIPTION_EVENTS = Changes(
    events_of(
        "customer.subscription",
        "created",
        "updated",
        "deleted",
        "paused",
        "resumed",
        "trial_will_end",
        "pending_update_applied",
        "pending_update_expired",
    )
)
PRODUCT_EVENTS = Changes(events_of("product", "created", "updated"), deleted=("product.deleted",))
PRICE_EVENTS = Changes(events_of("price", "created", "updated"), deleted=("price.deleted",))
CHARGE_EVENTS = Changes(
    events_of("charge", "captured", "expired", "failed", "pending", "refunded", "succeeded", "updated")
)

STREAMS = (
    stripe_stream("customers", "/v1/customers", CUSTOMER_EVENTS, mapping=CUSTOMER_MAPPING, writer=CUSTOMER_WRITER),
    stripe_stream(
        "invoices",
        "/v1/invoices",
        INVOICE_EVENTS,
        mapping=INVOICE_MAPPING,
        invoices=True,
        stale_when=_lines_left_out,
        writer=InvoiceWriter(),
    ),
    stripe_stream(
        "payment_intents",
        "/v1/payment_intents",
        PAYMENT_EVENTS,
        mapping=PAYMENT_MAPPING,
        # The latest charge tells what was refunded and how it was paid: expanded in the listing, so an
        # event's copy (which names the charge by id) is read again the same way.
        params={"expand[]": "data.latest_charge"},
        lookup_params={"expand[]": "latest_charge"},
        stale_when=_every_copy,
    ),
    stripe_stream(
        "subscriptions",
        "/v1/subscriptions",
        SUBSCRIPTION_EVENTS,
        mapping=SUBSCRIPTION_MAPPING,
        # Without it the listing leaves out canceled subscriptions.
        params={"status": "all"},
        writer=SubscriptionWriter(),
        deletes_are_updates=True,
    ),
    stripe_stream("products", "/v1/products", PRODUCT_EVENTS),
    stripe_stream("prices", "/v1/prices", PRICE_EVENTS),
    stripe_stream("charges", "/v1/charges", CHARGE_EVENTS),
)

CHANGES = {
    "customers": CUSTOMER_EVENTS,
    "invoices": INVOICE_EVENTS,
    "payment_intents": PAYMENT_EVENTS,
    "subscriptions": SUBSCRIPTION_EVENTS,
    "products": PRODUCT_EVENTS,
    "prices": PRICE_EVENTS,
    "charges": CHARGE_EVENTS,
}

STRIPE = Connector(
    name="stripe",
    display_name="Stripe",
    field_catalogs=METADATA_CATALOGS,
    base_url="https://api.stripe.com",
    hosts=ProviderHosts(api=STRIPE_HOSTS, oauth=CONNECT_HOSTS),
    auth=OAuth2(
        authorize_url="https://connect.stripe.com/oauth/authorize",
        token_url="https://connect.stripe.com/oauth/token",
        # On the authorize URL's host: connect.stripe.com, or the app's override (a sandbox).
        token_on_authorize_host=True,
        scopes=("read_write",),
        pkce=False,
        after_token=PinnedVersion(),
    ),
    key_auth=ApiKey(from_credentials={"Stripe-Version": VERSION_KEY}),
    key_format=KEY_FORMAT,
    pinned={VERSION_KEY: STRIPE_VERSION},
    # The account a key belongs to: Stripe's own-account endpoint (the account's events name no account).
    key_account=KeyAccount("/v1/account", keep_as=ACCOUNT_KEY),
    oauth_requests=ApiKey(
        platform_key=True, from_credentials={"Stripe-Version": VERSION_KEY, "Stripe-Account": ACCOUNT_KEY}
    ),
    # A connection made before versions were kept per connection; its own version, when kept, wins.
    default_headers={"Stripe-Version": STRIPE_VERSION},
    # Test mode's 25 requests a second, per account.
    rate_limit=RateLimit(requests=25, per_seconds=1),
    parse_error=parse_error,
    write_error_codes={"idempotency_error": Conflict},
    webhook=SIGNATURE,
    webhook_events=StripeDeliveries(
        {kind: stream for stream, changes in CHANGES.items() for kind in changes.types},
        deleted_types=frozenset(kind for changes in CHANGES.values() for kind in changes.deleted),
        subject_of={kind: at for changes in CHANGES.values() for kind, at in (changes.naming or {}).items()},
    ),
    webhook_account_key=ACCOUNT_KEY,
    webhook_account_param="account",
    streams=STREAMS,
)
