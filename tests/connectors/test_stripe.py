"""The Stripe connector against its sandbox, over HTTP, through the real syncer and gateway: key connections
(and the keys refused), the backfill of every stream with exact money, the Events API for changes and
deletions, its 30-day retention, invoices with more lines than a listing embeds, and Stripe's error envelope."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from sqlalchemy import select

from connectors.kit.declaration import StreamContext
from connectors.kit.errors import ProviderError
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from connectors.stripe import STRIPE
from connectors.stripe.connector import STRIPE_VERSION
from connectors.stripe.sandbox import SandboxSize, StripeSandbox, create_app
from connectors.stripe.sandbox.account import Account
from gateway.dev import _with_local_secrets
from gateway.settings import Settings
from resolvers.ids import parse_connection_id
from sync.storage.store import Store
from sync.storage.tables import stream_states
from sync.tenancy.connections import connection_access, get_connection_row, unseal
from tests.support import (
    Gateway,
    Tenant,
    cached_ids,
    cached_records,
    data,
    error_codes,
    gateway,
    make_streams_due,
    new_tenant,
    run_everything_due,
    stream_errors,
)

CREATE = """mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }"""


@pytest.fixture
def stripe() -> Iterator[StripeSandbox]:
    with StripeSandbox(seed=5, size=SandboxSize(customers=30, invoices=30, subscriptions=8, payment_intents=8)) as box:
        box.faults.rate_limit_enabled = False
        yield box


@pytest.fixture
def stripe_url(stripe: StripeSandbox) -> Iterator[str]:
    with serve_in_thread(create_app(stripe)) as url:
        yield url


@dataclass
class Synced:
    store: Store
    kit: HttpKit
    api: Gateway
    tenant: Tenant
    sandbox: StripeSandbox
    connection_id: uuid.UUID

    @property
    def account(self) -> Account:
        return self.sandbox.account()

    async def again(self) -> None:
        await make_streams_due(self.store, self.connection_id)
        await run_everything_due(self.store, self.kit)

    async def common(self, stream: str, remote_id: str) -> dict[str, Any]:
        rows = [r for r in await cached_records(self.store, self.connection_id, stream) if r.remote_id == remote_id]
        assert len(rows) == 1, (stream, remote_id)
        return dict(rows[0].common)

    async def context(self, stream: str) -> StreamContext:
        row = await get_connection_row(self.store, self.connection_id)
        return StreamContext(self.kit.session(await connection_access(self.store, row)), STRIPE.stream(stream))

    def live(self, collection: str) -> set[str]:
        return {obj["id"] for obj in self.account.collections[collection].live()}

    def objects(self, collection: str) -> list[dict[str, Any]]:
        return list(self.account.collections[collection].live())


async def create_key_connection(api: Gateway, tenant: Tenant, key: str, base_url: str) -> dict[str, Any]:
    given = {"provider": "stripe", "externalUserId": "alice", "credentials": {"apiKey": key}, "baseUrl": base_url}
    return await api.graphql(CREATE, tenant.api_key, input=given)


@pytest_asyncio.fixture
async def synced(
    store: Store, kit: HttpKit, secret_key: str, stripe: StripeSandbox, stripe_url: str
) -> AsyncIterator[Synced]:
    """A secret-key connection made through createConnection, backfilled."""
    async with gateway(store, kit, secret_key) as api:
        tenant = await new_tenant(store)
        created = data(await create_key_connection(api, tenant, stripe.account().identity.secret_key, stripe_url))
        synced = Synced(store, kit, api, tenant, stripe, parse_connection_id(created["createConnection"]["id"]))
        await run_everything_due(store, kit)
        yield synced


async def test_backfill_reads_every_stream(synced: Synced) -> None:
    assert await stream_errors(synced.store, synced.connection_id) == dict.fromkeys(STRIPE.stream_names)
    for stream, collection in (
        ("customers", "customers"),
        ("invoices", "invoices"),
        ("payment_intents", "payment_intents"),
        ("products", "products"),
        ("prices", "prices"),
        ("charges", "charges"),
    ):
        assert await cached_ids(synced.store, synced.connection_id, stream) == synced.live(collection), stream
    # `status=all`: canceled subscriptions too.
    subscriptions = synced.live("subscriptions")
    assert await cached_ids(synced.store, synced.connection_id, "subscriptions") == subscriptions
    statuses = {obj["status"] for obj in synced.objects("subscriptions")}
    assert "canceled" in statuses


async def test_the_connection_keeps_its_api_version_and_sends_it(synced: Synced) -> None:
    row = await get_connection_row(synced.store, synced.connection_id)
    assert row is not None
    credentials = unseal(synced.store, synced.connection_id, row.credentials_encrypted)
    assert credentials.extra["stripe_version"] == STRIPE_VERSION
    ctx = await synced.context("customers")
    response = await ctx.session.request("GET", "/v1/customers", params={"limit": 1})
    assert response.request.headers["stripe-version"] == STRIPE_VERSION
    assert response.request.headers["authorization"] == f"Bearer {synced.account.identity.secret_key}"
    assert "stripe-account" not in response.request.headers


async def test_amounts_are_exact_money_in_each_currency(synced: Synced) -> None:
    invoices = synced.objects("invoices")
    yen = next(i for i in invoices if i["currency"] == "jpy" and i["total"])
    common = await synced.common("invoices", yen["id"])
    assert common["total"] == {"amount": str(yen["total"]), "currency": "JPY"}
    assert common["currency"] == "JPY"
    assert common["status"] == yen["status"].upper() and common["remote_status"] == yen["status"]
    assert len(common["lines"]) == len(yen["lines"]["data"])
    assert common["customer"] == yen["customer"]
    other = next(i for i in invoices if i["currency"] in ("usd", "eur", "gbp") and i["total"] % 100)
    amount = (await synced.common("invoices", other["id"]))["total"]["amount"]
    assert amount == f"{other['total'] // 100}.{other['total'] % 100:02d}"


async def test_created_is_read_as_unix_seconds(synced: Synced) -> None:
    customer = synced.objects("customers")[0]
    [row] = [
        r
        for r in await cached_records(synced.store, synced.connection_id, "customers")
        if r.remote_id == customer["id"]
    ]
    assert int(row.remote_created_at.timestamp()) == customer["created"]


async def test_polls_apply_events_changes_and_deletions(synced: Synced) -> None:
    account = synced.account
    customers = synced.objects("customers")
    changed, deleted = customers[0]["id"], customers[1]["id"]
    account.update_customer(changed, {"name": "Grace Hopper", "metadata": {"tier": "gold"}})
    account.delete_customer(deleted)
    created = account.create_customer({"email": "new@example.com", "name": "New One"})
    await synced.again()
    common = await synced.common("customers", changed)
    assert (common["name"], common["metadata"]) == ("Grace Hopper", {**customers[0]["metadata"], "tier": "gold"})
    assert deleted in await cached_ids(synced.store, synced.connection_id, "customers", deleted=True)
    assert created["id"] in await cached_ids(synced.store, synced.connection_id, "customers")
    state = await _state(synced, "customers")
    assert state["after"].startswith("evt_")


async def test_a_canceled_subscription_is_a_change_not_a_deletion(synced: Synced) -> None:
    account = synced.account
    active = next(s for s in synced.objects("subscriptions") if s["status"] == "active")
    account.cancel_subscription(active["id"])
    await synced.again()
    assert active["id"] in await cached_ids(synced.store, synced.connection_id, "subscriptions")
    common = await synced.common("subscriptions", active["id"])
    assert (common["status"], common["remote_status"]) == ("CANCELED", "canceled")


async def test_an_invoice_with_more_lines_than_embedded_is_stored_whole(synced: Synced) -> None:
    account = synced.account
    customer = synced.objects("customers")[2]
    draft = account.create_invoice({"customer": customer["id"], "currency": "usd"})
    for n in range(14):
        account.add_invoice_item(
            {"customer": customer["id"], "invoice": draft["id"], "amount": 100 + n, "currency": "usd"}
        )
    await synced.again()
    lines = (await synced.common("invoices", draft["id"]))["lines"]
    assert len(lines) == 14
    assert {line["amount"]["amount"] for line in lines} == {f"1.{n:02d}" for n in range(14)}


async def test_events_older_than_thirty_days_fall_back_to_a_relisting(synced: Synced) -> None:
    account = synced.account
    await synced.again()  # every stream now follows events from an event id
    synced.sandbox.age(31 * 86_400)
    renamed = synced.objects("customers")[3]["id"]
    account.update_customer(renamed, {"name": "After The Gap"})
    await synced.again()
    assert (await synced.common("customers", renamed))["name"] == "After The Gap"
    assert await stream_errors(synced.store, synced.connection_id) == dict.fromkeys(STRIPE.stream_names)
    state = await _state(synced, "customers")
    assert "relist" not in state and ("since" in state or "after" in state)


async def test_a_parameter_error_names_the_parameter(synced: Synced) -> None:
    ctx = await synced.context("customers")
    with pytest.raises(ProviderError) as refused:
        await ctx.session.get_json("/v1/customers", {"expand[]": "data.nonsense"})
    assert refused.value.status == 400
    assert refused.value.field == "expand"
    assert "expand" in refused.value.message


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("pk_test_51HxYzAbCdEfGhIjKlMnOpQr", "publishable"),
        ("not-a-key", "Stripe secret key"),
        ("sk_test_", "Stripe secret key"),
    ],
    ids=["publishable", "malformed", "bare-prefix"],
)
async def test_keys_that_cannot_work_are_refused_before_any_request(
    store: Store, kit: HttpKit, secret_key: str, stripe: StripeSandbox, stripe_url: str, key: str, says: str
) -> None:
    async with gateway(store, kit, secret_key) as api:
        tenant = await new_tenant(store)
        before = stripe.stats.snapshot()
        answer = await create_key_connection(api, tenant, key, stripe_url)
        assert error_codes(answer) == ["BAD_USER_INPUT"]
        [error] = answer["errors"]
        assert error["extensions"]["field"] == "credentials.apiKey"
        assert says in error["message"]
        assert "hint" in error["extensions"]
        assert stripe.stats.snapshot() == before


async def _state(synced: Synced, stream: str) -> dict[str, Any]:
    async with synced.store.reader.connect() as conn:
        cursor = (
            await conn.execute(
                select(stream_states.c.cursor).where(
                    stream_states.c.connection_id == synced.connection_id, stream_states.c.stream == stream
                )
            )
        ).scalar_one()
    return cursor if isinstance(cursor, dict) else orjson.loads(cursor)


async def test_a_live_key_is_refused_where_only_test_keys_belong(
    store: Store, kit: HttpKit, secret_key: str, stripe: StripeSandbox, stripe_url: str
) -> None:
    live = "sk_live_" + stripe.account().identity.secret_key.removeprefix("sk_test_")
    async with gateway(store, kit, secret_key, test_keys_only=True) as api:
        tenant = await new_tenant(store)
        answer = await create_key_connection(api, tenant, live, stripe_url)
        assert error_codes(answer) == ["BAD_USER_INPUT"]
        assert "live key" in answer["errors"][0]["message"]
        test_key = await create_key_connection(api, tenant, stripe.account().identity.secret_key, stripe_url)
        assert data(test_key)["createConnection"]["id"]


def test_xkit_dev_takes_test_keys_only(tmp_path: Path) -> None:
    assert _with_local_secrets(Settings(data_dir=tmp_path / "xkit")).test_keys_only is True


async def test_a_key_connection_learns_its_account_for_webhooks(synced: Synced) -> None:
    row = await get_connection_row(synced.store, synced.connection_id)
    assert row is not None and row.account_id == synced.account.id


async def test_payments_read_their_charge_and_a_declined_attempt_is_failed(synced: Synced) -> None:
    intents = synced.objects("payment_intents")
    paid = next(i for i in intents if i["status"] == "succeeded")
    common = await synced.common("payment_intents", paid["id"])
    assert common["status"] == "SUCCEEDED" and common["method"] == "card"
    currency = paid["currency"].upper()
    assert common["amount_received"]["currency"] == currency
    assert common["amount_refunded"] is not None  # from the charge the listing expands
    declined = next(i for i in intents if i["status"] == "requires_payment_method" and i["last_payment_error"])
    failed = await synced.common("payment_intents", declined["id"])
    assert (failed["status"], failed["remote_status"]) == ("FAILED", "requires_payment_method")
    assert failed["failure_message"] == declined["last_payment_error"]["message"]


async def test_subscription_items_carry_their_price_in_exact_money(synced: Synced) -> None:
    subscription = synced.objects("subscriptions")[0]
    common = await synced.common("subscriptions", subscription["id"])
    [first, *_] = subscription["items"]["data"]
    item = common["items"][0]
    assert item["price_remote_id"] == first["price"]["id"]
    assert item["interval"] == first["price"]["recurring"]["interval"]
    assert item["unit_amount"]["currency"] == first["price"]["currency"].upper()
    assert common["current_period_end"] is not None


async def test_an_imported_token_is_refused_it_names_no_account(store: Store, kit: HttpKit, secret_key: str) -> None:
    async with gateway(store, kit, secret_key) as api:
        tenant = await new_tenant(store)
        given = {"provider": "stripe", "externalUserId": "alice", "credentials": {"accessToken": "sk_test_" + "a" * 24}}
        answer = await api.graphql(CREATE, tenant.api_key, input=given)
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert answer["errors"][0]["extensions"]["field"] == "credentials.apiKey"
