"""The OAuth connect flow: a connect link for one end user, bound to the first browser that opens it, and
the provider's callback that turns the code into a connection.

`connectUrl` returns a link to the gateway's own start page, never the provider's: the start page gives the
browser a random nonce in a cookie and records its hash on the link, and the callback completes only in
the browser that brings that nonce back. A link sent to someone else (or a provider consent URL lifted from
it) cannot connect their account to the wrong end user. The end user is sent back only to a redirect URI
the platform registered, compared as an exact string.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row

from connectors import get_connector
from connectors.kit import oauth
from connectors.kit.errors import BadInput, XkitError
from connectors.kit.oauth import OAuth2
from resolvers.connections import check_external_user_id, connect_values, wake
from resolvers.context import Caller, Services
from resolvers.ids import to_global_id
from resolvers.redirect_uris import check_redirect_uri
from sync.storage.store import utcnow
from sync.storage.tables import oauth_states
from sync.tenancy import connections as store_connections
from sync.tenancy.connections import NewConnection
from sync.tenancy.platforms import get_provider_app
from sync.tenancy.redirect_uris import is_registered

START_PATH = "/oauth/start"
CALLBACK_PATH = "/oauth/callback"
COOKIE_PATH = "/oauth"
COOKIE_PREFIX = "xkit_connect_"

# Made by authlib (letters and digits) and by secrets.token_urlsafe; anything else was never issued.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_STATE_LENGTH: int = oauth_states.c.state.type.length  # type: ignore[attr-defined]


class WrongBrowser(XkitError):
    """The link belongs to the browser that opened it first."""

    code = "FORBIDDEN"


def _unusable() -> BadInput:
    return BadInput("this connect link is unknown, expired or already used; start again from the application")


def _elsewhere() -> WrongBrowser:
    return WrongBrowser("this connect link was opened in another browser; start again from the application in this one")


def is_token(value: str | None) -> bool:
    return value is not None and len(value) <= _STATE_LENGTH and _TOKEN.fullmatch(value) is not None


def cookie_name(state: str) -> str:
    """One cookie per link, so two connect flows in one browser do not overwrite each other's nonce."""
    return COOKIE_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:24]


def _binding(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _holds(binding: str | None, nonce: str | None) -> bool:
    return binding is not None and is_token(nonce) and hmac.compare_digest(binding, _binding(nonce or ""))


def callback_url(services: Services) -> str:
    return services.public_url.rstrip("/") + CALLBACK_PATH


@dataclass(frozen=True)
class ConnectLink:
    url: str
    state: str
    expires_at: datetime


async def connect_url(
    caller: Caller, provider: str, external_user_id: str, redirect_uri: str, inputs: object = None
) -> ConnectLink:
    connector = get_connector(provider.strip().lower())
    check_external_user_id(external_user_id)
    values = connect_values(connector, inputs)
    check_redirect_uri(redirect_uri, field="redirectUri")
    async with caller.store.reader.connect() as conn:
        if not await is_registered(conn, caller.platform_id, redirect_uri):
            raise BadInput(
                "redirectUri is not one of this platform's registered redirect URIs (exact match): "
                "register it with addRedirectUri first",
                field="redirectUri",
            )
        if not isinstance(connector.auth, OAuth2):
            raise BadInput(
                f"{connector.display_name} uses API keys: create the connection with credentials.apiKey",
                field="provider",
            )
        app = await get_provider_app(caller.store, conn, caller.platform_id, connector.name)
    if app is None:
        raise BadInput(
            f"no OAuth app configured for {connector.display_name}: call setProviderApp first", field="provider"
        )
    if values and connector.connect_inputs is not None:
        # The account's own host: https://{subdomain}.zendesk.com/oauth/authorizations/new
        template = app.authorize_url or connector.auth.authorize_url
        app = replace(app, authorize_url=connector.connect_inputs.fill(template, values))
    request = oauth.new_authorization_request(connector.auth, app, callback_url(caller.services))
    expires_at = utcnow() + caller.services.connect.link_ttl
    verifier = (
        caller.store.vault.encrypt(request.code_verifier.encode(), bound_to=request.state)
        if request.code_verifier
        else None
    )
    async with caller.store.engine.begin() as conn:
        await conn.execute(
            oauth_states.insert().values(
                state=request.state,
                platform_id=caller.platform_id,
                provider=connector.name,
                external_user_id=external_user_id,
                redirect_uri=redirect_uri,
                code_verifier_encrypted=verifier,
                expires_at=expires_at,
                authorize_url=request.url,
                connect_inputs=values or None,
            )
        )
    start = caller.services.public_url.rstrip("/") + START_PATH + "?" + urlencode({"state": request.state})
    return ConnectLink(start, request.state, expires_at)


@dataclass(frozen=True)
class OpenedLink:
    """Where to send the browser, and the nonce its cookie must carry until the callback."""

    authorize_url: str
    nonce: str
    expires_at: datetime


async def _live_link(services: Services, state: str) -> Row[Any]:
    if not is_token(state):
        raise _unusable()
    async with services.store.reader.connect() as conn:
        row = (await conn.execute(select(oauth_states).where(oauth_states.c.state == state))).first()
    if row is None or row.expires_at <= utcnow() or row.authorize_url is None:
        raise _unusable()
    return row


async def open_connect_link(services: Services, state: str, nonce: str | None) -> OpenedLink:
    """Bind the link to this browser if no browser holds it yet; the browser holding it may open it again."""
    row = await _live_link(services, state)
    if _holds(row.browser_binding, nonce):
        assert nonce is not None
        return OpenedLink(row.authorize_url, nonce, row.expires_at)
    if row.browser_binding is not None:
        raise _elsewhere()
    fresh = secrets.token_urlsafe(32)
    async with services.store.engine.begin() as conn:
        bound = await conn.execute(
            update(oauth_states)
            .where(
                oauth_states.c.state == state,
                oauth_states.c.browser_binding.is_(None),
                oauth_states.c.expires_at > utcnow(),
            )
            .values(browser_binding=_binding(fresh))
        )
    if bound.rowcount != 1:  # another browser bound it first, or it was used or expired meanwhile
        raise _elsewhere()
    return OpenedLink(row.authorize_url, fresh, row.expires_at)


@dataclass(frozen=True)
class CallbackOutcome:
    redirect_to: str


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


async def complete_connect(
    services: Services, state: str, code: str | None, error: str | None, nonce: str | None
) -> CallbackOutcome:
    """The provider sent the end user back: trade the code for tokens and create the connection.

    Only the browser that opened the link may use it, once; any other request changes nothing. Once used,
    the outcome goes to the link's redirect URI, and only while the platform still has it registered.
    """
    store = services.store
    row = await _live_link(services, state)
    if not _holds(row.browser_binding, nonce):
        raise _elsewhere()
    async with store.engine.begin() as conn:
        used = await conn.execute(
            delete(oauth_states).where(
                oauth_states.c.state == state, oauth_states.c.browser_binding == row.browser_binding
            )
        )
        still_registered = await is_registered(conn, row.platform_id, row.redirect_uri)
    if used.rowcount != 1:  # a concurrent callback of the same browser used it first
        raise _unusable()
    if not still_registered:
        raise BadInput("the application no longer accepts connections at this address; start again from it")
    if error or not code:
        return CallbackOutcome(_with_query(row.redirect_uri, error=error or "missing_code", state=state))
    connector = get_connector(row.provider)
    assert isinstance(connector.auth, OAuth2)
    async with store.reader.connect() as conn:
        app = await get_provider_app(store, conn, row.platform_id, row.provider)
    if app is None:
        return CallbackOutcome(_with_query(row.redirect_uri, error="provider_app_removed", state=state))
    verifier = (
        store.vault.decrypt(row.code_verifier_encrypted, bound_to=state).decode()
        if row.code_verifier_encrypted
        else None
    )
    values: dict[str, str] = dict(row.connect_inputs or {})
    inputs = connector.connect_inputs
    account_url = app.base_url
    if inputs is not None and values:
        account_url = inputs.fill(app.base_url, values) if app.base_url else inputs.account_url(values)
    base_url = account_url or connector.base_url
    try:
        credentials = await oauth.exchange_code(
            connector.auth,
            app,
            base_url,
            code=code,
            redirect_uri=callback_url(services),
            code_verifier=verifier,
            limits=services.kit.token_limits,
            egress=services.kit.egress,
            hosts=connector.hosts.oauth,
        )
    except XkitError as exc:
        return CallbackOutcome(
            _with_query(row.redirect_uri, error="token_exchange_failed", error_description=exc.message, state=state)
        )
    connection_id = await store_connections.create_connection(
        store,
        NewConnection(
            platform_id=row.platform_id,
            provider=row.provider,
            external_user_id=row.external_user_id,
            credentials=credentials.with_extra(values),
            base_url=account_url,
        ),
    )
    wake(services)
    return CallbackOutcome(_with_query(row.redirect_uri, connection_id=to_global_id("Connection", connection_id)))
