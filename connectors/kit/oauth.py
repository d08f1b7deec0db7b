"""OAuth 2: the authorization URL (through authlib), the code exchange and token refresh, and what a
connection learns after a token is issued."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote_plus, urljoin, urlsplit

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from connectors.kit.after_token import AfterToken
from connectors.kit.credentials import Credentials
from connectors.kit.egress import EgressPolicy, HostPatterns
from connectors.kit.errors import ProviderError, ReauthRequired
from connectors.kit.keys import ApiKey, Basic
from connectors.kit.token_calls import TokenCall
from connectors.kit.token_calls import TokenCallLimits as TokenCallLimits  # where callers have always found it

# How the app proves itself at the token endpoint (RFC 6749 2.3.1): its id and secret in the body, or in
# an HTTP Basic header (Pipedrive's way).
ClientAuth = Literal["client_secret_post", "client_secret_basic"]
# How the token request is written: a form, as RFC 6749 says, or JSON (Zendesk's /oauth/tokens).
TokenBody = Literal["form", "json"]


@dataclass(frozen=True)
class OAuth2:
    """How a provider does OAuth 2.

    `token_url` may be relative: it is then resolved against the connection's base URL, so a base-URL
    override (a sandbox, a regional host) covers the token endpoint too, as HubSpot serves it on its API host.
    """

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    optional_scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    pkce: bool = True
    # Salesforce serves tokens on its login host, not the org's instance: the token endpoint then lives on
    # the same host as the (possibly overridden) authorize URL.
    token_on_authorize_host: bool = False
    client_auth: ClientAuth = "client_secret_post"
    token_body: TokenBody = "form"
    after_token: AfterToken | None = None

    def token_endpoint(self, base_url: str, app: OAuthApp | None = None) -> str:
        if self.token_on_authorize_host:
            login = urlsplit((app.authorize_url if app and app.authorize_url else None) or self.authorize_url)
            return f"{login.scheme}://{login.netloc}{urlsplit(self.token_url).path}"
        if "://" in self.token_url:
            return self.token_url
        return urljoin(base_url.rstrip("/") + "/", self.token_url.lstrip("/"))

    @property
    def base_url_key(self) -> str | None:
        """The credentials' extra naming the host to call, when the token says where the API lives."""
        return self.after_token.base_url_key if self.after_token else None


Auth = OAuth2 | ApiKey | Basic


@dataclass(frozen=True)
class OAuthApp:
    """A platform's own OAuth client at a provider (white-label)."""

    client_id: str
    client_secret: str
    authorize_url: str | None = None  # overrides the connector's, e.g. to point at a sandbox
    base_url: str | None = None  # where new connections made through this app point
    # What the provider signs webhooks with when it is not the client secret (Stripe's `whsec_` endpoint secret).
    webhook_secret: str | None = None

    @property
    def webhook_signing_secret(self) -> str:
        return self.webhook_secret or self.client_secret


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str | None


def new_authorization_request(auth: OAuth2, app: OAuthApp, redirect_uri: str) -> AuthorizationRequest:
    client = AsyncOAuth2Client(
        client_id=app.client_id,
        redirect_uri=redirect_uri,
        scope=auth.scope_separator.join(auth.scopes),
        code_challenge_method="S256" if auth.pkce else None,
    )
    code_verifier = generate_token(64) if auth.pkce else None
    extra: dict[str, Any] = {}
    if auth.optional_scopes:
        extra["optional_scope"] = auth.scope_separator.join(auth.optional_scopes)
    url, state = client.create_authorization_url(
        app.authorize_url or auth.authorize_url, code_verifier=code_verifier, **extra
    )
    return AuthorizationRequest(url=url, state=state, code_verifier=code_verifier)


def _token_request(auth: OAuth2, app: OAuthApp, grant: dict[str, str | None]) -> dict[str, Any]:
    """The request parts of one grant, the app authenticated as the provider wants it."""
    fields = {key: value for key, value in grant.items() if value is not None}
    headers = {"Accept": "application/json"}
    if auth.client_auth == "client_secret_basic":
        # RFC 6749 2.3.1: id and secret are form-encoded before they are joined.
        pair = f"{quote_plus(app.client_id)}:{quote_plus(app.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        fields |= {"client_id": app.client_id, "client_secret": app.client_secret}
    body = {"json": fields} if auth.token_body == "json" else {"data": fields}
    return {"headers": headers, **body}


async def _grant(auth: OAuth2, call: TokenCall, grant: dict[str, str | None]) -> dict[str, Any]:
    endpoint = auth.token_endpoint(call.base_url, call.app)
    token = await call.send("POST", endpoint, what="token endpoint", **_token_request(auth, call.app, grant))
    if not isinstance(token.get("access_token"), str) or not token["access_token"]:
        raise ProviderError("the token endpoint answered without an access token")
    return token


async def exchange_code(
    auth: OAuth2,
    app: OAuthApp,
    base_url: str,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    limits: TokenCallLimits,
    egress: EgressPolicy,
    hosts: HostPatterns,
) -> Credentials:
    """Credentials for an authorization code, completed with what the provider tells after the token."""
    call = TokenCall(app, base_url, limits, egress, hosts)
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    token = await _grant(auth, call, {**grant, "code_verifier": code_verifier})
    credentials = Credentials.from_token_response(token)
    return credentials.with_extra(await learn_after_token(auth, call, credentials))


async def refresh(
    auth: OAuth2,
    app: OAuthApp,
    base_url: str,
    credentials: Credentials,
    *,
    limits: TokenCallLimits,
    egress: EgressPolicy,
    hosts: HostPatterns,
) -> Credentials:
    if not credentials.refresh_token:
        raise ReauthRequired("the access token expired and the connection has no refresh token")
    call = TokenCall(app, base_url, limits, egress, hosts)
    token = await _grant(auth, call, {"grant_type": "refresh_token", "refresh_token": credentials.refresh_token})
    return Credentials.from_token_response(token, previous=credentials)


async def learn_after_token(auth: OAuth2, call: TokenCall, credentials: Credentials) -> dict[str, Any]:
    """What the provider's after-token step tells of these credentials' access token, asked only when
    the credentials lack any of it ({} for a token the provider no longer knows)."""
    step = auth.after_token
    if step is None or not credentials.access_token:
        return {}
    if all(credentials.extra.get(key) not in (None, "") for key in step.keeps):
        return {}
    return await step.learn(call, credentials.access_token)
