"""Provider webhooks in: verify, find the connections the events are about, fetch the changed records.

A delivery is trusted only if it is signed with the OAuth app secret of some platform, and only that
platform's connections are touched (tenants never meet). Events say *that* a record changed; the
record is read again with the stream's `lookup` (the same read the sync does), so what lands in the
cache, and in the change log, is exactly what polling would have stored: no echo, no doubles when the
next poll sees it too. A deletion marks the record deleted.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from connectors import get_connector
from connectors.kit.declaration import Connector
from connectors.kit.errors import BadInput, NotFound
from connectors.kit.http import HttpKit
from connectors.kit.records import RemoteRecord
from connectors.kit.webhooks import WebhookEvent, WebhookRejected, WebhookRequest
from sync.cache import StreamTarget, mark_deleted, upsert_records
from sync.connections import ACTIVE, connection_access, unseal
from sync.runner import DiscoveryCache
from sync.store import Store, utcnow
from sync.tables import connections, provider_apps

# (connection id, when its row last changed) -> the provider account its credentials belong to. A
# reconnect updates the row, so a connection moved to another account is looked at again.
_accounts: dict[tuple[uuid.UUID, Any], str | None] = {}


@dataclass(frozen=True)
class IntakeResult:
    events: int
    fetched: int
    deleted: int


async def receive(
    store: Store, kit: HttpKit, discoveries: DiscoveryCache, provider: str, request: WebhookRequest
) -> IntakeResult:
    try:
        connector = get_connector(provider)
    except BadInput as unknown:
        raise NotFound(unknown.message) from None
    if connector.webhook is None or connector.webhook_events is None or connector.webhook_account_key is None:
        raise NotFound(f"{connector.display_name} sends no webhooks xkit listens to")
    platforms = await _signing_platforms(store, connector, request)
    events = connector.webhook_events.parse(request.body)
    by_account: dict[str, list[WebhookEvent]] = defaultdict(list)
    for event in events:
        by_account[event.account].append(event)
    fetched = deleted = 0
    for row in await _connections(store, connector, platforms, set(by_account)):
        f, d = await _apply(
            store, kit, discoveries, connector, row, by_account[_accounts[(row.id, row.updated_at)] or ""]
        )
        fetched, deleted = fetched + f, deleted + d
    return IntakeResult(len(events), fetched, deleted)


async def _signing_platforms(store: Store, connector: Connector, request: WebhookRequest) -> list[uuid.UUID]:
    """Every platform whose app secret signed this request; none means the request is refused."""
    assert connector.webhook is not None
    async with store.reader.connect() as conn:
        apps = (
            await conn.execute(
                select(provider_apps.c.platform_id, provider_apps.c.client_secret_encrypted).where(
                    provider_apps.c.provider == connector.name
                )
            )
        ).all()
    now = time.time()
    signed: list[uuid.UUID] = []
    last: WebhookRejected | None = None
    for platform_id, sealed in apps:
        secret = store.vault.decrypt(sealed, bound_to=f"{platform_id}:{connector.name}").decode()
        try:
            connector.webhook.verify(request, secret, now=now)
        except WebhookRejected as rejected:
            last = rejected
            continue
        signed.append(platform_id)
    if not signed:
        raise last or WebhookRejected(f"no {connector.display_name} app is configured to sign webhooks")
    return signed


async def _connections(store: Store, connector: Connector, platforms: list[uuid.UUID], accounts: set[str]) -> list[Any]:
    async with store.reader.connect() as conn:
        rows = (
            await conn.execute(
                select(connections).where(
                    connections.c.provider == connector.name,
                    connections.c.platform_id.in_(platforms),
                    connections.c.status == ACTIVE,
                )
            )
        ).all()
    key = connector.webhook_account_key
    assert key is not None
    for row in rows:
        if (row.id, row.updated_at) not in _accounts:
            account = unseal(store, row.id, row.credentials_encrypted).extra.get(key)
            _accounts[(row.id, row.updated_at)] = str(account) if account is not None else None
    return [row for row in rows if _accounts[(row.id, row.updated_at)] in accounts]


async def _apply(
    store: Store,
    kit: HttpKit,
    discoveries: DiscoveryCache,
    connector: Connector,
    connection: Any,
    events: list[WebhookEvent],
) -> tuple[int, int]:
    """Fetch what changed and mark what is gone, one transaction per stream."""
    by_stream: dict[str, dict[str, bool]] = defaultdict(dict)
    for event in events:
        # The last word on a record wins: a deletion after a change means it is gone.
        by_stream[event.stream][event.remote_id] = event.deleted
    session = kit.session(await connection_access(store, connection))
    fetched = deleted = 0
    for stream_name, ids in by_stream.items():
        try:
            stream = connector.stream(stream_name)
        except KeyError:
            continue
        target = StreamTarget.of(connection, stream)
        changed = [i for i, gone in ids.items() if not gone]
        found: list[RemoteRecord] = []
        if changed and stream.lookup is not None:
            ctx = await discoveries.context(session, stream, connection.id)
            found = await stream.lookup.fetch(ctx, changed)
        now = utcnow()
        present = {r.remote_id for r in found}
        gone = [i for i, is_gone in ids.items() if is_gone] + [i for i in changed if i not in present]
        async with store.engine.begin() as conn:
            await upsert_records(conn, target, found, now)
            await mark_deleted(conn, target, [RemoteRecord(i, {}, deleted=True, deleted_at=now) for i in gone], now)
        fetched, deleted = fetched + len(found), deleted + len(gone)
    store.changes_appended.notify()
    return fetched, deleted
