"""`ZendeskSandbox`: emulated Zendesk accounts, one per subdomain, with the OAuth client registered as a
global client (valid on every account), API tokens, fault knobs, counters and webhooks.

A subdomain's account lives under a path prefix of the sandbox's URL: what is
`https://acme.zendesk.com/api/v2/tickets.json` in reality is `{sandbox_url}/acme/api/v2/tickets.json`
here, so a connection's base URL (`base_url_for`) is all a connector needs to know.
"""

from __future__ import annotations

import random
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from connectors.kit.sandbox import (
    FaultKnobs,
    Grant,
    IssuedTokens,
    RequestStats,
    RollingWindowLimiter,
    TokenIssuer,
    TokenStore,
)
from connectors.zendesk.sandbox.account import Account, Change
from connectors.zendesk.sandbox.data import SandboxSize
from connectors.zendesk.sandbox.webhooks import WebhookConfig, WebhookSender, WebhookStats, build_event

SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_SUBDOMAIN = "xkit-demo"
DEFAULT_SCOPES = ("read", "write")
# What a token without `expires_in` lasts: Zendesk's are long-lived, never refreshed.
LONG_LIVED_S = 10 * 365 * 86_400
AUTHORIZATION_CODE_LIFETIME_S = 120.0


def base_url_for(sandbox_url: str, subdomain: str) -> str:
    """The sandbox's stand-in for `https://{subdomain}.zendesk.com`."""
    return f"{sandbox_url.rstrip('/')}/{subdomain}"


@dataclass
class ZendeskFaultKnobs(FaultKnobs):
    # Enterprise's account-wide limit per minute.
    rate_limit_max: int = 700
    # The incremental export endpoints' own limit per minute.
    export_rate_per_min: int = 10
    # The exports leave out what changed this many seconds before the request, and refuse a start_time
    # within them (Zendesk: one minute, since 2024-10-28).
    export_lag_s: int = 60
    # A share of API responses cut short (a body that is not complete JSON), or padded far past normal.
    rate_truncated: float = 0.0
    rate_oversized: float = 0.0


class ZendeskSandbox(TokenIssuer):
    """Deterministic accounts: the same seed and sizes always give the same records and credentials."""

    default_scopes = DEFAULT_SCOPES

    def __init__(
        self,
        seed: int = 42,
        size: SandboxSize | None = None,
        subdomains: Sequence[str] = (DEFAULT_SUBDOMAIN,),
    ) -> None:
        self.seed = seed
        self.size = size or SandboxSize()
        self.faults = ZendeskFaultKnobs()
        identity = random.Random(f"zendesk-sandbox:{seed}")
        self.client_id = f"xkit_sandbox_{identity.getrandbits(32):08x}"
        self.client_secret = f"{identity.getrandbits(256):064x}"
        self.apps = {}
        self.register_app(self.client_id, self.client_secret)
        self.tokens = TokenStore(code_lifetime_s=AUTHORIZATION_CODE_LIFETIME_S)
        self.stats = RequestStats()
        self.rate_limiter = RollingWindowLimiter()
        self.fault_rng = random.Random(seed)
        self.webhook_stats = WebhookStats()
        self.accounts: dict[str, Account] = {}
        self.api_tokens: dict[str, tuple[str, int]] = {}  # token -> (subdomain, user id)
        self.webhooks: dict[str, WebhookSender] = {}
        for index, subdomain in enumerate(subdomains):
            self.add_account(subdomain, size=self.size if index == 0 else SandboxSize(tickets=20, users=10))

    @property
    def default_subdomain(self) -> str:
        return next(iter(self.accounts))

    def add_account(self, subdomain: str, size: SandboxSize | None = None) -> Account:
        if not SUBDOMAIN.match(subdomain):
            raise ValueError(f"{subdomain!r} is not a Zendesk subdomain")
        index = len(self.accounts)
        account = Account(10_000_000 + index * 7919 + self.seed, subdomain, self.seed + index, size or self.size)
        self.accounts[subdomain] = account
        identity = random.Random(f"zendesk-api-token:{self.seed}:{subdomain}")
        self.api_tokens[f"{identity.getrandbits(160):040x}"] = (subdomain, account.admin_id)
        sender = WebhookSender(self.webhook_stats)
        self.webhooks[subdomain] = sender
        account.on_change = lambda change: self._publish(account, sender, change)
        return account

    def account(self, subdomain: str | None = None) -> Account:
        return self.accounts[subdomain or self.default_subdomain]

    def api_token(self, subdomain: str | None = None) -> tuple[str, str]:
        """The seeded admin's (email, API token) on an account, for `{email}/token:{token}` Basic auth."""
        subdomain = subdomain or self.default_subdomain
        token = next(t for t, (s, _) in self.api_tokens.items() if s == subdomain)
        account = self.accounts[subdomain]
        return account.users[account.admin_id]["email"], token

    # ---- OAuth ----------------------------------------------------------------------------------

    def grant(self, client_id: str, scopes: Sequence[str]) -> Grant:
        return self.grant_on(self.default_subdomain, client_id, scopes)

    def grant_on(self, subdomain: str, client_id: str, scopes: Sequence[str]) -> Grant:
        account = self.accounts[subdomain]
        return Grant(client_id=client_id, scopes=tuple(scopes), account_id=account.id, user_id=account.admin_id)

    def issue_tokens(self, grant: Grant) -> dict[str, Any]:
        """Tokens as when the app asked for `expires_in`: expiring, with a refresh token."""
        return self.issue(grant, expires_in=self.faults.token_lifetime_s)

    def issue(self, grant: Grant, *, expires_in: int | None, refresh_expires_in: int | None = None) -> dict[str, Any]:
        if expires_in is None:
            issued = self.tokens.issue(grant, LONG_LIVED_S, with_refresh=False)
        else:
            issued = self.tokens.issue(grant, expires_in)
        self.stats.count_issue(refresh=False)
        return self.token_response(issued, expiring=expires_in is not None, refresh_expires_in=refresh_expires_in)

    def refresh_tokens(self, refresh_token: str, client_id: str) -> dict[str, Any]:
        # Refresh tokens are spent by use and replaced (the rotation is assumed, not documented).
        issued = self.tokens.rotate(refresh_token, client_id, self.faults.token_lifetime_s)
        self.stats.count_issue(refresh=True)
        return self.token_response(issued, expiring=True)

    def token_response(
        self, issued: IssuedTokens, *, expiring: bool, refresh_expires_in: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "scope": " ".join(issued.grant.scopes),
        }
        if expiring:
            body["expires_in"] = issued.expires_in
            body["refresh_token"] = issued.refresh_token
            body["refresh_token_expires_in"] = refresh_expires_in or 2_592_000
        return body

    def subdomain_of(self, account_id: int) -> str | None:
        return next((s for s, a in self.accounts.items() if a.id == account_id), None)

    # ---- control ----------------------------------------------------------------------------------

    def control_stats(self) -> dict[str, Any]:
        return {**self.stats.snapshot(), "webhooks": self.webhook_stats.snapshot()}

    def expire_access_tokens(self) -> int:
        return self.tokens.expire_access_tokens()

    def configure_webhooks(
        self,
        endpoint: str,
        signing_secret: str | None = None,
        subdomain: str | None = None,
        *,
        name_subdomain: bool = False,
    ) -> str:
        """Send every later change on an account to `endpoint`, signed with `signing_secret` (a new one when
        not given); returns the secret. With `name_subdomain` each body also says `"subdomain"`, as a trigger
        webhook whose body the admin wrote can. Raises ValueError for an endpoint that is not an http(s) URL."""
        subdomain = subdomain or self.default_subdomain
        secret = signing_secret or secrets.token_urlsafe(32)
        webhook_id = "01" + uuid.uuid4().hex[:24].upper()
        config = WebhookConfig(endpoint, secret, webhook_id, subdomain if name_subdomain else None)
        self.webhooks[subdomain].configure(config)
        return secret

    def disable_webhooks(self, subdomain: str | None = None) -> None:
        self.webhooks[subdomain or self.default_subdomain].configure(None)

    def flush_webhooks(self, timeout: float = 5.0) -> bool:
        return all(sender.flush(timeout) for sender in self.webhooks.values())

    def _publish(self, account: Account, sender: WebhookSender, change: Change) -> None:
        if sender.config is not None:
            sender.publish(build_event(change, account.id))

    def close(self) -> None:
        for sender in self.webhooks.values():
            sender.close()

    def __enter__(self) -> ZendeskSandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
