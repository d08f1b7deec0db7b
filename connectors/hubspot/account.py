"""The HubSpot account's currencies, which amounts without their own currency (a company's annual revenue,
a deal with no `deal_currency_code`) are kept in."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.kit.errors import ProviderError
from connectors.kit.http import ProviderSession
from connectors.kit.mapping import ACCOUNT_CURRENCIES, ACCOUNT_CURRENCY

# The account-facts table the deals and companies streams read (mapping.py names it in MoneyAt).
ACCOUNT = "account"


@dataclass(frozen=True)
class AccountCurrencies:
    """`companyCurrency` and `additionalCurrencies` from `GET /account-info/v3/details`.

    An account (or a stand-in) that does not serve the endpoint gives an empty table: amounts whose record
    names no currency then read as null, never in a guessed currency."""

    async def read(self, session: ProviderSession) -> dict[str, str]:
        try:
            details = await session.get_json("/account-info/v3/details")
        except ProviderError as error:
            if error.status in (403, 404):
                return {}
            raise
        company = details.get("companyCurrency") if isinstance(details, dict) else None
        if not isinstance(company, str) or not company:
            return {}
        others = [code for code in details.get("additionalCurrencies") or [] if isinstance(code, str)]
        return {
            ACCOUNT_CURRENCY: company.upper(),
            ACCOUNT_CURRENCIES: " ".join(sorted({company.upper(), *(code.upper() for code in others)})),
        }
