"""`StripeSandbox`: a Connect platform and its connected accounts, each with its own keys and objects, the
platform's Connect OAuth app, test-mode rate limits, fault knobs, a sandbox clock and webhook delivery.

The main account (`account()`) is a connected account of the platform holding the seeded size: reachable with
its own secret key, with an OAuth access token from the Connect flow, or with the platform's key and
`Stripe-Account: acct_…`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from connectors.kit.sandbox import FaultKnobs, Grant, RequestStats, RollingWindowLimiter, TokenIssuer, TokenStore
from connectors.stripe.sandbox.account import Account, AccountIdentity
from connectors.stripe.sandbox.data import SandboxSize, seed_account
from connectors.stripe.sandbox.idempotency import IdempotencyStore
from connectors.stripe.sandbox.store import base62
from connectors.stripe.sandbox.webhooks import Endpoint, WebhookSender, WebhookStats, check_url, new_secret

CONNECT_SCOPES = ("read_write",)
# Connect access tokens have no documented expiry: they last until the platform deauthorizes.
LONG_LIVED_S = 10 * 365 * 86_400
EVENT_RETENTION_S = 30 * 86_400
# What a small account (the platform's own, a second connected one) seeds.
SMALL = SandboxSize(customers=20, invoices=20, subscriptions=6, payment_intents=6)


@dataclass
class StripeFaultKnobs(FaultKnobs):
    # Test mode's limit: 25 requests a second per account, reads and writes alike (docs.stripe.com/rate-limits).
    rate_limit_max: int = 25
    # Each write waits this long while it holds its idempotency key: what makes a concurrent retry meet a 409.
    write_latency_ms: int = 0
    # Live keys (sk_live_) work only when turned on; otherwise they are refused like unknown keys.
    live_keys_enabled: bool = False


class SandboxClock:
    """The sandbox's time in whole seconds: the wall clock, moved forward by `advance` (to age events past
    their retention, or idempotency keys past 24 hours)."""

    def __init__(self) -> None:
        self.offset_s = 0

    def __call__(self) -> int:
        return int(time.time()) + self.offset_s

    def advance(self, seconds: int) -> None:
        self.offset_s += seconds


class StripeSandbox(TokenIssuer):
    """Deterministic: the same seed and size always give the same accounts, keys and objects."""

    default_scopes = CONNECT_SCOPES

    def __init__(self, seed: int = 42, size: SandboxSize | None = None, connected_accounts: int = 2) -> None:
        self.seed = seed
        self.size = size or SandboxSize()
        self.faults = StripeFaultKnobs()
        self.clock = SandboxClock()
        self.identity_rng = random.Random(f"stripe-sandbox:{seed}")
        self.client_id = "ca_" + self._token(32)
        self.apps = {}
        self.tokens = TokenStore(access_prefix="sk_test_", refresh_prefix="rt_")
        self.stats = RequestStats()
        self.rate_limiter = RollingWindowLimiter()
        self.fault_rng = random.Random(seed)
        self.idempotency = IdempotencyStore(self.clock)
        self.webhook_stats = WebhookStats()
        self.webhooks = WebhookSender(self.webhook_stats, self._connected_to)
        self.accounts: dict[str, Account] = {}
        self.keys: dict[str, Account] = {}
        self.live_keys: dict[str, Account] = {}
        self.platform = self._new_account("xkit platform", SMALL)
        self.client_secret = self.platform.identity.secret_key
        self.register_app(self.client_id, self.client_secret)
        self.connected: list[Account] = [
            self._new_account("xkit demo" if index == 0 else f"Connected {index}", self.size if index == 0 else SMALL)
            for index in range(max(1, connected_accounts))
        ]
        self._lock = threading.Lock()
        self._issued: dict[str, set[str]] = {}  # account id -> the Connect tokens issued for it

    def _token(self, length: int) -> str:
        return base62(self.identity_rng.getrandbits(6 * length), length)

    def _new_account(self, name: str, size: SandboxSize) -> Account:
        index = len(self.accounts)
        identity = AccountIdentity(
            id="acct_1" + self._token(15),
            secret_key="sk_test_" + self._token(99),
            publishable_key="pk_test_" + self._token(99),
            restricted_key="rk_test_" + self._token(99),
            name=name,
        )
        account = Account(identity, self.clock, salt=self.seed * 31 + index)
        seed_account(account, self.seed + index, size)
        account.on_event = lambda event: self.webhooks.publish(account, event)
        self.accounts[identity.id] = account
        self.keys[identity.secret_key] = account
        self.keys[identity.restricted_key] = account
        self.live_keys["sk_live_" + identity.secret_key.removeprefix("sk_test_")] = account
        return account

    def account(self, account_id: str | None = None) -> Account:
        """The main (seeded) connected account, or the one named."""
        return self.accounts[account_id] if account_id else self.connected[0]

    def is_connected(self, account: Account) -> bool:
        return account in self.connected

    def _connected_to(self, platform_id: str) -> set[str]:
        return {account.id for account in self.connected} if platform_id == self.platform.id else set()

    # ---- Connect OAuth ---------------------------------------------------------------------------------

    def grant(self, client_id: str, scopes: Sequence[str]) -> Grant:
        return self.grant_on(self.account(), client_id, scopes)

    def grant_on(self, account: Account, client_id: str, scopes: Sequence[str]) -> Grant:
        index = list(self.accounts).index(account.id)
        return Grant(client_id=client_id, scopes=tuple(scopes) or CONNECT_SCOPES, account_id=index, user_id=0)

    def account_of(self, grant: Grant) -> Account:
        return list(self.accounts.values())[grant.account_id]

    def issue_tokens(self, grant: Grant) -> dict[str, Any]:
        issued = self.tokens.issue(grant, LONG_LIVED_S)
        self._remember(grant, issued.access_token, issued.refresh_token)
        self.stats.count_issue(refresh=False)
        return self.token_response(grant, issued.access_token, issued.refresh_token)

    def refresh_tokens(self, refresh_token: str, client_id: str) -> dict[str, Any]:
        """A new access token; the refresh token stays the same (Connect's refresh keeps it)."""
        issued = self.tokens.refresh(refresh_token, client_id, LONG_LIVED_S)
        self._remember(issued.grant, issued.access_token)
        self.stats.count_issue(refresh=True)
        return self.token_response(issued.grant, issued.access_token, refresh_token)

    def _remember(self, grant: Grant, *tokens: str | None) -> None:
        with self._lock:
            self._issued.setdefault(self.account_of(grant).id, set()).update(t for t in tokens if t)

    def token_response(self, grant: Grant, access_token: str, refresh_token: str | None) -> dict[str, Any]:
        account = self.account_of(grant)
        return {
            "access_token": access_token,
            "livemode": False,
            "refresh_token": refresh_token,
            "scope": " ".join(grant.scopes),
            "stripe_publishable_key": account.identity.publishable_key,
            "stripe_user_id": account.id,
            "token_type": "bearer",
        }

    def deauthorize(self, account: Account) -> None:
        """The platform disconnects the account: its OAuth tokens stop working."""
        with self._lock:
            issued = self._issued.pop(account.id, set())
        for token in issued:
            self.tokens.revoke_access(token)
            self.tokens.revoke_refresh(token)

    # ---- control ------------------------------------------------------------------------------------------

    def control_stats(self) -> dict[str, Any]:
        return {**self.stats.snapshot(), "webhooks": self.webhook_stats.snapshot()}

    def expire_access_tokens(self) -> int:
        return self.tokens.expire_access_tokens()

    def send_events_to(self, url: str, secret: str | None = None) -> str:
        """Register a Connect webhook endpoint of the platform at `url` for every event of every account, signed
        with `secret` (a new one when not given); returns the secret. StripeError for a URL that is not http(s)."""
        check_url(url)
        secret = secret or new_secret()
        created = self.platform.create_webhook_endpoint({"url": url, "enabled_events": ["*"]}, secret)
        self.webhooks.register(Endpoint(created["id"], self.platform.id, url, ["*"], [secret], connect=True))
        return secret

    def age(self, seconds: int) -> None:
        """Move the sandbox clock forward: events older than 30 days and idempotency keys older than 24 hours
        are then gone."""
        self.clock.advance(seconds)

    def close(self) -> None:
        self.webhooks.close()

    def __enter__(self) -> StripeSandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
