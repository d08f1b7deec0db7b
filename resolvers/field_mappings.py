"""Custom field definitions and field mappings through the API: who may change them, whose mapping a request
names, transforms parsed from input, and sources checked against what the provider holds before they are stored.

A connection's mapping is checked against its field catalog (the path exists at the provider, and its kind,
after the transforms, fits the field). A provider default reaches connections not made yet, so no catalog
speaks for it: its path syntax and its transforms' fit are checked, with the provider field's kind unknown.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from sqlalchemy.engine import Row

from connectors import get_connector
from connectors.kit.errors import BadInput, Unauthenticated
from connectors.kit.field_catalog import Catalog
from connectors.kit.field_mappings import CustomFieldType, FieldSource, Transform, TransformKind, check_fits
from resolvers.connections import get_connection
from resolvers.context import Caller
from sync.cache.field_catalog import catalog
from sync.tenancy import field_mappings as store_mappings
from sync.tenancy.field_mappings import ClearedMapping, Definition, EffectiveMapping, MappingTarget

TRANSFORM_KINDS: tuple[str, ...] = get_args(TransformKind)


def require_editor(caller: Caller) -> None:
    """Who may read and change definitions and mappings: a platform's secret API key (an end user's token,
    scoped to their own connections, is to be added here)."""
    if caller.api_key_id is None:
        raise Unauthenticated("custom fields and field mappings need a secret API key")


@dataclass(frozen=True)
class TransformInput:
    kind: str
    separator: str | None = None
    table: object = None
    default: object = None


def parse_transforms(given: Sequence[TransformInput], *, field_name: str) -> tuple[Transform, ...]:
    """Input steps as kit transforms; a refusal names the mapped field and the step."""
    steps = []
    for index, step in enumerate(given):
        where = f"transforms[{index}]"
        if step.kind not in TRANSFORM_KINDS:
            raise BadInput(f"{field_name}: {where} is not one of {', '.join(TRANSFORM_KINDS)}", field=where)
        if step.table is not None and not isinstance(step.table, dict):
            raise BadInput(f"{field_name}: {where}.table must be a JSON object", field=f"{where}.table")
        try:
            steps.append(Transform(step.kind, step.separator, step.table, step.default))  # type: ignore[arg-type]
        except BadInput as refused:
            raise BadInput(f"{field_name}: {where}: {refused.message}", field=where) from None
    return tuple(steps)


async def mapping_target(
    caller: Caller, connection_id: uuid.UUID | None, provider: str | None
) -> tuple[MappingTarget, Row[Any] | None]:
    """The connection (the caller's own, else NOT_FOUND) or the provider whose default is meant."""
    if (connection_id is None) == (provider is None):
        raise BadInput("name either connectionId or provider (for the default of every connection)", field="provider")
    if connection_id is not None:
        row = await get_connection(caller, connection_id)
        return MappingTarget(caller.platform_id, row.provider, row.id), row
    assert provider is not None
    return MappingTarget(caller.platform_id, get_connector(provider.strip().lower()).name), None


async def connection_catalog(caller: Caller, connection_row: Row[Any], model: str) -> Catalog:
    """What the connection's provider holds for `model`, as discovery last read it."""
    return await catalog(caller.store, caller.services.kit, connection_row, model)


async def define_field(
    caller: Caller, model: str, key: str, type: CustomFieldType, label: str, description: str
) -> Definition:
    require_editor(caller)
    return await store_mappings.define_field(caller.store, caller.platform_id, model, key, type, label, description)


async def update_field(
    caller: Caller,
    model: str,
    key: str,
    *,
    type: CustomFieldType | None,
    label: str | None,
    description: str | None,
    force: bool,
) -> tuple[Definition, list[ClearedMapping]]:
    require_editor(caller)
    return await store_mappings.update_field(
        caller.store, caller.platform_id, model, key, type=type, label=label, description=description, force=force
    )


async def delete_field(caller: Caller, model: str, key: str) -> None:
    require_editor(caller)
    await store_mappings.delete_field(caller.store, caller.platform_id, model, key)


async def list_definitions(caller: Caller, model: str | None) -> list[Definition]:
    require_editor(caller)
    async with caller.store.reader.connect() as conn:
        return await store_mappings.list_definitions(conn, caller.platform_id, model)


async def set_field_mapping(
    caller: Caller,
    *,
    connection_id: uuid.UUID | None,
    provider: str | None,
    model: str,
    field: str,
    source: str,
    transforms: Sequence[TransformInput],
) -> EffectiveMapping:
    require_editor(caller)
    target, connection_row = await mapping_target(caller, connection_id, provider)
    async with caller.store.engine.connect() as conn:
        _, _, wanted = await store_mappings.field_type(conn, caller.platform_id, model, field)
    field_name = f"{model}.{field}"
    steps = parse_transforms(transforms, field_name=field_name)
    if connection_row is not None:
        fields = await connection_catalog(caller, connection_row, model)
        checked = fields.source(source, steps, wanted, field_name=field_name)
    else:
        checked = FieldSource(source, steps)
        check_fits(checked, wanted, field_name=field_name)
    return await store_mappings.set_mapping(caller.store, target, model, field, checked, wanted)


async def clear_field_mapping(
    caller: Caller, *, connection_id: uuid.UUID | None, provider: str | None, model: str, field: str
) -> EffectiveMapping:
    require_editor(caller)
    target, _ = await mapping_target(caller, connection_id, provider)
    return await store_mappings.clear_mapping(caller.store, target, model, field)


async def connection_mappings(caller: Caller, connection_row: Row[Any], model: str | None) -> list[EffectiveMapping]:
    require_editor(caller)
    async with caller.store.reader.connect() as conn:
        return await store_mappings.effective_mappings(conn, connection_row, model)
