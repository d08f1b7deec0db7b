"""Salesforce passes the connector conformance suite against its sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count

import pytest

from connectors.kit.credentials import Credentials
from connectors.kit.oauth import OAuthApp
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from tests.conformance import ConnectorConformance, Endpoints, Storm

SOBJECTS = {
    "contacts": "Contact",
    "leads": "Lead",
    "accounts": "Account",
    "opportunities": "Opportunity",
    "users": "User",
    "tasks": "Task",
    "notes": "Note",
}


@dataclass
class SalesforceDriver:
    sandbox: SalesforceSandbox
    provider: str = "salesforce"
    main_stream: str = "contacts"
    page_size: int = 2000
    custom_field_path: str = "Loyalty_Tier__c"
    search_lag_seconds: float = 0.0
    _serial: count[int] = field(default_factory=count)

    @contextmanager
    def serve(self) -> Iterator[Endpoints]:
        with serve_sandbox(self.sandbox) as (login_url, _instance_url):
            app = OAuthApp(
                self.sandbox.client_id,
                self.sandbox.client_secret,
                authorize_url=f"{login_url}/services/oauth2/authorize",
            )
            # No base URL: the token response names the org's instance.
            yield Endpoints(app, None)

    def tokens(self) -> Credentials:
        return Credentials.from_token_response(self.sandbox.mint_tokens())

    def expected_ids(self, stream: str) -> set[str]:
        return self.sandbox.all_ids(SOBJECTS[stream])

    def create(self) -> str:
        n = next(self._serial)
        return self.sandbox.create("Contact", {"LastName": f"Conformance {n}", "Email": f"c{n}@example.org"})

    def update(self, remote_id: str) -> None:
        self.sandbox.update("Contact", remote_id, {"Title": "Changed"})

    def delete(self, remote_id: str) -> None:
        self.sandbox.delete("Contact", remote_id)

    def expire_tokens(self) -> None:
        self.sandbox.expire_sessions()

    def revoke_refresh_token(self, refresh_token: str) -> None:
        self.sandbox.revoke_refresh_token(refresh_token)

    def token_refreshes(self) -> int:
        return self.sandbox.stats.token_refreshes

    def storm(self, kind: Storm, rate: float) -> None:
        if kind == "rate_limited":
            self.sandbox.faults.rate_403 = rate
        else:
            self.sandbox.faults.rate_5xx = rate

    def latency(self, milliseconds: int) -> None:
        self.sandbox.faults.latency_ms = milliseconds


class TestSalesforceConformance(ConnectorConformance):
    @pytest.fixture
    def driver(self) -> Iterator[SalesforceDriver]:
        # Contact as wide as a long-lived org's: 500 fields, whose SELECT does not fit in a URL.
        size = SalesforceSize(
            contacts=250, leads=60, accounts=50, opportunities=70, users=6, tasks=80, notes=50, contact_fields=500
        )
        yield SalesforceDriver(SalesforceSandbox(seed=9, size=size))
