"""A Salesforce org's currencies, which its amounts are kept in.

A single-currency org keeps every amount in its one currency (`Organization.DefaultCurrencyIsoCode`) and
its records have no CurrencyIsoCode. A multi-currency org gives each record a CurrencyIsoCode, one of its
active `CurrencyType`s; that object exists only in a multi-currency org (elsewhere: INVALID_TYPE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.kit.errors import ProviderError
from connectors.kit.http import ProviderSession
from connectors.kit.mapping import ACCOUNT_CURRENCIES, ACCOUNT_CURRENCY
from connectors.salesforce.query import API

# The account-facts table the accounts and opportunities streams read (mapping.py names it in MoneyAt).
ORG = "org"
# What Salesforce answers a query of an sObject the org does not have (CurrencyType in a single-currency org).
NO_SUCH_SOBJECT = "INVALID_TYPE"


async def _records(session: ProviderSession, soql: str) -> list[dict[str, Any]] | None:
    """The query's records; None when the org (or a stand-in) does not serve that sObject or the query."""
    try:
        body = await session.get_json(f"{API}/query", params={"q": soql})
    except ProviderError as error:
        if error.status in (403, 404) or error.provider_code == NO_SUCH_SOBJECT:
            return None
        raise
    return [record for record in body.get("records") or [] if isinstance(record, dict)]


@dataclass(frozen=True)
class OrgCurrencies:
    """The org's corporate currency and the currencies its records may be in. An org that answers neither
    query gives an empty table: amounts without a CurrencyIsoCode then read as null, never guessed."""

    async def read(self, session: ProviderSession) -> dict[str, str]:
        types = await _records(session, "SELECT IsoCode, IsCorporate FROM CurrencyType WHERE IsActive = true")
        if types:
            codes = sorted({str(t["IsoCode"]).upper() for t in types if t.get("IsoCode")})
            corporate = next((str(t["IsoCode"]).upper() for t in types if t.get("IsCorporate")), None)
            table = {ACCOUNT_CURRENCIES: " ".join(codes)}
            if corporate:
                table[ACCOUNT_CURRENCY] = corporate
            return table
        organization = await _records(session, "SELECT DefaultCurrencyIsoCode FROM Organization")
        code = (organization or [{}])[0].get("DefaultCurrencyIsoCode")
        if not isinstance(code, str) or not code:
            return {}
        # A single-currency org: its one currency is the only one a record may be in.
        return {ACCOUNT_CURRENCY: code.upper(), ACCOUNT_CURRENCIES: code.upper()}
