"""OAuth 2 code flow and token refresh, through authlib."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from connectors.kit.bounds import BoundedBodies
from connectors.kit.credentials import Credentials
from connectors.kit.egress import UNREACHABLE, EgressPolicy, EgressRefused, HostPatterns
from connectors.kit.errors import ProviderError, ProviderUnavailable, ReauthRequired


@dataclass(frozen=True)
class TokenIntrospection:
    """Where a provider tells which account a token belongs to (RFC 7662 introspection: the token and the
    app's client id and secret in a form body). Connections imported with tokens only learn from it what a
    token exchange would have told them: the answer's `keeps` fields join the credentials' extras.

    `url` may be relative, as `OAuth2.token_url`."""

    url: str
    keeps: tuple[str, ...]


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
    introspection: TokenIntrospection | None = None

    def token_endpoint(self, base_url: str, app: OAuthApp | None = None) -> str:
        if self.token_on_authorize_host:
            login = urlsplit((app.authorize_url if app and app.authorize_url else None) or self.authorize_url)
            return f"{login.scheme}://{login.netloc}{urlsplit(self.token_url).path}"
        if "://" in self.token_url:
            return self.token_url
        return urljoin(base_url.rstrip("/") + "/", self.token_url.lstrip("/"))


@dataclass(frozen=True)
class ApiKey:
    """A static key sent in a header, e.g. `Authorization: Bearer <key>`."""

    header: str = "Authorization"
    template: str = "Bearer {key}"


Auth = OAuth2 | ApiKey


@dataclass(frozen=True)
class OAuthApp:
    """A platform's own OAuth client at a provider (white-label)."""

    client_id: str
    client_secret: str
    authorize_url: str | None = None  # overrides the connector's, e.g. to point at a sandbox
    base_url: str | None = None  # where new connections made through this app point


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


def _raise_for_token_error(response: httpx2.Response) -> httpx2.Response:
    """Token endpoints speak each provider's own error dialect; authlib only knows RFC 6749's."""
    if response.status_code < 400:
        return response
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = str(
        body.get("error_description")
        or body.get("message")
        or body.get("error")
        or body.get("status")
        or response.reason_phrase
    )
    code = str(body.get("error") or body.get("status") or response.status_code)
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(f"token endpoint failed: {reason}", status=response.status_code)
    raise ReauthRequired(
        f"the provider refused the credentials: {reason}", status=response.status_code, provider_code=code
    )


@dataclass(frozen=True)
class TokenCallLimits:
    """Bounds of one call to a token endpoint: per read, for the whole call, and on the answer's decoded size."""

    timeout: float = 30.0
    deadline: float = 60.0
    max_response_bytes: int = 64 * 1024


def _token_endpoint(auth: OAuth2, app: OAuthApp, base_url: str, egress: EgressPolicy, hosts: HostPatterns) -> str:
    """Where the client secret goes: held to the provider's OAuth hosts, since its parts come from input."""
    endpoint = auth.token_endpoint(base_url, app)
    try:
        egress.check_provider_url(endpoint, hosts)
    except EgressRefused as refused:
        raise ProviderError(f"refusing to send the OAuth client secret to {endpoint}: {refused}") from None
    return endpoint


def _oauth_client(app: OAuthApp, limits: TokenCallLimits, egress: EgressPolicy, **kwargs: Any) -> AsyncOAuth2Client:
    client = AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret,
        token_endpoint_auth_method="client_secret_post",
        timeout=limits.timeout,
        transport=BoundedBodies(egress.transport(), limits.max_response_bytes),
        # Proxies from the environment would connect on the policy's behalf.
        trust_env=False,
        **kwargs,
    )
    client.register_compliance_hook("access_token_response", _raise_for_token_error)
    client.register_compliance_hook("refresh_token_response", _raise_for_token_error)
    return client


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
    endpoint = _token_endpoint(auth, app, base_url, egress, hosts)
    try:
        async with (
            _oauth_client(app, limits, egress, redirect_uri=redirect_uri) as client,
            asyncio.timeout(limits.deadline),
        ):
            token = await client.fetch_token(
                endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
    except TimeoutError as exc:
        raise _too_slow(limits) from exc
    except httpx2.TransportError as exc:
        raise ProviderUnavailable(f"token endpoint: {UNREACHABLE}") from exc
    return Credentials.from_token_response(dict(token))


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
    endpoint = _token_endpoint(auth, app, base_url, egress, hosts)
    try:
        async with _oauth_client(app, limits, egress) as client, asyncio.timeout(limits.deadline):
            token = await client.refresh_token(endpoint, refresh_token=credentials.refresh_token)
    except TimeoutError as exc:
        raise _too_slow(limits) from exc
    except httpx2.TransportError as exc:
        raise ProviderUnavailable(f"token endpoint: {UNREACHABLE}") from exc
    except ProviderError:
        raise
    return Credentials.from_token_response(dict(token), previous=credentials)


async def introspect(
    auth: OAuth2,
    app: OAuthApp,
    base_url: str,
    token: str,
    *,
    limits: TokenCallLimits,
    egress: EgressPolicy,
    hosts: HostPatterns,
) -> dict[str, Any]:
    """What the provider says of an access token: the `keeps` fields of an active token, {} of an inactive one."""
    assert auth.introspection is not None
    endpoint = auth.introspection.url
    if "://" not in endpoint:
        endpoint = urljoin(base_url.rstrip("/") + "/", endpoint.lstrip("/"))
    try:
        egress.check_provider_url(endpoint, hosts)
    except EgressRefused as refused:
        raise ProviderError(f"refusing to send the OAuth client secret to {endpoint}: {refused}") from None
    form = {
        "token": token,
        "token_type_hint": "access_token",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }
    transport = BoundedBodies(egress.transport(), limits.max_response_bytes)
    try:
        async with (
            httpx2.AsyncClient(transport=transport, timeout=limits.timeout, trust_env=False) as client,
            asyncio.timeout(limits.deadline),
        ):
            response = _raise_for_token_error(await client.post(endpoint, data=form))
    except TimeoutError as exc:
        raise _too_slow(limits) from exc
    except httpx2.TransportError as exc:
        raise ProviderUnavailable(f"token introspection: {UNREACHABLE}") from exc
    try:
        body = response.json()
    except ValueError:
        raise ProviderError("the token introspection answer is not JSON") from None
    if not isinstance(body, dict) or body.get("active") is not True:
        return {}
    return {key: body[key] for key in auth.introspection.keeps if body.get(key) not in (None, "")}


def _too_slow(limits: TokenCallLimits) -> ProviderUnavailable:
    return ProviderUnavailable(f"the token endpoint gave no complete answer within {limits.deadline:g} s")
