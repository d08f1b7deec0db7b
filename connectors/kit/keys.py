"""Static credentials: a key the user pastes, sent with every request as the provider wants it.

Templates name `{key}` (the credentials' API key) and any of the credentials' extras, e.g. Zendesk's
`{email}`. Examples: Stripe `ApiKey()` (`Authorization: Bearer sk_…`) or `Basic("{key}")`; Zendesk
`Basic("{email}/token", "{key}")`; Mailchimp `Basic("anystring", "{key}")`; Pipedrive
`ApiKey(header="x-api-token", template="{key}")` or, legacy, `ApiKey(query="api_token")`.
"""

from __future__ import annotations

import base64
import string
from dataclasses import dataclass
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
    that query parameter instead (the header template is then unused)."""

    header: str = "Authorization"
    template: str = "Bearer {key}"
    query: str | None = None

    def headers(self, credentials: Credentials) -> dict[str, str]:
        return {} if self.query else {self.header: fill(self.template, credentials)}

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
