"""Connections: listing, importing tokens, the OAuth connect flow, deleting, syncing now."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.engine import Row

from connectors import get_connector
from connectors.kit import oauth
from connectors.kit.credentials import Credentials
from connectors.kit.errors import BadInput, NotFound, XkitError
from connectors.kit.oauth import ApiKey, OAuth2, OAuthApp
from resolvers.context import Caller, Services
from resolvers.ids import Position, to_global_id
from resolvers.records import PageOf, check_page_size
from sync import connections as store_connections
from sync.connections import NewConnection
from sync.store import utcnow
from sync.tables import connections, end_users, oauth_states, sync_runs
from sync.tenancy import get_provider_app, set_provider_app

CONNECT_STATE_TTL = timedelta(minutes=15)
MIN_SYNC_INTERVAL = 5


@dataclass(frozen=True)
class CredentialsInput:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = None
    api_key: str | None = None


async def list_connections(
    caller: Caller, first: int, after: str | None, provider: str | None, external_user_id: str | None
) -> PageOf[Row[Any]]:
    """Oldest first, keyset-paged on (created_at, id)."""
    check_page_size(first)
    codec = caller.services.cursors
    scope = "connections"
    stmt = select(connections).where(connections.c.platform_id == caller.platform_id)
    if provider is not None:
        stmt = stmt.where(connections.c.provider == provider.lower())
    if external_user_id is not None:
        stmt = stmt.where(
            connections.c.end_user_id.in_(
                select(end_users.c.id).where(
                    end_users.c.platform_id == caller.platform_id, end_users.c.external_id == external_user_id
                )
            )
        )
    if after is not None:
        position = codec.decode(scope, after)
        try:
            last_id = uuid.UUID(str(position.key))
        except ValueError:
            raise BadInput("the cursor belongs to another list", field="after") from None
        created = connections.c.created_at
        stmt = stmt.where(
            or_(created > position.updated_at, and_(created == position.updated_at, connections.c.id > last_id))
        )
    stmt = stmt.order_by(connections.c.created_at, connections.c.id).limit(first + 1)
    async with caller.store.reader.connect() as conn:
        rows = list((await conn.execute(stmt)).all())
    edges = [(codec.encode(scope, Position(row.created_at, str(row.id))), row) for row in rows[:first]]
    return PageOf(edges, len(rows) > first)


async def get_connection(caller: Caller, connection_id: uuid.UUID) -> Row[Any]:
    row = await caller.loaders.connection.load(connection_id)
    if row is None:
        raise NotFound("no connection with that id", field="id")
    return row


def _credentials_for(provider: str, given: CredentialsInput) -> Credentials:
    connector = get_connector(provider)
    if isinstance(connector.auth, ApiKey):
        if not given.api_key:
            raise BadInput(f"{connector.display_name} connections need credentials.apiKey", field="credentials.apiKey")
        return Credentials(api_key=given.api_key)
    if not given.access_token:
        raise BadInput(
            f"{connector.display_name} connections need credentials.accessToken (and a refreshToken to stay fresh)",
            field="credentials.accessToken",
        )
    if given.expires_at is not None and given.expires_at.tzinfo is None:
        raise BadInput(
            "credentials.expiresAt needs a timezone, e.g. 2026-01-01T00:00:00Z", field="credentials.expiresAt"
        )
    return Credentials(access_token=given.access_token, refresh_token=given.refresh_token, expires_at=given.expires_at)


def _check_base_url(base_url: str | None) -> None:
    if base_url is None:
        return
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise BadInput("baseUrl must be an absolute http(s) URL", field="baseUrl")


def _check_external_user_id(external_user_id: str) -> None:
    if not external_user_id or len(external_user_id) > 255:
        raise BadInput("externalUserId must be 1 to 255 characters", field="externalUserId")


async def create_connection(
    caller: Caller,
    *,
    provider: str,
    external_user_id: str,
    credentials: CredentialsInput,
    base_url: str | None,
    sync_interval_seconds: int | None,
) -> Row[Any]:
    provider = provider.strip().lower()
    _check_external_user_id(external_user_id)
    _check_base_url(base_url)
    sealed = _credentials_for(provider, credentials)
    connector = get_connector(provider)
    if connector.base_url_from_credentials and base_url is None:
        raise BadInput(
            f"{connector.display_name} connections from imported tokens need baseUrl: "
            f"the {connector.base_url_from_credentials} the token was issued with",
            field="baseUrl",
        )
    interval = sync_interval_seconds or int(store_connections.DEFAULT_SYNC_INTERVAL.total_seconds())
    if interval < MIN_SYNC_INTERVAL:
        raise BadInput(f"syncIntervalSeconds must be at least {MIN_SYNC_INTERVAL}", field="syncIntervalSeconds")
    connection_id = await store_connections.create_connection(
        caller.store,
        NewConnection(
            platform_id=caller.platform_id,
            provider=provider,
            external_user_id=external_user_id,
            credentials=sealed,
            base_url=base_url,
            sync_interval_seconds=interval,
        ),
    )
    wake(caller.services)
    return await get_connection(caller, connection_id)


async def delete_connection(caller: Caller, connection_id: uuid.UUID) -> None:
    if not await store_connections.delete_connection(caller.store, caller.platform_id, connection_id):
        raise NotFound("no connection with that id", field="id")
    caller.services.kit.forget(str(connection_id))


async def sync_now(caller: Caller, connection_id: uuid.UUID) -> Row[Any]:
    row = await get_connection(caller, connection_id)
    await store_connections.request_sync_now(caller.store, caller.platform_id, connection_id)
    wake(caller.services)
    return row


def wake(services: Services) -> None:
    if services.worker is not None:
        services.worker.wake()


async def recent_runs(caller: Caller, connection_id: uuid.UUID, first: int) -> list[Row[Any]]:
    check_page_size(first)
    async with caller.store.reader.connect() as conn:
        return list(
            (
                await conn.execute(
                    select(sync_runs)
                    .where(sync_runs.c.platform_id == caller.platform_id, sync_runs.c.connection_id == connection_id)
                    .order_by(sync_runs.c.started_at.desc(), sync_runs.c.id.desc())
                    .limit(first)
                )
            ).all()
        )


async def save_provider_app(caller: Caller, provider: str, app: OAuthApp) -> None:
    connector = get_connector(provider)
    if not isinstance(connector.auth, OAuth2):
        raise BadInput(f"{connector.display_name} does not use OAuth", field="provider")
    if not app.client_id or not app.client_secret:
        raise BadInput("clientId and clientSecret are required", field="clientId")
    _check_base_url(app.base_url)
    _check_base_url(app.authorize_url)
    await set_provider_app(caller.store, caller.platform_id, connector.name, app)


@dataclass(frozen=True)
class ConnectLink:
    url: str
    state: str
    expires_at: datetime


def callback_url(services: Services) -> str:
    return services.public_url.rstrip("/") + "/oauth/callback"


async def connect_url(caller: Caller, provider: str, external_user_id: str, redirect_uri: str) -> ConnectLink:
    connector = get_connector(provider.strip().lower())
    _check_external_user_id(external_user_id)
    parts = urlsplit(redirect_uri)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise BadInput("redirectUri must be an absolute http(s) URL", field="redirectUri")
    if not isinstance(connector.auth, OAuth2):
        raise BadInput(f"{connector.display_name} uses API keys: create the connection with credentials.apiKey")
    async with caller.store.reader.connect() as conn:
        app = await get_provider_app(caller.store, conn, caller.platform_id, connector.name)
    if app is None:
        raise BadInput(
            f"no OAuth app configured for {connector.display_name}: call setProviderApp first", field="provider"
        )
    request = oauth.new_authorization_request(connector.auth, app, callback_url(caller.services))
    expires_at = utcnow() + CONNECT_STATE_TTL
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
            )
        )
    return ConnectLink(request.url, request.state, expires_at)


@dataclass(frozen=True)
class CallbackOutcome:
    redirect_to: str


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


async def complete_connect(services: Services, state: str, code: str | None, error: str | None) -> CallbackOutcome:
    """The provider sent the end user back: trade the code for tokens and create the connection.

    The state is single-use; whatever happens, the platform's redirect URI learns the outcome.
    """
    store = services.store
    async with store.engine.begin() as conn:
        row = (await conn.execute(select(oauth_states).where(oauth_states.c.state == state))).first()
        if row is not None:
            await conn.execute(delete(oauth_states).where(oauth_states.c.state == state))
    if row is None or row.expires_at < utcnow():
        raise BadInput("this connect link is unknown or expired; start again from the application")
    if error or not code:
        return CallbackOutcome(_with_query(row.redirect_uri, error=error or "missing_code", state=state))
    connector = get_connector(row.provider)
    assert isinstance(connector.auth, OAuth2)
    async with store.reader.connect() as conn:
        app = await get_provider_app(store, conn, row.platform_id, row.provider)
    if app is None:
        return CallbackOutcome(_with_query(row.redirect_uri, error="provider_app_removed"))
    verifier = (
        store.vault.decrypt(row.code_verifier_encrypted, bound_to=state).decode()
        if row.code_verifier_encrypted
        else None
    )
    base_url = app.base_url or connector.base_url
    try:
        credentials = await oauth.exchange_code(
            connector.auth, app, base_url, code=code, redirect_uri=callback_url(services), code_verifier=verifier
        )
    except XkitError as exc:
        return CallbackOutcome(
            _with_query(row.redirect_uri, error="token_exchange_failed", error_description=exc.message)
        )
    connection_id = await store_connections.create_connection(
        store,
        NewConnection(
            platform_id=row.platform_id,
            provider=row.provider,
            external_user_id=row.external_user_id,
            credentials=credentials,
            base_url=app.base_url,
        ),
    )
    wake(services)
    return CallbackOutcome(_with_query(row.redirect_uri, connection_id=to_global_id("Connection", connection_id)))


RUN_POLL_SECONDS = 0.5


async def watch_runs(caller: Caller, connection_id: uuid.UUID) -> AsyncIterator[Row[Any]]:
    """Sync runs of a connection as they start, advance (pages and records) and finish."""
    await get_connection(caller, connection_id)
    seen: dict[int, tuple[Any, ...]] = {}
    since = utcnow()
    while True:
        async with caller.store.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(sync_runs)
                    .where(
                        sync_runs.c.platform_id == caller.platform_id,
                        sync_runs.c.connection_id == connection_id,
                        (sync_runs.c.status == "running") | (sync_runs.c.started_at >= since),
                    )
                    .order_by(sync_runs.c.id)
                )
            ).all()
        for row in rows:
            state = (row.status, row.pages, row.records, row.changed)
            if seen.get(row.id) != state:
                seen[row.id] = state
                yield row
        await asyncio.sleep(RUN_POLL_SECONDS)
