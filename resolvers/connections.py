"""Connections: listing, importing tokens, the OAuth connect flow, deleting, syncing now."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row

from connectors import get_connector
from connectors.kit.connect_inputs import refuse_inputs
from connectors.kit.credentials import Credentials
from connectors.kit.declaration import Connector
from connectors.kit.egress import EgressRefused, HostPatterns
from connectors.kit.errors import BadInput, NotFound, ReauthRequired, XkitError
from connectors.kit.keys import StaticKey
from connectors.kit.oauth import OAuth2, OAuthApp
from resolvers.context import Caller, Services
from resolvers.paging import Keyset, PageOf, PageRequest, int_key, keyset_page, time_and_id, uuid_key
from resolvers.records import check_page_size
from sync.storage.tables import connections, end_users, sync_runs
from sync.tenancy import connections as store_connections
from sync.tenancy.connections import NewConnection
from sync.tenancy.platforms import set_provider_app

log = logging.getLogger(__name__)

MIN_SYNC_INTERVAL = 5


@dataclass(frozen=True)
class CredentialsInput:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = None
    api_key: str | None = None
    email: str | None = None


CONNECTION_ORDER = Keyset((connections.c.created_at, connections.c.id), descending=False)


async def list_connections(
    caller: Caller, request: PageRequest, provider: str | None, external_user_id: str | None
) -> PageOf[Row[Any]]:
    """Oldest first, keyset-paged on (created_at, id)."""
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
    return await keyset_page(
        caller, stmt, CONNECTION_ORDER, "connections", request, time_and_id("created_at"), uuid_key
    )


async def get_connection(caller: Caller, connection_id: uuid.UUID) -> Row[Any]:
    row = await caller.loaders.connection.load(connection_id)
    if row is None:
        raise NotFound("no connection with that id", field="id")
    return row


def _credentials_for(provider: str, given: CredentialsInput, *, test_keys_only: bool = False) -> Credentials:
    connector = get_connector(provider)
    key_auth = connector.auth if isinstance(connector.auth, StaticKey) else connector.key_auth
    if key_auth is not None and (given.api_key or not isinstance(connector.auth, OAuth2)):
        if not given.api_key:
            raise BadInput(f"{connector.display_name} connections need credentials.apiKey", field="credentials.apiKey")
        _check_key(connector, given.api_key.strip(), test_keys_only=test_keys_only)
        extra = {**connector.pinned, **({"email": given.email} if given.email else {})}
        credentials = Credentials(api_key=given.api_key.strip(), extra=extra)
        try:
            key_auth.headers(credentials)
        except ReauthRequired:
            raise BadInput(
                f"{connector.display_name} API keys are sent with the account's login: set credentials.email",
                field="credentials.email",
            ) from None
        return credentials
    if connector.oauth_requests is not None:
        # Its OAuth connections act through the platform's key on the account the connect flow names; a bare
        # token names no account, and without one requests would reach the platform's own.
        raise BadInput(
            f"{connector.display_name} connections take credentials.apiKey, or an account connected through connectUrl",
            field="credentials.apiKey",
        )
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


def _check_key(connector: Connector, key: str, *, test_keys_only: bool) -> None:
    """A key that cannot work is refused before anything is sent with it (a publishable key would be sent
    to the provider as if it were secret)."""
    if connector.key_format is None:
        return
    problem = connector.key_format.problem(key, test_only=test_keys_only)
    if problem is not None:
        raise BadInput(
            f"{connector.display_name}: {problem}", field="credentials.apiKey", hint=connector.key_format.hint
        )


async def _learn_key_account(caller: Caller, connector: Connector, connection_id: uuid.UUID) -> None:
    """A key connection's provider account (`Connector.key_account`: Stripe's `GET /v1/account`), kept so its
    webhooks match it. A failure is only logged: the connection syncs without it."""
    where = connector.key_account
    row = await store_connections.get_connection_row(caller.store, connection_id)
    if where is None or row is None:
        return
    try:
        access = await store_connections.connection_access(caller.store, row)
        found = await caller.services.kit.session(access).get_json(where.path)
    except XkitError as exc:
        log.info("connection %s: could not learn its provider account: %s", connection_id, exc.message)
        return
    account = found.get(where.id_field) if isinstance(found, dict) else None
    if isinstance(account, str) and account:
        credentials = access.credentials.with_extra({where.keep_as: account})
        await store_connections.save_credentials(
            caller.store, connection_id, credentials, store_connections.account_of(connector, credentials)
        )


def connect_values(connector: Connector, given: object, *, field: str = "inputs") -> dict[str, str]:
    """The provider-specific inputs, checked by the connector before anything is sent anywhere."""
    if connector.connect_inputs is None:
        refuse_inputs(connector.display_name, given, field=field)
        return {}
    if given is None:
        names = ", ".join(connector.connect_inputs.names)
        raise BadInput(f"{connector.display_name} needs {field} with {names}", field=field)
    return connector.connect_inputs.values(given, field=field)


def _check_provider_url(caller: Caller, url: str | None, hosts: HostPatterns, field: str) -> None:
    """A URL xkit will send credentials or a client secret to: one of the provider's hosts over https,
    unless the operator allowlisted it; checked again on every request."""
    if url is None:
        return
    try:
        caller.services.kit.egress.check_provider_url(url, hosts)
    except EgressRefused as refused:
        raise BadInput(f"{field} {refused}", field=field) from None


def check_external_user_id(external_user_id: str) -> None:
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
    inputs: object = None,
) -> Row[Any]:
    provider = provider.strip().lower()
    check_external_user_id(external_user_id)
    connector = get_connector(provider)
    values = connect_values(connector, inputs)
    if connector.connect_inputs is not None and base_url is None:
        base_url = connector.connect_inputs.account_url(values)
    _check_provider_url(caller, base_url, connector.hosts.api, "baseUrl")
    test_keys_only = caller.services.connect.test_keys_only
    sealed = _credentials_for(provider, credentials, test_keys_only=test_keys_only).with_extra(values)
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
    await store_connections.learn_account(caller.store, caller.services.kit, connection_id)
    if sealed.api_key:
        await _learn_key_account(caller, connector, connection_id)
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


RUN_ORDER = Keyset((sync_runs.c.started_at, sync_runs.c.id), descending=True)


async def list_runs(caller: Caller, connection_id: uuid.UUID, request: PageRequest) -> PageOf[Row[Any]]:
    """A connection's sync runs, newest first."""
    stmt = select(sync_runs).where(
        sync_runs.c.platform_id == caller.platform_id, sync_runs.c.connection_id == connection_id
    )
    return await keyset_page(caller, stmt, RUN_ORDER, "runs", request, time_and_id("started_at"), int_key)


async def get_runs(caller: Caller, run_ids: list[int]) -> dict[int, Row[Any]]:
    """The caller's platform's sync runs among `run_ids`, by id."""
    if not run_ids:
        return {}
    stmt = select(sync_runs).where(sync_runs.c.platform_id == caller.platform_id, sync_runs.c.id.in_(run_ids))
    async with caller.store.reader.connect() as conn:
        return {row.id: row for row in (await conn.execute(stmt)).all()}


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


MAX_WEBHOOK_SECRET = 500


async def save_provider_app(caller: Caller, provider: str, app: OAuthApp) -> None:
    connector = get_connector(provider)
    if not isinstance(connector.auth, OAuth2):
        raise BadInput(f"{connector.display_name} does not use OAuth", field="provider")
    if not app.client_id or not app.client_secret:
        raise BadInput("clientId and clientSecret are required", field="clientId")
    if app.webhook_secret is not None and not 1 <= len(app.webhook_secret) <= MAX_WEBHOOK_SECRET:
        raise BadInput(f"webhookSecret must be 1 to {MAX_WEBHOOK_SECRET} characters", field="webhookSecret")
    _check_provider_url(caller, app.base_url, connector.hosts.api, "baseUrl")
    _check_provider_url(caller, app.authorize_url, connector.hosts.oauth, "authorizeUrl")
    await set_provider_app(caller.store, caller.platform_id, connector.name, app)


async def watch_runs(caller: Caller, connection_id: uuid.UUID) -> AsyncIterator[Row[Any]]:
    """Sync runs of a connection as they start, advance (pages and records) and finish."""
    await get_connection(caller, connection_id)
    async for row in caller.services.runs.watch(caller.platform_id, connection_id):
        yield row
