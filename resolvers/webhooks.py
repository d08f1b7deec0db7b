"""Webhook destinations: register, list, delete, replay; their deliveries. Always the caller's platform's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.engine import Row

from connectors.kit.egress import EgressRefused
from connectors.kit.errors import BadInput, NotFound
from resolvers.changes import start_position
from resolvers.context import Caller
from resolvers.ids import parse_connection_id, parse_uuid_id, to_global_id
from resolvers.paging import Keyset, PageOf, PageRequest, id_only, int_key, keyset_page, time_and_id, uuid_key
from sync.storage.tables import connections, webhook_deliveries, webhook_destinations
from sync.webhooks import outbound
from sync.webhooks.outbound import NewDestination

MAX_DELIVERIES_PAGE = 100
MIN_SECRET_LENGTH = 16
MAX_URL_LENGTH = 2000


@dataclass(frozen=True)
class DestinationInput:
    url: str
    secret: str | None = None
    models: list[str] | None = None
    connection_ids: list[str] | None = None
    external_user_ids: list[str] | None = None
    from_cursor: str | None = None


@dataclass(frozen=True)
class CreatedDestination:
    row: Row[Any]
    secret: str  # returned this once, never again


def destination_global_id(destination_id: uuid.UUID) -> str:
    return to_global_id("WebhookDestination", destination_id)


def connection_global_id(connection_id: str) -> str:
    return to_global_id("Connection", connection_id)


def parse_destination_id(global_id: str, *, field: str = "id") -> uuid.UUID:
    return parse_uuid_id(global_id, "WebhookDestination", field=field)


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or len(url) > MAX_URL_LENGTH:
        raise BadInput("url must be an absolute http(s) URL, e.g. https://api.example.com/xkit-events", field="url")
    if parts.fragment:
        raise BadInput("url must not have a #fragment", field="url")
    return url


async def _check_destination(caller: Caller, url: str) -> None:
    try:
        await caller.services.kit.egress.check_destination(url)
    except EgressRefused as refused:
        raise BadInput(
            f"url must point to a public address: {refused} (an operator can allow internal targets with "
            "XKIT_EGRESS_ALLOW)",
            field="url",
        ) from None


def _check_secret(secret: str | None) -> str:
    if secret is None:
        return outbound.generate_secret()
    if len(secret) < MIN_SECRET_LENGTH or len(secret) > 200 or secret != secret.strip():
        raise BadInput(
            f"secret must be {MIN_SECRET_LENGTH} to 200 characters without surrounding spaces; "
            "leave it out to have one generated",
            field="secret",
        )
    return secret


def _non_empty(values: list[Any] | None, field: str) -> None:
    if values is not None and not values:
        raise BadInput(f"{field} is empty, so nothing would be sent: leave it out to send every one", field=field)


async def _position(caller: Caller, cursor: str | None, field: str) -> int:
    """A change cursor given by the caller, checked against the log: not pruned, not from the future."""
    return await start_position(caller, cursor, field=field)


async def _own_connections(caller: Caller, given: list[str]) -> list[uuid.UUID]:
    wanted = [parse_connection_id(c, field="connectionIds") for c in given]
    async with caller.store.reader.connect() as conn:
        found = set(
            (
                await conn.execute(
                    select(connections.c.id).where(
                        connections.c.platform_id == caller.platform_id, connections.c.id.in_(wanted)
                    )
                )
            ).scalars()
        )
    for connection_id, global_id in zip(wanted, given, strict=True):
        if connection_id not in found:
            raise BadInput(f"no connection with id {global_id!r}", field="connectionIds")
    return list(dict.fromkeys(wanted))


async def create_destination(caller: Caller, given: DestinationInput) -> CreatedDestination:
    url = _check_url(given.url)
    await _check_destination(caller, url)
    secret = _check_secret(given.secret)
    _non_empty(given.models, "objects")
    _non_empty(given.connection_ids, "connectionIds")
    _non_empty(given.external_user_ids, "externalUserIds")
    connection_ids = await _own_connections(caller, given.connection_ids) if given.connection_ids is not None else None
    cursor = await _position(caller, given.from_cursor, "fromCursor")
    row = await outbound.create_destination(
        caller.store,
        NewDestination(
            platform_id=caller.platform_id,
            url=url,
            secret=secret,
            cursor=cursor,
            models=sorted(set(given.models)) if given.models is not None else None,
            connection_ids=connection_ids,
            external_user_ids=list(dict.fromkeys(given.external_user_ids))
            if given.external_user_ids is not None
            else None,
        ),
    )
    _wake(caller)
    return CreatedDestination(row, secret)


async def list_destinations(caller: Caller) -> list[Row[Any]]:
    return await outbound.list_destinations(caller.store, caller.platform_id)


async def get_destinations(caller: Caller, destination_ids: list[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
    """The caller's platform's destinations among `destination_ids`, by id."""
    if not destination_ids:
        return {}
    stmt = select(webhook_destinations).where(
        webhook_destinations.c.platform_id == caller.platform_id, webhook_destinations.c.id.in_(destination_ids)
    )
    async with caller.store.reader.connect() as conn:
        return {row.id: row for row in (await conn.execute(stmt)).all()}


async def delete_destination(caller: Caller, global_id: str) -> None:
    if not await outbound.delete_destination(caller.store, caller.platform_id, parse_destination_id(global_id)):
        raise NotFound("no webhook destination with that id", field="id")


async def replay_destination(caller: Caller, global_id: str, after: str) -> Row[Any]:
    destination_id = parse_destination_id(global_id)
    if await outbound.get_destination(caller.store, caller.platform_id, destination_id) is None:
        raise NotFound("no webhook destination with that id", field="id")
    position = await _position(caller, after, "after")
    row = await outbound.replay_destination(caller.store, caller.platform_id, destination_id, position)
    if row is None:
        raise NotFound("no webhook destination with that id", field="id")
    _wake(caller)
    return row


async def list_deliveries(caller: Caller, destination_id: uuid.UUID, first: int, status: str | None) -> list[Row[Any]]:
    if not 1 <= first <= MAX_DELIVERIES_PAGE:
        raise BadInput(f"first must be between 1 and {MAX_DELIVERIES_PAGE}", field="first")
    _check_status(status)
    return await outbound.list_deliveries(caller.store, caller.platform_id, destination_id, first, status)


DESTINATION_ORDER = Keyset((webhook_destinations.c.created_at, webhook_destinations.c.id), descending=False)
DELIVERY_ORDER = Keyset((webhook_deliveries.c.id,), descending=True)


async def list_destination_page(caller: Caller, request: PageRequest) -> PageOf[Row[Any]]:
    """The platform's destinations, oldest first."""
    stmt = select(webhook_destinations).where(webhook_destinations.c.platform_id == caller.platform_id)
    return await keyset_page(
        caller, stmt, DESTINATION_ORDER, "webhook-destinations", request, time_and_id("created_at"), uuid_key
    )


async def list_delivery_page(
    caller: Caller, destination_id: uuid.UUID, request: PageRequest, status: str | None
) -> PageOf[Row[Any]]:
    """A destination's deliveries, newest first."""
    _check_status(status)
    stmt = select(webhook_deliveries).where(
        webhook_deliveries.c.destination_id == destination_id, webhook_deliveries.c.platform_id == caller.platform_id
    )
    if status is not None:
        stmt = stmt.where(webhook_deliveries.c.status == status)
    return await keyset_page(caller, stmt, DELIVERY_ORDER, "deliveries", request, id_only, int_key)


def _check_status(status: str | None) -> None:
    if status is not None and status not in outbound.STATUSES:
        raise BadInput(f"status must be one of {', '.join(outbound.STATUSES)}", field="status")


def _wake(caller: Caller) -> None:
    if caller.services.worker is not None:
        caller.services.worker.wake()
