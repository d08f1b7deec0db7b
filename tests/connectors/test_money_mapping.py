"""Deal amounts and company revenues as exact Money on HubSpot and Salesforce: read in the record's currency or
the account's, never a guessed one; written only in a currency the account keeps, never rounded."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

from connectors.hubspot.mapping import DEAL_MAPPING as HUBSPOT_DEALS
from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize
from connectors.hubspot.sandbox import create_app as create_hubspot_sandbox
from connectors.hubspot.sandbox.schema import ADDITIONAL_CURRENCIES, COMPANY_CURRENCY
from connectors.kit.errors import BadInput
from connectors.kit.http import HttpKit
from connectors.kit.mapping import KeptCurrency, MoneyAt, exact_json_number
from connectors.kit.sandbox import serve_in_thread
from connectors.salesforce.mapping import DEAL_MAPPING as SALESFORCE_DEALS
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from resolvers.ids import to_global_id
from sync.storage.store import Store
from tests.support import (
    Gateway,
    Tenant,
    connect_hubspot,
    connect_salesforce,
    data,
    error_codes,
    gateway,
    new_tenant,
    run_everything_due,
)

ACCOUNT_TABLE = {"account": {"currency": "USD", "currencies": "EUR USD"}}
AMOUNT = MoneyAt("amount", currency="currency", currency_table="account", currency_writable=True)


# ---- reading -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "currency", "read"),
    [
        (1234.5, "USD", "1234.50"),
        ("1234.5", "usd", "1234.50"),
        ("1000", "JPY", "1000"),
        ("1.5", "KWD", "1.500"),
        # More decimals than the currency has: kept exactly as sent, never rounded.
        ("10.555", "USD", "10.555"),
        (1e16, "EUR", "10000000000000000.00"),
    ],
    ids=["number", "text", "yen", "dinar", "over-precise", "exponent"],
)
def test_an_amount_reads_exactly_with_its_currencys_decimals(sent: Any, currency: str, read: str) -> None:
    assert AMOUNT.read_labelled({"amount": sent, "currency": currency}, {}) == {
        "amount": read,
        "currency": currency.upper(),
    }


def test_an_amount_whose_record_names_no_currency_is_in_the_accounts_or_null() -> None:
    assert AMOUNT.read_labelled({"amount": "12"}, ACCOUNT_TABLE) == {"amount": "12.00", "currency": "USD"}
    # The account's currency unknown (its table empty): no currency is guessed.
    assert AMOUNT.read_labelled({"amount": "12"}, {"account": {}}) is None
    assert AMOUNT.read_labelled({"amount": "12"}, {}) is None
    assert AMOUNT.read_labelled({"amount": "twelve", "currency": "USD"}, ACCOUNT_TABLE) is None


# ---- writing -----------------------------------------------------------------------------------------


def test_a_write_moves_the_currency_only_to_one_the_account_keeps() -> None:
    usd = KeptCurrency("USD", frozenset({"USD", "EUR"}))
    euros = {"amount": "10.50", "currency": "EUR"}
    assert AMOUNT.write(euros, usd, "amount") == {"amount": "10.50", "currency": "EUR"}
    # Same currency: the currency field is left as it is.
    assert AMOUNT.write({"amount": "10.50", "currency": "USD"}, usd, "amount") == {"amount": "10.50"}
    with pytest.raises(BadInput) as refused:
        AMOUNT.write({"amount": "10.50", "currency": "GBP"}, usd, "amount")
    assert refused.value.extensions == {"field": "amount", "currency": "USD"}
    assert "this account's currencies are EUR, USD" in refused.value.message
    # Where the account did not say which currencies it keeps, the provider decides.
    assert AMOUNT.write({"amount": "1", "currency": "GBP"}, "USD", "amount") == {"amount": "1", "currency": "GBP"}


def test_an_amount_whose_currency_cannot_be_written_must_be_in_the_records() -> None:
    revenue = MoneyAt("revenue", currency_table="account")
    assert revenue.write({"amount": "5.00", "currency": "USD"}, KeptCurrency("USD", None), "annualRevenue") == {
        "revenue": "5.00"
    }
    with pytest.raises(BadInput, match=r"annualRevenue is kept in USD here; .* \(convert it first\)"):
        revenue.write(
            {"amount": "5.00", "currency": "EUR"}, KeptCurrency("USD", frozenset({"USD", "EUR"})), "annualRevenue"
        )


def test_an_over_precise_amount_is_refused_never_rounded() -> None:
    with pytest.raises(BadInput, match=r"10\.555 has more decimals than USD allows"):
        AMOUNT.write({"amount": "10.555", "currency": "USD"}, "USD", "amount")
    with pytest.raises(BadInput, match=r"0\.5 has more decimals than JPY allows"):
        AMOUNT.write({"amount": "0.5", "currency": "JPY"}, "JPY", "amount")


def test_hubspot_takes_amounts_as_decimal_text_salesforce_as_exact_json_numbers() -> None:
    money = {"amount": {"amount": "1234.50", "currency": "USD"}}
    assert HUBSPOT_DEALS.provider_values(money) == {
        "properties.amount": "1234.50",
        "properties.deal_currency_code": "USD",
    }
    written = SALESFORCE_DEALS.provider_values(money, currencies={"amount": KeptCurrency("USD", frozenset({"USD"}))})
    assert orjson.dumps(written) == b'{"Amount":1234.5}'
    assert Decimal(orjson.dumps(exact_json_number(Decimal("0.10"))).decode()) == Decimal("0.10")


def test_salesforce_refuses_an_amount_a_double_cannot_hold() -> None:
    too_long = {"amount": {"amount": "12345678901234567.89", "currency": "USD"}}
    with pytest.raises(BadInput, match="more digits than the provider keeps exactly") as refused:
        SALESFORCE_DEALS.provider_values(too_long, currencies={"amount": KeptCurrency("USD", None)})
    assert refused.value.extensions["field"] == "amount"


# ---- against the sandboxes ---------------------------------------------------------------------------

DEALS = """query($p: String!) { deals(first: 100, filter: {provider: $p}) { edges { node {
    remoteId amount { amount currency } raw } } } }"""
COMPANIES = """query($p: String!) { companies(first: 100, filter: {provider: $p}) { edges { node {
    remoteId annualRevenue { amount currency } raw } } } }"""
UPDATE_DEAL = """mutation($c: ID!, $r: String!, $input: DealInput!) {
    updateDeal(connectionId: $c, remoteId: $r, input: $input) { deal { amount { amount currency } raw } } }"""
SMALL_PORTAL = SandboxSize(contacts=10, companies=8, deals=40, owners=2, notes=1, tasks=1)
SMALL_ORG = SalesforceSize(contacts=10, leads=2, accounts=8, opportunities=30, users=2, tasks=2, notes=2, cases=1)


async def nodes(api: Gateway, tenant: Tenant, query: str, provider: str) -> list[dict[str, Any]]:
    body = data(await api.graphql(query, tenant.api_key, p=provider))
    return [edge["node"] for edge in next(iter(body.values()))["edges"]]


@pytest.fixture
def portal() -> HubSpotSandbox:
    sandbox = HubSpotSandbox(seed=13, size=SMALL_PORTAL)
    sandbox.faults.rate_limit_enabled = False
    return sandbox


@pytest.fixture
def portal_url(portal: HubSpotSandbox) -> Iterator[str]:
    with serve_in_thread(create_hubspot_sandbox(portal)) as url:
        yield url


async def test_hubspot_amounts_are_in_the_deals_currency_or_the_accounts(
    store: Store, kit: HttpKit, secret_key: str, portal: HubSpotSandbox, portal_url: str
) -> None:
    tenant = await new_tenant(store)
    await connect_hubspot(store, tenant, portal, portal_url)
    await run_everything_due(store, kit)
    async with gateway(store, kit, secret_key) as api:
        deals = await nodes(api, tenant, DEALS, "hubspot")
        companies = await nodes(api, tenant, COMPANIES, "hubspot")
    assert len(deals) == SMALL_PORTAL.deals
    for deal in deals:
        properties = deal["raw"]["properties"]
        assert deal["amount"]["currency"] == (properties.get("deal_currency_code") or COMPANY_CURRENCY)
        assert Decimal(deal["amount"]["amount"]) == Decimal(properties["amount"])
    currencies = {deal["amount"]["currency"] for deal in deals}
    assert currencies > {COMPANY_CURRENCY} and currencies <= {COMPANY_CURRENCY, *ADDITIONAL_CURRENCIES}
    assert not all(deal["raw"]["properties"].get("deal_currency_code") for deal in deals)
    # A company's revenue is in the account's currency, with its decimals.
    for company in companies:
        revenue = company["raw"]["properties"]["annualrevenue"]
        assert company["annualRevenue"] == {"amount": f"{revenue}.00", "currency": COMPANY_CURRENCY}


async def test_a_hubspot_account_that_does_not_say_its_currency_syncs_and_guesses_none(
    store: Store, kit: HttpKit, secret_key: str, portal: HubSpotSandbox, portal_url: str
) -> None:
    portal.faults.account_info = False
    tenant = await new_tenant(store)
    connection = await connect_hubspot(store, tenant, portal, portal_url)
    await run_everything_due(store, kit)
    # The connector asked, and the portal answered 404 every time.
    asked = portal.stats.requests["GET /account-info/v3/details"]
    assert asked > 0 and portal.stats.responses_by_status[404] >= asked
    async with gateway(store, kit, secret_key) as api:
        deals = await nodes(api, tenant, DEALS, "hubspot")
        companies = await nodes(api, tenant, COMPANIES, "hubspot")
        assert len(deals) == SMALL_PORTAL.deals and len(companies) == SMALL_PORTAL.companies
        for deal in deals:
            code = deal["raw"]["properties"].get("deal_currency_code")
            assert (deal["amount"] or {}).get("currency") == code
        assert any(deal["amount"] is None for deal in deals) and any(deal["amount"] for deal in deals)
        assert all(company["annualRevenue"] is None for company in companies)

        # A write names its currency, so HubSpot is told it, whatever the account's is.
        unnamed = next(deal for deal in deals if deal["amount"] is None)
        wrote = await api.graphql(
            UPDATE_DEAL,
            tenant.api_key,
            c=to_global_id("Connection", connection),
            r=unnamed["remoteId"],
            input={"amount": {"amount": "99.90", "currency": "GBP"}},
        )
    assert data(wrote)["updateDeal"]["deal"]["amount"] == {"amount": "99.90", "currency": "GBP"}
    assert portal.get("deals", unnamed["remoteId"])["properties"]["deal_currency_code"] == "GBP"


@pytest.mark.parametrize("currencies", [("USD",), ("USD", "EUR", "JPY")], ids=["single-currency", "multi-currency"])
async def test_salesforce_amounts_are_in_the_records_currency_or_the_orgs(
    store: Store, kit: HttpKit, secret_key: str, currencies: tuple[str, ...]
) -> None:
    org = SalesforceSandbox(seed=5, size=dataclasses.replace(SMALL_ORG, currencies=currencies))
    tenant = await new_tenant(store)
    with serve_sandbox(org) as (login_url, _):
        await connect_salesforce(store, tenant, org, login_url)
        await run_everything_due(store, kit)
        async with gateway(store, kit, secret_key) as api:
            deals = await nodes(api, tenant, DEALS, "salesforce")
            companies = await nodes(api, tenant, COMPANIES, "salesforce")
    assert len(deals) == len(org.all_ids("Opportunity"))
    for record, member in [*((d, "amount") for d in deals), *((c, "annualRevenue") for c in companies)]:
        raw = record["raw"]
        amount_field = "Amount" if member == "amount" else "AnnualRevenue"
        assert record[member]["currency"] == raw.get("CurrencyIsoCode", "USD")
        assert Decimal(record[member]["amount"]) == Decimal(repr(raw[amount_field]))
    assert {d["amount"]["currency"] for d in deals} == set(currencies)
    assert ("CurrencyIsoCode" in deals[0]["raw"]) == (len(currencies) > 1)


@pytest.fixture
def single_currency_org() -> SalesforceSandbox:
    org = SalesforceSandbox(seed=6, size=SMALL_ORG)
    org.faults.daily_limit_enabled = False
    return org


async def test_a_single_currency_salesforce_org_takes_amounts_in_its_currency_only(
    store: Store, kit: HttpKit, secret_key: str, single_currency_org: SalesforceSandbox
) -> None:
    org = single_currency_org
    tenant = await new_tenant(store)
    with serve_sandbox(org) as (login_url, _):
        connection = to_global_id("Connection", await connect_salesforce(store, tenant, org, login_url))
        await run_everything_due(store, kit)
        async with gateway(store, kit, secret_key) as api:
            deal = min(org.all_ids("Opportunity"))
            before = org.get("Opportunity", deal)

            async def write(money: dict[str, str]) -> dict[str, Any]:
                return await api.graphql(UPDATE_DEAL, tenant.api_key, c=connection, r=deal, input={"amount": money})

            euros = await write({"amount": "10.00", "currency": "EUR"})
            assert error_codes(euros) == ["BAD_USER_INPUT"]
            assert euros["errors"][0]["extensions"]["field"] == "amount"
            assert euros["errors"][0]["message"] == (
                "amount is kept in USD here; an amount in EUR cannot be written to it (convert it first)"
            )
            over_precise = await write({"amount": "10.555", "currency": "USD"})
            assert error_codes(over_precise) == ["BAD_USER_INPUT"]
            assert "more decimals than USD allows" in over_precise["errors"][0]["message"]
            assert org.get("Opportunity", deal) == before

            written = data(await write({"amount": "1234.50", "currency": "USD"}))["updateDeal"]["deal"]
    assert written["amount"] == {"amount": "1234.50", "currency": "USD"}
    assert org.get("Opportunity", deal)["Amount"] == 1234.5
    assert "CurrencyIsoCode" not in org.get("Opportunity", deal)


async def test_a_multi_currency_salesforce_org_moves_a_deal_to_another_of_its_currencies(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    org = SalesforceSandbox(seed=6, size=dataclasses.replace(SMALL_ORG, currencies=("USD", "EUR", "JPY")))
    org.faults.daily_limit_enabled = False
    tenant = await new_tenant(store)
    with serve_sandbox(org) as (login_url, _):
        connection = to_global_id("Connection", await connect_salesforce(store, tenant, org, login_url))
        await run_everything_due(store, kit)
        async with gateway(store, kit, secret_key) as api:
            deal = min(org.all_ids("Opportunity"))

            async def write(money: dict[str, str]) -> dict[str, Any]:
                return await api.graphql(UPDATE_DEAL, tenant.api_key, c=connection, r=deal, input={"amount": money})

            yen = data(await write({"amount": "150000", "currency": "JPY"}))["updateDeal"]["deal"]
            assert yen["amount"] == {"amount": "150000", "currency": "JPY"}
            assert (org.get("Opportunity", deal)["Amount"], org.get("Opportunity", deal)["CurrencyIsoCode"]) == (
                150000.0,
                "JPY",
            )
            dinars = await write({"amount": "1.500", "currency": "KWD"})
    assert error_codes(dinars) == ["BAD_USER_INPUT"]
    assert dinars["errors"][0]["message"] == (
        "amount is kept in JPY here; an amount in KWD cannot be written to it (this account's currencies are "
        "EUR, JPY, USD)"
    )
    assert org.get("Opportunity", deal)["CurrencyIsoCode"] == "JPY"
