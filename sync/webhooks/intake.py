"""Provider webhooks in: find who the delivery is about, verify it, fetch the changed records.

The body is parsed first (it is bounded by the gateway) for the provider accounts it names, and only the
platforms owning a connection to one of those accounts are candidates: a delivery naming no known
account is refused without any signature work, and one naming several is verified once per distinct
owning platform, off the event loop. A delivery is trusted only if it is signed with the OAuth app
secret of such a platform, and only that platform's connections are touched (tenants never meet).
Events say *that* a record changed; the record is read again with the stream's `lookup` (the same read
the sync does), so what lands in the cache, and in the change log, is exactly what polling would have
stored: no echo, no doubles when the next poll sees it too. A deletion marks the record deleted.

A delivery fully processed is remembered by a digest of its signature until it can no longer be fresh:
the same delivery sent again changes nothing and costs no provider call. One that failed is not
remembered, so the provider's retry is processed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from connectors import CONNECTORS, get_connector
from connectors.kit.declaration import Connector
from connectors.kit.errors import BadInput, NotFound
from connectors.kit.http import HttpKit
from connectors.kit.records import RemoteRecord
from connectors.kit.webhooks import WebhookDelivery, WebhookEvent, WebhookRejected, WebhookRequest, WebhookVerifier
from sync.cache.discovery import DiscoveryCache
from sync.cache.records import StreamTarget, mark_deleted, upsert_records
from sync.storage.crypto import SecretKeyError
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections, provider_apps, webhook_receipts
from sync.tenancy.connections import ACTIVE, account_of, connection_access, unseal

# Accounts looked up per statement (a delivery may name many; SQLite bounds bound parameters).
_ACCOUNTS_PER_QUERY = 500


@dataclass(frozen=True)
class IntakeResult:
    events: int
    fetched: int
    deleted: int
    replay: bool = False  # the same delivery was processed before: nothing was done


async def receive(
    store: Store,
    kit: HttpKit,
    discoveries: DiscoveryCache,
    provider: str,
    request: WebhookRequest,
    *,
    also_addressed_as: Sequence[str] = (),
) -> IntakeResult:
    """`also_addressed_as`: other URLs the provider may have signed (behind a proxy, the public one)."""
    try:
        connector = get_connector(provider)
    except BadInput as unknown:
        raise NotFound(unknown.message) from None
    verifier, parser = connector.webhook, connector.webhook_events
    if verifier is None or parser is None or connector.webhook_account_key is None:
        raise NotFound(f"{connector.display_name} sends no webhooks xkit listens to")
    delivery = addressed_to(connector, parser.parse(request.body), request.url)
    owners = await _owning_platforms(store, connector, delivery.accounts)
    if not owners:
        raise WebhookRejected(f"the webhook names no {connector.display_name} account connected here")
    addressed = [request] + [replace(request, url=url) for url in also_addressed_as if url != request.url]
    platforms = await _signing_platforms(store, connector, verifier, addressed, owners)
    digest = hashlib.sha256(verifier.signature(request).encode()).hexdigest()
    if await _received_before(store, connector.name, digest):
        return IntakeResult(len(delivery.events), 0, 0, replay=True)
    by_account: dict[str, list[WebhookEvent]] = defaultdict(list)
    for event in delivery.events:
        by_account[event.account].append(event)
    fetched = deleted = 0
    for row in await _connections(store, connector, platforms, set(by_account)):
        f, d = await _apply(store, kit, discoveries, connector, row, by_account[row.account_id])
        fetched, deleted = fetched + f, deleted + d
    await _remember(store, connector.name, digest)
    return IntakeResult(len(delivery.events), fetched, deleted)


def addressed_to(connector: Connector, delivery: WebhookDelivery, url: str) -> WebhookDelivery:
    """The delivery with the account its URL names, for a connector whose deliveries may be addressed so;
    as the body says when the URL names none."""
    if connector.webhook_account_param is None:
        return delivery
    named = parse_qs(urlsplit(url).query).get(connector.webhook_account_param, [])
    if not named:
        return delivery
    if len(named) != 1 or not named[0]:
        return WebhookDelivery(frozenset(), [])
    account = named[0]
    return WebhookDelivery(frozenset({account}), [replace(event, account=account) for event in delivery.events])


def _chunks(accounts: Iterable[str]) -> list[list[str]]:
    ordered = sorted(accounts)
    return [ordered[i : i + _ACCOUNTS_PER_QUERY] for i in range(0, len(ordered), _ACCOUNTS_PER_QUERY)]


async def _owning_platforms(store: Store, connector: Connector, accounts: frozenset[str]) -> set[uuid.UUID]:
    """The platforms with an active connection to one of these accounts: one indexed lookup."""
    await _fill_account_ids(store, connector)
    owners: set[uuid.UUID] = set()
    async with store.reader.connect() as conn:
        for chunk in _chunks(accounts):
            rows = await conn.execute(
                select(connections.c.platform_id)
                .distinct()
                .where(
                    connections.c.provider == connector.name,
                    connections.c.account_id.in_(chunk),
                    connections.c.status == ACTIVE,
                )
            )
            owners.update(rows.scalars())
    return owners


async def _fill_account_ids(store: Store, connector: Connector) -> None:
    """Connections made before account ids were kept in the clear get theirs, once, from their credentials."""
    async with store.reader.connect() as conn:
        missing = (
            await conn.execute(
                select(connections.c.id, connections.c.credentials_encrypted).where(
                    connections.c.provider == connector.name, connections.c.account_id.is_(None)
                )
            )
        ).all()
    if not missing:
        return
    found: dict[uuid.UUID, str | None] = {}
    for connection_id, sealed in missing:
        try:
            found[connection_id] = account_of(connector, unseal(store, connection_id, sealed))
        except SecretKeyError:
            continue  # sealed under another key: unusable anyway, and nothing to learn from it
    async with store.engine.begin() as conn:
        for connection_id, account in found.items():
            await conn.execute(
                update(connections)
                .where(connections.c.id == connection_id, connections.c.account_id.is_(None))
                .values(account_id=account)
            )


async def _signing_platforms(
    store: Store,
    connector: Connector,
    verifier: WebhookVerifier,
    addressed: list[WebhookRequest],
    owners: set[uuid.UUID],
) -> list[uuid.UUID]:
    """Those of the owning platforms whose app's webhook secret (its client secret unless it has one of its own)
    signed this request; none means it is refused."""
    async with store.reader.connect() as conn:
        apps = (
            await conn.execute(
                select(
                    provider_apps.c.platform_id,
                    provider_apps.c.client_secret_encrypted,
                    provider_apps.c.webhook_secret_encrypted,
                ).where(provider_apps.c.provider == connector.name, provider_apps.c.platform_id.in_(owners))
            )
        ).all()
    candidates = []
    for platform_id, client_sealed, webhook_sealed in apps:
        row_key = f"{platform_id}:{connector.name}"
        secret = (
            store.vault.decrypt(webhook_sealed, bound_to=f"{row_key}:webhook")
            if webhook_sealed
            else store.vault.decrypt(client_sealed, bound_to=row_key)
        )
        candidates.append((platform_id, secret.decode()))
    if not candidates:
        raise WebhookRejected(f"no {connector.display_name} app is configured to sign webhooks")
    # HMAC over the whole body: in a thread, so a large delivery never holds up other requests.
    signed, last = await asyncio.to_thread(_verify, verifier, addressed, candidates, time.time())
    if not signed:
        raise last or WebhookRejected("the webhook signature does not match")
    return signed


def _verify(
    verifier: WebhookVerifier, addressed: list[WebhookRequest], candidates: list[tuple[uuid.UUID, str]], now: float
) -> tuple[list[uuid.UUID], WebhookRejected | None]:
    signed: list[uuid.UUID] = []
    last: WebhookRejected | None = None
    for platform_id, secret in candidates:
        for request in addressed:
            try:
                verifier.verify(request, secret, now=now)
            except WebhookRejected as rejected:
                last = rejected
                continue
            signed.append(platform_id)
            break
    return signed, last


async def _received_before(store: Store, provider: str, digest: str) -> bool:
    async with store.reader.connect() as conn:
        seen = await conn.execute(
            select(webhook_receipts.c.digest).where(
                webhook_receipts.c.provider == provider, webhook_receipts.c.digest == digest
            )
        )
        return seen.first() is not None


async def _remember(store: Store, provider: str, digest: str) -> None:
    try:
        async with store.engine.begin() as conn:
            await conn.execute(insert(webhook_receipts).values(provider=provider, digest=digest, received_at=utcnow()))
    except IntegrityError:
        pass  # the same delivery, processed at the same time by another request


def replay_window(verifier: WebhookVerifier) -> timedelta:
    """How long a receipt must be kept: a request is fresh up to its max age either side of its timestamp,
    so one received now may still be accepted twice that long from now."""
    return timedelta(seconds=2 * verifier.max_age_seconds)


async def purge_receipts(store: Store, older_than: timedelta | None = None) -> int:
    """Forget receipts of deliveries that can no longer be fresh (by default, the longest window of any
    provider that takes webhooks)."""
    if older_than is None:
        windows = [replay_window(c.webhook) for c in CONNECTORS.values() if c.webhook is not None]
        older_than = max(windows, default=timedelta(0))
    async with store.engine.begin() as conn:
        result = await conn.execute(
            delete(webhook_receipts).where(webhook_receipts.c.received_at < utcnow() - older_than)
        )
    return int(result.rowcount or 0)


async def _connections(store: Store, connector: Connector, platforms: list[uuid.UUID], accounts: set[str]) -> list[Any]:
    rows: list[Any] = []
    async with store.reader.connect() as conn:
        for chunk in _chunks(accounts):
            found = await conn.execute(
                select(connections).where(
                    connections.c.provider == connector.name,
                    connections.c.platform_id.in_(platforms),
                    connections.c.account_id.in_(chunk),
                    connections.c.status == ACTIVE,
                )
            )
            rows.extend(found.all())
    return rows


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
        target = StreamTarget.of(connection, stream, max_record_bytes=kit.max_record_bytes)
        changed = [i for i, gone in ids.items() if not gone]
        found: list[RemoteRecord] = []
        if changed and stream.lookup is not None:
            ctx = await discoveries.context(session, stream, connection.id, store=store)
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
