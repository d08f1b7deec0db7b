"""Writebacks: create, update and delete common objects at the provider, idempotently and conditionally.

The provider work and the cache write are `sync.worker.writeback`'s; here the caller's target is resolved and
scoped to their platform, idempotency keys are honoured and stale writes explained.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.kit.declaration import Draft
from connectors.kit.errors import BadInput, Conflict, NotFound, XkitError
from connectors.kit.mapped_writes import custom_fields_given
from resolvers.connections import get_connection
from resolvers.context import Caller
from resolvers.ids import from_global_id, parse_connection_id, to_global_id
from resolvers.records import RecordRow, get_record
from sync.tenancy import idempotency
from sync.worker.writeback import StaleWrite, Writeback


@dataclass(frozen=True)
class WriteResult:
    row: RecordRow
    replayed: bool  # answered from an earlier request with the same idempotency key


@dataclass(frozen=True)
class Target:
    """Which record to change: its global id, or its connection and remote id."""

    id: str | None = None
    connection_id: str | None = None
    remote_id: str | None = None


async def create_record(
    caller: Caller,
    model: str,
    connection_id: str,
    values: Mapping[str, Any],
    raw_fields: Any,
    idempotency_key: str | None,
    custom_fields: Any = None,
) -> WriteResult:
    connection = parse_connection_id(connection_id)
    operation = f"create{model}"
    draft = Draft(
        dict(values),
        _raw_fields(raw_fields),
        idempotency_key=_provider_key(caller, idempotency_key, operation),
        custom_fields=custom_fields_given(custom_fields),
    )
    arguments = {
        "connection": connection,
        "values": draft.values,
        "rawFields": draft.raw_fields,
        "customFields": draft.custom_fields,
    }

    async def write() -> RecordRow:
        writeback = await _writeback(caller, connection, model)
        return RecordRow._make(await writeback.create(draft))

    return await _once(caller, idempotency_key, operation, arguments, write)


async def update_record(
    caller: Caller,
    model: str,
    target: Target,
    values: Mapping[str, Any],
    raw_fields: Any,
    if_updated_at: datetime | None,
    idempotency_key: str | None,
    custom_fields: Any = None,
) -> WriteResult:
    connection, remote_id, cached = await _resolve(caller, model, target)
    operation = f"update{model}"
    draft = Draft(
        dict(values),
        _raw_fields(raw_fields),
        idempotency_key=_provider_key(caller, idempotency_key, operation),
        custom_fields=custom_fields_given(custom_fields),
    )
    if not draft.values and not draft.raw_fields and not draft.custom_fields:
        raise BadInput(
            "nothing to update: set at least one field of input (customFields included) or rawFields", field="input"
        )
    arguments = {
        "connection": connection,
        "remoteId": remote_id,
        "values": draft.values,
        "rawFields": draft.raw_fields,
        "customFields": draft.custom_fields,
        "ifUpdatedAt": if_updated_at,
    }

    async def write() -> RecordRow:
        writeback = await _writeback(caller, connection, model)
        return await _explained(model, writeback.update(remote_id, draft, if_updated_at, cached))

    return await _once(caller, idempotency_key, operation, arguments, write)


async def delete_record(
    caller: Caller, model: str, target: Target, if_updated_at: datetime | None, idempotency_key: str | None
) -> WriteResult:
    connection, remote_id, cached = await _resolve(caller, model, target)
    arguments = {"connection": connection, "remoteId": remote_id, "ifUpdatedAt": if_updated_at}

    async def write() -> RecordRow:
        writeback = await _writeback(caller, connection, model)
        return await _explained(model, writeback.delete(remote_id, if_updated_at, cached))

    return await _once(caller, idempotency_key, f"delete{model}", arguments, write)


# ---- helpers -----------------------------------------------------------------------------------


def _provider_key(caller: Caller, key: str | None, operation: str) -> str | None:
    """The idempotency key a provider sees for the caller's: scoped to the platform (two platforms' equal keys
    never meet at one provider account) and to the operation, and not the caller's key itself."""
    if key is None:
        return None
    return hashlib.sha256(f"{caller.platform_id}\n{operation}\n{key}".encode()).hexdigest()


async def _writeback(caller: Caller, connection_id: uuid.UUID, model: str) -> Writeback:
    row = await get_connection(caller, connection_id)
    services = caller.services
    return Writeback(services.store, services.kit, services.discoveries, row, model)


async def _resolve(caller: Caller, model: str, target: Target) -> tuple[uuid.UUID, str, RecordRow | None]:
    """The record's connection and remote id, and its cache row when the caller named it by id."""
    if target.id is not None:
        if target.connection_id is not None or target.remote_id is not None:
            raise BadInput("give either id, or connectionId and remoteId, not both", field="id")
        type_name, local_id = from_global_id(target.id)
        if type_name != model or not local_id.isdigit():
            raise BadInput(f"{target.id!r} is not a {model} id", field="id")
        row = await get_record(caller, int(local_id), model)
        if row is None:
            raise NotFound(f"no {model} with that id", field="id")
        return row.connection_id, row.remote_id, row
    if target.connection_id is None or not target.remote_id:
        raise BadInput("give the record's id, or its connectionId and remoteId", field="id")
    return parse_connection_id(target.connection_id), target.remote_id, None


def _raw_fields(raw_fields: Any) -> dict[str, Any]:
    if raw_fields is None:
        return {}
    if not isinstance(raw_fields, dict):
        raise BadInput("rawFields must be a JSON object of provider field names to values", field="rawFields")
    return raw_fields


async def _explained(model: str, write: Awaitable[Any]) -> RecordRow:
    """The stored record; a stale write is refused with the record as it is now, so the caller can merge."""
    try:
        return RecordRow._make(await write)
    except StaleWrite as stale:
        row = stale.current
        current = {
            "id": to_global_id(model, row.id),
            "remoteId": row.remote_id,
            "updatedAt": row.remote_updated_at.isoformat() if row.remote_updated_at else None,
            "fields": row.common,
        }
        raise Conflict(stale.message, field="ifUpdatedAt", current=current) from None


async def _once(
    caller: Caller,
    key: str | None,
    operation: str,
    arguments: dict[str, Any],
    write: Callable[[], Awaitable[RecordRow]],
) -> WriteResult:
    if key is None:
        return WriteResult(await write(), replayed=False)
    store, platform_id = caller.store, caller.platform_id
    first = await idempotency.claim(store, platform_id, key, idempotency.fingerprint(operation, arguments))
    if first is not None:
        return WriteResult(_row_from_snapshot(first), replayed=True)

    async def write_and_remember() -> RecordRow:
        try:
            row = await write()
        except XkitError as error:
            if error.extensions.get("outcomeUnknown"):
                await idempotency.mark_unknown(store, platform_id, key)
            else:
                await idempotency.release(store, platform_id, key)
            raise
        except Exception:
            await idempotency.mark_unknown(store, platform_id, key)
            raise
        await idempotency.complete(store, platform_id, key, _snapshot(row))
        return row

    # Shielded: a client that gives up mid-write does not cancel it, so its retry finds the result.
    return WriteResult(await asyncio.shield(asyncio.ensure_future(write_and_remember())), replayed=False)


def _snapshot(row: RecordRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "connection_id": str(row.connection_id),
        "stream": row.stream,
        "model": row.model,
        "remote_id": row.remote_id,
        "common": row.common,
        "raw": row.raw,
        "remote_created_at": _iso(row.remote_created_at),
        "remote_updated_at": _iso(row.remote_updated_at),
        "deleted_at": _iso(row.deleted_at),
        "custom": row.custom,
    }


def _row_from_snapshot(snapshot: dict[str, Any]) -> RecordRow:
    return RecordRow(
        id=snapshot["id"],
        connection_id=uuid.UUID(snapshot["connection_id"]),
        stream=snapshot["stream"],
        model=snapshot["model"],
        remote_id=snapshot["remote_id"],
        common=snapshot["common"],
        raw=snapshot["raw"],
        remote_created_at=_from_iso(snapshot["remote_created_at"]),
        remote_updated_at=_from_iso(snapshot["remote_updated_at"]),
        deleted_at=_from_iso(snapshot["deleted_at"]),
        custom=snapshot.get("custom"),
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
