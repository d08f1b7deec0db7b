"""HubSpot passes the connector conformance suite against its sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count

import pytest

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.hubspot.sandbox.schema import WIDE_CONTACT_PROPERTIES
from connectors.kit.credentials import Credentials
from connectors.kit.oauth import OAuthApp
from connectors.kit.sandbox import serve_in_thread
from tests.conformance import ConnectorConformance, Endpoints, Storm

# Real search lags writes by seconds up to a minute; short enough here to keep the suite fast, long enough
# that a run right after a write does not see it.
SEARCH_LAG_SECONDS = 1.5


@dataclass
class HubSpotDriver:
    sandbox: HubSpotSandbox
    provider: str = "hubspot"
    main_stream: str = "contacts"
    page_size: int = 100
    custom_field_path: str = "properties.favorite_color"
    search_lag_seconds: float = SEARCH_LAG_SECONDS
    _serial: count[int] = field(default_factory=count)

    @contextmanager
    def serve(self) -> Iterator[Endpoints]:
        with serve_in_thread(create_app(self.sandbox)) as url:
            yield Endpoints(OAuthApp(self.sandbox.client_id, self.sandbox.client_secret), url)

    def tokens(self) -> Credentials:
        return Credentials.from_token_response(self.sandbox.mint_tokens())

    def expected_ids(self, stream: str) -> set[str]:
        if stream == "owners":
            return {owner.id for owner in self.sandbox.crm.owners}
        return self.sandbox.all_ids(stream)

    def create(self) -> str:
        n = next(self._serial)
        record = self.sandbox.create("contacts", {"email": f"conformance.{n}@example.org", "firstname": "Con"})
        return str(record["id"])

    def update(self, remote_id: str) -> None:
        self.sandbox.update("contacts", remote_id, {"lastname": "Changed"})

    def delete(self, remote_id: str) -> None:
        self.sandbox.archive("contacts", remote_id)

    def expire_tokens(self) -> None:
        self.sandbox.expire_access_tokens()

    def revoke_refresh_token(self, refresh_token: str) -> None:
        self.sandbox.revoke_refresh_token(refresh_token)

    def token_refreshes(self) -> int:
        return self.sandbox.stats.token_refreshes

    def storm(self, kind: Storm, rate: float) -> None:
        if kind == "rate_limited":
            self.sandbox.faults.rate_429 = rate
        else:
            self.sandbox.faults.rate_5xx = rate

    def latency(self, milliseconds: int) -> None:
        self.sandbox.faults.latency_ms = milliseconds


class TestHubSpotConformance(ConnectorConformance):
    @pytest.fixture
    def driver(self) -> Iterator[HubSpotDriver]:
        # A realistic width: 600 contact properties, more than fit in one list URL.
        size = SandboxSize(
            contacts=230,
            companies=40,
            deals=60,
            owners=6,
            notes=80,
            tasks=50,
            contact_properties=WIDE_CONTACT_PROPERTIES,
        )
        sandbox = HubSpotSandbox(seed=5, size=size)
        sandbox.faults.rate_limit_enabled = False
        sandbox.faults.search_lag_ms = int(SEARCH_LAG_SECONDS * 1000)
        yield HubSpotDriver(sandbox)
