"""What stands in front of the API (`/v1/…`) and every response: a `Request-Id`, the `Stripe-Version` checked
and echoed, the key (Bearer, or Basic with the key as username), `Stripe-Account` for a platform acting on a
connected account, and test mode's rate limit per account, with Stripe's error bodies."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from datetime import date

from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.kit.sandbox import ExpiredToken, UnknownToken, with_headers
from connectors.kit.sandbox_support import json_response
from connectors.stripe.sandbox.account import Account
from connectors.stripe.sandbox.errors import StripeError, authentication, forbidden, invalid, rate_limited
from connectors.stripe.sandbox.objects import API_VERSION
from connectors.stripe.sandbox.sandbox import StripeSandbox

VERSION = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(\.[a-z]+)?$")
SECOND = 1.0
NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer "
    "auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
    "details, or we can help at https://support.stripe.com/."
)
PUBLISHABLE = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of "
    "your API keys at https://dashboard.stripe.com/account/apikeys."
)


@dataclass(frozen=True)
class Caller:
    """Who a request authenticated as (`key_account`) and the account it acts on."""

    account: Account
    key_account: Account


def is_api_path(path: str) -> bool:
    return path.startswith("/v1/")


def masked(key: str) -> str:
    prefix = key[: key.find("_", key.find("_") + 1) + 1] if key.count("_") >= 2 else ""
    return prefix + "*" * max(0, len(key) - len(prefix) - 4) + key[-4:]


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def bearer_or_basic_key(scope: Scope) -> str | None:
    scheme, _, credential = (header(scope, b"authorization") or "").partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer":
        return credential or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(credential, validate=True).decode().partition(":")[0] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


class StripeGate:
    def __init__(self, app: ASGIApp, sandbox: StripeSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(7)
        version = header(scope, b"stripe-version") or API_VERSION
        scope.setdefault("state", {})["request_id"] = request_id
        send = with_headers(send, [(b"request-id", request_id.encode()), (b"stripe-version", version.encode())])
        if not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            check_version(version)
            caller = self.authenticate(scope)
            self.rate_limit(caller.account)
        except StripeError as refused:
            await json_response(refused.body, refused.status, refused.headers or None)(scope, receive, send)
            return
        scope["state"]["caller"] = caller
        await self.app(scope, receive, send)

    def authenticate(self, scope: Scope) -> Caller:
        key = bearer_or_basic_key(scope)
        if key is None:
            raise authentication(NO_KEY)
        if key.startswith("pk_"):
            raise authentication(PUBLISHABLE)
        key_account = self.sandbox.keys.get(key)
        if key_account is None and self.sandbox.faults.live_keys_enabled:
            key_account = self.sandbox.live_keys.get(key)
        if key_account is None and key.startswith("sk_test_"):
            try:
                key_account = self.sandbox.account_of(self.sandbox.tokens.authenticate(key).grant)
            except (UnknownToken, ExpiredToken):
                key_account = None
        if key_account is None:
            raise authentication(f"Invalid API Key provided: {masked(key)}")
        if key == key_account.identity.restricted_key and scope["method"] not in ("GET", "HEAD"):
            raise forbidden(
                f"The provided key '{masked(key)}' does not have the required permissions for this endpoint on "
                f"account '{key_account.id}'.",
                "secret_key_required",
            )
        acting_as = header(scope, b"stripe-account")
        if acting_as is None or acting_as == key_account.id:
            return Caller(key_account, key_account)
        target = self.sandbox.accounts.get(acting_as)
        if key_account is not self.sandbox.platform or target is None or not self.sandbox.is_connected(target):
            raise forbidden(
                f"The provided key '{masked(key)}' does not have access to account '{acting_as}' (or that account "
                "does not exist). Application access may have been revoked.",
                "account_invalid",
            )
        return Caller(target, key_account)

    def rate_limit(self, account: Account) -> None:
        faults = self.sandbox.faults
        if not faults.rate_limit_enabled:
            return
        decision = self.sandbox.rate_limiter.acquire(account.id, faults.rate_limit_max, SECOND)
        if not decision.allowed:
            problem = StripeError(429, "")
            problem.body = rate_limited()
            problem.headers = {"Stripe-Rate-Limited-Reason": "global-rate"}
            raise problem


def check_version(version: str) -> None:
    match = VERSION.match(version)
    valid = match is not None
    if match is not None:
        try:
            date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            valid = False
    if not valid:
        raise invalid(f"Invalid Stripe API version: {version}", code="invalid_stripe_api_version")
