"""`SalesforceSandbox`: one emulated Salesforce org with its connected apps, sessions, fault knobs
and counters, and the Python control API tests use beside HTTP."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.kit.sandbox import Grant, IssuedTokens, Knobs, RequestStats, TokenIssuer, TokenStore
from connectors.kit.sandbox_support import ms_of
from connectors.salesforce.sandbox.cursors import CursorStore
from connectors.salesforce.sandbox.data import SalesforceSize, organization_row, schema_for, seed_org
from connectors.salesforce.sandbox.ids import BASE62, record_id
from connectors.salesforce.sandbox.limits import ApiUsage
from connectors.salesforce.sandbox.org import Org
from connectors.salesforce.sandbox.schema import ORGANIZATION, USER, SObjectType
from connectors.salesforce.sandbox.timestamps import WriteClock

DEFAULT_SCOPES = ("api", "refresh_token")
OFFLINE_SCOPES = frozenset({"refresh_token", "offline_access"})
API_SCOPES = frozenset({"api", "full"})
AUTHORIZATION_CODE_LIFETIME_S = 900
DEFAULT_LOGIN_URL = "http://localhost:8201"
DEFAULT_INSTANCE_URL = "http://127.0.0.1:8202"


@dataclass
class SalesforceFaults(Knobs):
    """Knobs a test or `xkit dev` turns while the org runs (also `PATCH /_sandbox/faults`)."""

    rate_403: float = 0.0  # chance of a random 403 REQUEST_LIMIT_EXCEEDED
    rate_5xx: float = 0.0  # chance of a 503 SERVER_UNAVAILABLE
    latency_ms: int = 0
    session_lifetime_s: int = 7200
    daily_api_limit: int = 15_000
    daily_limit_enabled: bool = True  # off: usage is still reported, never refused
    rotate_refresh_tokens: bool = False


class SalesforceSandbox(TokenIssuer):
    """A deterministic Salesforce org. The same seed and size always give the same records, ids,
    users and connected-app credentials."""

    default_scopes = DEFAULT_SCOPES

    def __init__(self, seed: int = 42, size: SalesforceSize | None = None) -> None:
        self.seed = seed
        self.size = size or SalesforceSize()
        tables = seed_org(seed, self.size)
        self.org = Org(tables, WriteClock(floor_ms=ms_of(2026, 1, 1)), CursorStore(), schema=schema_for(self.size))
        self.user_ids: list[str] = [str(row[0]) for row in tables[USER.name].rows.values()]
        identity = random.Random(f"salesforce-sandbox:{seed}")
        self.org_id = record_id("00D", identity.randrange(1, 62**6))
        self.org.table(ORGANIZATION).load([organization_row(self.org_id, self.size)], [])
        self.client_id = "3MVG9" + "".join(identity.choice(BASE62 + "._") for _ in range(80))
        self.client_secret = "".join(identity.choice("0123456789ABCDEF") for _ in range(64))
        self.apps = {}
        self.register_app(self.client_id, self.client_secret)
        self.faults = SalesforceFaults()
        self.stats = RequestStats()
        self.usage = ApiUsage()
        self.tokens = TokenStore(
            access_prefix=f"{self.org_id[:15]}!",
            refresh_prefix="5Aep861",
            code_lifetime_s=AUTHORIZATION_CODE_LIFETIME_S,
        )
        self.fault_rng = random.Random(seed)
        self.login_url = DEFAULT_LOGIN_URL
        self.instance_url = DEFAULT_INSTANCE_URL

    # ---- connected apps and sessions ---------------------------------------------------------

    def grant(self, client_id: str, scopes: Sequence[str], user_index: int = 0) -> Grant:
        return Grant(client_id=client_id, scopes=tuple(scopes), account_id=0, user_id=user_index)

    def issue_tokens(self, grant: Grant) -> dict[str, Any]:
        offline = bool(OFFLINE_SCOPES.intersection(grant.scopes))
        issued = self.tokens.issue(grant, self.faults.session_lifetime_s, with_refresh=offline)
        self.stats.count_issue(refresh=False)
        return self.token_response(issued)

    def refresh_tokens(self, refresh_token: str, client_id: str) -> dict[str, Any]:
        """Raises UnknownToken for a refresh token this app was never given (or one revoked or rotated)."""
        lifetime = self.faults.session_lifetime_s
        if self.faults.rotate_refresh_tokens:
            issued = self.tokens.rotate(refresh_token, client_id, lifetime)
        else:
            # The refresh token stays valid and is not repeated in the response.
            issued = dataclasses.replace(self.tokens.refresh(refresh_token, client_id, lifetime), refresh_token=None)
        self.stats.count_issue(refresh=True)
        return self.token_response(issued)

    def token_response(self, issued: IssuedTokens) -> dict[str, Any]:
        grant = issued.grant
        issued_at = str(int(time.time() * 1000))
        identity_url = self.identity_url(grant)
        secret = self.apps[grant.client_id].client_secret if grant.client_id in self.apps else ""
        digest = hmac.new(secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256).digest()
        body: dict[str, Any] = {"access_token": issued.access_token}
        if issued.refresh_token:
            body["refresh_token"] = issued.refresh_token
        body.update(
            {
                "signature": base64.b64encode(digest).decode(),
                "scope": " ".join(grant.scopes),
                "instance_url": self.instance_url,
                "id": identity_url,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )
        return body

    def identity_url(self, grant: Grant) -> str:
        return f"{self.login_url}/id/{self.org_id}/{self.user_ids[grant.user_id]}"

    def control_stats(self) -> dict[str, Any]:
        return {**self.stats.snapshot(), "api_usage": self.usage.used()}

    def expire_sessions(self) -> int:
        """End every live session, as an admin would; returns how many were live."""
        return self.tokens.expire_access_tokens()

    def session_user(self, grant: Grant) -> str:
        return self.user_ids[grant.user_id]

    # ---- records -----------------------------------------------------------------------------

    @property
    def admin_user_id(self) -> str:
        return self.user_ids[0]

    def create(self, sobject: str, fields: dict[str, Any], *, allow_duplicates: bool = False) -> str:
        """Same effect as `POST /sobjects/{sobject}`; raises SalesforceError as that call would answer.
        `allow_duplicates` saves past the duplicate rules, as `Sforce-Duplicate-Rule-Header: allowSave=true`."""
        return self.org.create(self._sobject(sobject), fields, self.admin_user_id, allow_duplicates=allow_duplicates)

    def update(self, sobject: str, record_id: str, fields: dict[str, Any], *, allow_duplicates: bool = False) -> None:
        """Same effect as `PATCH /sobjects/{sobject}/{record_id}`; `allow_duplicates` as for `create`."""
        self.org.update(
            self._sobject(sobject), record_id, fields, self.admin_user_id, allow_duplicates=allow_duplicates
        )

    def delete(self, sobject: str, record_id: str) -> None:
        self.org.delete(self._sobject(sobject), record_id, self.admin_user_id)

    def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        return self.org.read(self._sobject(sobject), record_id)

    def all_ids(self, sobject: str, deleted: bool = False) -> set[str]:
        return self.org.all_ids(self._sobject(sobject), deleted=deleted)

    def _sobject(self, name: str) -> SObjectType:
        sobject = self.org.schema.resolve(name)
        if sobject is None:
            raise ValueError(f"unknown sObject {name!r}")
        return sobject


__all__ = ["DEFAULT_SCOPES", "SalesforceFaults", "SalesforceSandbox", "SalesforceSize"]
