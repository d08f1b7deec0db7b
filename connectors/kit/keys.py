"""Static credentials: a key the user pastes, sent with every request as the provider wants it.

Templates name `{key}` (the credentials' API key) and any of the credentials' extras, e.g. Zendesk's
`{email}`. Examples: Stripe `ApiKey()` (`Authorization: Bearer sk_…`) or `Basic("{key}")`; Zendesk
`Basic("{email}/token", "{key}")`; Mailchimp `Basic("anystring", "{key}")`; Pipedrive
`ApiKey(header="x-api-token", template="{key}")` or, legacy, `ApiKey(query="api_token")`.
"""

from __future__ import annotations

import base64
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.kit.credentials import Credentials
from connectors.kit.errors import ReauthRequired


def fill(template: str, credentials: Credentials) -> str:
    """The template with the credentials' values; a value the credentials lack is an error naming it."""
    values: dict[str, Any] = {**credentials.extra, "key": credentials.api_key or ""}
    wanted = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    missing = [name for name in wanted if values.get(name) in (None, "")]
    if missing:
        raise ReauthRequired(f"the connection's credentials lack {', '.join(sorted(set(missing)))}")
    return template.format(**{name: values[name] for name in wanted})


@dataclass(frozen=True)
class ApiKey:
    """A key in a header (`Authorization: Bearer <key>` unless told otherwise), or, with `query`, bare in
    that query parameter instead (the header template is then unused).

    `from_credentials` adds headers from the credentials' extras, each sent only when the credentials hold
    it (Stripe: `Stripe-Version` pinned at connection time, `Stripe-Account` for a Connect account).
    `platform_key`: the key is not the connection's but its platform's, the OAuth app's client secret, read
    at every request so a rotated platform key is picked up (Stripe Connect: the platform's secret key)."""

    header: str = "Authorization"
    template: str = "Bearer {key}"
    query: str | None = None
    from_credentials: Mapping[str, str] = field(default_factory=dict)
    platform_key: bool = False

    def headers(self, credentials: Credentials) -> dict[str, str]:
        found = {
            header: str(credentials.extra[extra])
            for header, extra in self.from_credentials.items()
            if credentials.extra.get(extra) not in (None, "")
        }
        return found if self.query else {self.header: fill(self.template, credentials), **found}

    def params(self, credentials: Credentials) -> dict[str, str]:
        return {self.query: fill("{key}", credentials)} if self.query else {}


@dataclass(frozen=True)
class Basic:
    """HTTP Basic (RFC 7617) with a templated user name and password."""

    username: str = "{key}"
    password: str = ""

    def headers(self, credentials: Credentials) -> dict[str, str]:
        pair = f"{fill(self.username, credentials)}:{fill(self.password, credentials)}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    def params(self, credentials: Credentials) -> dict[str, str]:
        return {}


StaticKey = ApiKey | Basic


@dataclass(frozen=True)
class KeyFormat:
    """What a pasted key must look like, checked before any request: `prefixes` it may start with, and
    the prefixes of keys that must never be used here, each with why (a publishable key is public)."""

    prefixes: tuple[str, ...]
    refused: Mapping[str, str] = field(default_factory=dict)
    # Keys of real (live) accounts, refused where only test accounts belong (`xkit dev`).
    live_prefixes: tuple[str, ...] = ()
    pattern: str = r"[A-Za-z0-9_]{8,255}"
    hint: str = ""

    def problem(self, key: str, *, test_only: bool = False) -> str | None:
        """Why the key cannot be used, or None."""
        for prefix, why in self.refused.items():
            if key.startswith(prefix):
                return why
        if not key.startswith(self.prefixes) or re.fullmatch(self.pattern, key) is None:
            return f"this does not look like a key of the expected kind: {self.hint}".rstrip(": ")
        if test_only and key.startswith(self.live_prefixes):
            return "a live key is refused here: use a test-mode key"
        return None
