"""What a connection learns once it holds an access token, beyond the token itself: the host its API lives
on, the account the token belongs to. The facts join the credentials' extras, so a refresh keeps them.

- `BaseUrlFrom`: the token answer names the API host (Salesforce `instance_url`, Pipedrive `api_domain`).
- `AccountMetadata`: a metadata URL names it when asked with the token (Mailchimp's data center).
- `TokenIntrospection`: RFC 7662 introspection names the account (HubSpot's `hub_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from connectors.kit.token_calls import TokenCall


class AfterToken(Protocol):
    """A step run with a fresh access token whose credentials lack any of `keeps`."""

    @property
    def keeps(self) -> tuple[str, ...]:
        """The extras the step provides."""
        ...

    @property
    def base_url_key(self) -> str | None:
        """The extra naming the host to call, which then wins over the connector's base URL."""
        ...

    async def learn(self, call: TokenCall, access_token: str) -> dict[str, Any]:
        """The facts found ({} when the provider says the token is no longer active)."""
        ...


def kept(answer: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: answer[key] for key in keys if answer.get(key) not in (None, "")}


@dataclass(frozen=True)
class BaseUrlFrom:
    """The token answer's `key` names the host to call: nothing more to ask."""

    key: str

    @property
    def keeps(self) -> tuple[str, ...]:
        return (self.key,)

    @property
    def base_url_key(self) -> str:
        return self.key

    async def learn(self, call: TokenCall, access_token: str) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class AccountMetadata:
    """A URL that, asked with the token in `authorization` (Mailchimp: `OAuth {token}`, not Bearer), answers
    the token's account, `keeps` being kept; `base_url_key` among them names the host to call."""

    url: str
    keeps: tuple[str, ...]
    base_url_key: str | None = None
    authorization: str = "Bearer {token}"

    async def learn(self, call: TokenCall, access_token: str) -> dict[str, Any]:
        headers = {"Authorization": self.authorization.format(token=access_token), "Accept": "application/json"}
        return kept(await call.send("GET", self.url, what="account metadata", headers=headers), self.keeps)


@dataclass(frozen=True)
class TokenIntrospection:
    """Where a provider tells which account a token belongs to (RFC 7662 introspection: the token and the
    app's client id and secret in a form body). Connections imported with tokens only learn from it what a
    token exchange would have told them. `url` may be relative, as `OAuth2.token_url`."""

    url: str
    keeps: tuple[str, ...]
    base_url_key: None = None

    async def learn(self, call: TokenCall, access_token: str) -> dict[str, Any]:
        form = {
            "token": access_token,
            "token_type_hint": "access_token",
            "client_id": call.app.client_id,
            "client_secret": call.app.client_secret,
        }
        answer = await call.send("POST", self.url, what="token introspection", data=form)
        return kept(answer, self.keeps) if answer.get("active") is True else {}
