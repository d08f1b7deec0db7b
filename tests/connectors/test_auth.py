"""Auth as declared in the kit, over HTTP against a small provider imitation: static keys in headers, Basic
or the query; token requests as JSON or forms, the app in the body or in Basic; what a connection learns
after its token (the API host from the token answer or from a metadata URL)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.kit.after_token import AccountMetadata, BaseUrlFrom
from connectors.kit.credentials import Credentials
from connectors.kit.declaration import default_error
from connectors.kit.egress import HostPatterns, ProviderHosts
from connectors.kit.errors import ReauthRequired
from connectors.kit.http import ConnectionAccess, HttpKit
from connectors.kit.keys import ApiKey, Basic
from connectors.kit.oauth import Auth, ClientAuth, OAuth2, OAuthApp, TokenCallLimits, exchange_code, refresh
from connectors.kit.sandbox import serve_in_thread
from tests.support import sandbox_egress

APP = OAuthApp(client_id="client-1", client_secret="secret:with/odd chars")
HOSTS = ProviderHosts(api=HostPatterns(("api.provider.example",)), oauth=HostPatterns(("login.provider.example",)))
TOKEN = "token-abc"
# A port nothing listens on, that the sandbox egress policy allows: a request sent there fails loudly.
NOWHERE = "http://127.0.0.1:9"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Provider:
    """What the imitation saw: every request's path, headers and query."""

    seen: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/tokens", self.json_tokens, methods=["POST"]),
                Route("/oauth/token", self.basic_tokens, methods=["POST"]),
                Route("/oauth2/metadata", self.metadata),
                Route("/dc/3.0/ping", self.bearer_only),
                Route("/api/v1/users/me", self.bearer_only),
                Route("/keyed", self.echo),
            ]
        )

    def saw(self, request: Request) -> None:
        self.seen.append((request.url.path, dict(request.headers), dict(request.query_params)))

    async def json_tokens(self, request: Request) -> Response:
        """Zendesk's /oauth/tokens: a JSON grant with the client's id and secret; 201 with the token."""
        self.saw(request)
        if request.headers.get("content-type") != "application/json":
            return JSONResponse({"error": "invalid_request", "error_description": "JSON body expected"}, 400)
        grant = await request.json()
        if (grant.get("client_id"), grant.get("client_secret")) != (APP.client_id, APP.client_secret):
            return JSONResponse({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        return JSONResponse({"access_token": TOKEN, "token_type": "bearer", "scope": "read write"}, 201)

    async def basic_tokens(self, request: Request) -> Response:
        """Pipedrive's /oauth/token: a form grant, the app in HTTP Basic; the answer names the API host."""
        self.saw(request)
        form = dict(parse_qsl((await request.body()).decode()))
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        user, _, password = base64.b64decode(encoded or "").decode().partition(":")
        # RFC 6749 2.3.1: the id and secret are form-encoded before they are joined.
        client = (unquote_plus(user), unquote_plus(password))
        if scheme != "Basic" or client != (APP.client_id, APP.client_secret) or "client_secret" in form:
            return JSONResponse({"success": False, "message": "Invalid client: client is invalid"}, 400)
        return JSONResponse(
            {
                "access_token": TOKEN if form.get("grant_type") == "authorization_code" else TOKEN + "-fresh",
                "token_type": "Bearer",
                "expires_in": 3599,
                "refresh_token": "53:179:refresh",
                "scope": "base,deals:full",
                "api_domain": str(request.base_url).rstrip("/"),
            }
        )

    async def metadata(self, request: Request) -> Response:
        """Mailchimp's /oauth2/metadata: asked with `OAuth <token>`, it names the account's data center."""
        self.saw(request)
        if request.headers.get("authorization") != f"OAuth {TOKEN}":
            return JSONResponse({"error": "invalid_token", "error_description": "Invalid token"}, 401)
        return JSONResponse(
            {
                "dc": "us1",
                "role": "owner",
                "accountname": "Example",
                "login_url": "https://login.mailchimp.com",
                "api_endpoint": str(request.base_url) + "dc",
            }
        )

    async def bearer_only(self, request: Request) -> Response:
        self.saw(request)
        if request.headers.get("authorization") not in (f"Bearer {TOKEN}", f"Bearer {TOKEN}-fresh"):
            return JSONResponse({"error": "unauthorized"}, 401)
        return JSONResponse({"ok": True})

    async def echo(self, request: Request) -> Response:
        self.saw(request)
        return JSONResponse({"authorization": request.headers.get("authorization"), **request.query_params})


@pytest.fixture
def provider() -> Iterator[tuple[Provider, str]]:
    imitation = Provider()
    with serve_in_thread(imitation.app()) as url:
        yield imitation, url


@pytest_asyncio.fixture
async def kit() -> AsyncIterator[HttpKit]:
    kit = HttpKit(egress=sandbox_egress(), max_retries=0)
    try:
        yield kit
    finally:
        await kit.aclose()


def access(auth: Auth, base_url: str, credentials: Credentials) -> ConnectionAccess:
    return ConnectionAccess(
        key=f"auth-test-{id(credentials)}",
        auth=auth,
        base_url=base_url,
        credentials=credentials,
        parse_error=default_error,
        rate_limit=None,
        hosts=HOSTS,
        app=APP,
        base_url_key=auth.base_url_key if isinstance(auth, OAuth2) else None,
    )


async def exchange(auth: OAuth2, base_url: str) -> Credentials:
    return await exchange_code(
        auth,
        APP,
        base_url,
        code="the-code",
        redirect_uri="https://xkit.example/callback",
        code_verifier=None,
        limits=TokenCallLimits(),
        egress=sandbox_egress(),
        hosts=HOSTS.oauth,
    )


def pipedrive(url: str, client_auth: ClientAuth = "client_secret_basic") -> OAuth2:
    return OAuth2(
        f"{url}/oauth/authorize",
        f"{url}/oauth/token",
        pkce=False,
        client_auth=client_auth,
        after_token=BaseUrlFrom("api_domain"),
    )


def mailchimp(url: str, metadata: AccountMetadata) -> OAuth2:
    """Mailchimp's OAuth as the imitation serves it (its token endpoint Zendesk's, for brevity)."""
    return OAuth2(f"{url}/oauth2/authorize", "/oauth/tokens", token_body="json", after_token=metadata)


async def test_a_json_token_endpoint_gets_its_grant_as_json_and_refuses_a_form(provider: tuple[Provider, str]) -> None:
    imitation, url = provider
    zendesk = OAuth2(authorize_url=f"{url}/oauth/authorizations/new", token_url="/oauth/tokens", token_body="json")
    credentials = await exchange(zendesk, url)
    assert credentials.access_token == TOKEN and credentials.scopes == ["read", "write"]
    with pytest.raises(ReauthRequired, match="JSON body expected"):
        await exchange(OAuth2(authorize_url=zendesk.authorize_url, token_url="/oauth/tokens"), url)
    assert [path for path, _, _ in imitation.seen] == ["/oauth/tokens", "/oauth/tokens"]


async def test_basic_client_auth_at_the_token_endpoint_and_calls_to_the_api_domain_it_names(
    provider: tuple[Provider, str], kit: HttpKit
) -> None:
    imitation, url = provider
    pipedrive_oauth = pipedrive(url)
    credentials = await exchange(pipedrive_oauth, NOWHERE)
    assert credentials.extra["api_domain"] == url
    # The connection's base URL leads nowhere: only the token's api_domain reaches the provider.
    session = kit.session(access(pipedrive_oauth, NOWHERE, credentials))
    assert await session.get_json("/api/v1/users/me") == {"ok": True}
    renewed = await refresh(
        pipedrive_oauth, APP, NOWHERE, credentials, limits=TokenCallLimits(), egress=sandbox_egress(), hosts=HOSTS.oauth
    )
    assert renewed.access_token == TOKEN + "-fresh" and renewed.extra["api_domain"] == url
    with pytest.raises(ReauthRequired, match="Invalid client"):
        await exchange(pipedrive(url, client_auth="client_secret_post"), NOWHERE)
    # The last one refused: the secret came in the body, not in Basic.
    assert [path for path, _, _ in imitation.seen] == ["/oauth/token", "/api/v1/users/me"] + ["/oauth/token"] * 2


async def test_the_data_center_comes_from_the_metadata_url_asked_with_the_token(
    provider: tuple[Provider, str], kit: HttpKit
) -> None:
    imitation, url = provider
    data_center = AccountMetadata(
        f"{url}/oauth2/metadata",
        keeps=("dc", "api_endpoint"),
        base_url_key="api_endpoint",
        authorization="OAuth {token}",
    )
    mailchimp_oauth = mailchimp(url, data_center)
    credentials = await exchange(mailchimp_oauth, url)
    assert credentials.extra["dc"] == "us1" and credentials.extra["api_endpoint"] == f"{url}/dc"
    assert await kit.session(access(mailchimp_oauth, NOWHERE, credentials)).get_json("/3.0/ping") == {"ok": True}
    assert [path for path, _, _ in imitation.seen] == ["/oauth/tokens", "/oauth2/metadata", "/dc/3.0/ping"]
    # Asked the usual way, with Bearer, the metadata URL refuses the token.
    bearer = mailchimp(url, AccountMetadata(f"{url}/oauth2/metadata", keeps=("dc",)))
    with pytest.raises(ReauthRequired, match="Invalid token"):
        await exchange(bearer, url)


@pytest.mark.parametrize(
    ("auth", "credentials", "expected"),
    [
        (
            Basic("{email}/token", "{key}"),
            Credentials(api_key="6wiIBW", extra={"email": "jdoe@example.com"}),
            {"authorization": basic("jdoe@example.com/token", "6wiIBW")},
        ),
        (Basic(), Credentials(api_key="sk_test_1"), {"authorization": basic("sk_test_1", "")}),
        (ApiKey(), Credentials(api_key="sk_test_1"), {"authorization": "Bearer sk_test_1"}),
        (Basic("anystring", "{key}"), Credentials(api_key="k-us6"), {"authorization": basic("anystring", "k-us6")}),
        (ApiKey(query="api_token"), Credentials(api_key="pd-1"), {"authorization": None, "api_token": "pd-1"}),
    ],
    ids=["zendesk-token", "stripe-basic", "stripe-bearer", "mailchimp-basic", "pipedrive-query"],
)
async def test_a_static_key_is_sent_where_the_provider_takes_it(
    provider: tuple[Provider, str], kit: HttpKit, auth: Auth, credentials: Credentials, expected: dict[str, Any]
) -> None:
    _, url = provider
    answer = await kit.session(access(auth, url, credentials)).get_json("/keyed", params={"limit": "5"})
    assert answer == {**expected, "limit": "5"}


async def test_a_key_template_naming_a_missing_credential_sends_nothing(
    provider: tuple[Provider, str], kit: HttpKit
) -> None:
    imitation, url = provider
    session = kit.session(access(Basic("{email}/token", "{key}"), url, Credentials(api_key="6wiIBW")))
    with pytest.raises(ReauthRequired, match="lack email"):
        await session.get_json("/keyed")
    assert imitation.seen == []
