"""Custom fields a platform defines and the mappings that fill them (or override built-in members), per
connection or as a platform's default for every connection of a provider; and a connection's effective
mappings as the kit's `FieldOverlay`.

Checking a mapping's source against the provider (its field catalog) is the caller's job: this module stores
what was checked, and re-checks inside its transaction only that the field's type did not move meanwhile.

Every change that alters what a connection derives bumps `connections.field_mapping_revision` for each
connection it reaches, in the same transaction: a definition, every connection of the platform (each one's
custom values gain, lose or retype a key); a connection's mapping, that connection; a provider default, every
connection of that platform and provider. A label or description alone changes no value and bumps nothing.

The re-derive contract: the same statement sets `connections.field_mappings_due_at` (kept when already set,
so it says since when the connection has waited). The re-derive job picks connections whose
`field_mappings_due_at` is set, notes their `field_mapping_revision`, derives their cached records with
`load_overlay`, and then clears `field_mappings_due_at` only where the revision is still the one it noted
(`UPDATE ... WHERE id = :id AND field_mapping_revision = :noted`): a change made while it ran leaves the
connection due, and it runs again.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.kit.errors import BadInput, Conflict, NotFound
from connectors.kit.field_mappings import (
    KEY_PATTERN,
    CustomFieldType,
    FieldOverlay,
    FieldSource,
    ModelOverlay,
    Transform,
    builtin_type,
    check_fits,
)
from connectors.kit.models import COMMON_MODELS, CommonModel
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections, custom_field_definitions, field_mappings, platforms

log = logging.getLogger(__name__)

MAX_FIELDS_PER_MODEL = 100
MAX_LABEL = 255
MAX_DESCRIPTION = 2000

Origin = Literal["CONNECTION", "PROVIDER_DEFAULT"]

# What every common object shows besides its model's members: a custom key cannot take these names either.
OBJECT_MEMBERS = frozenset(
    {"id", "remote_id", "created_at", "updated_at", "deleted_at", "raw", "connection", "custom_fields", "custom_field"}
)


@dataclass(frozen=True)
class Definition:
    """A custom field as stored."""

    model: str
    key: str
    type: CustomFieldType
    label: str
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Row[Any]) -> Definition:
        return cls(
            row.model, row.key, CustomFieldType(row.type), row.label, row.description, row.created_at, row.updated_at
        )


@dataclass(frozen=True)
class MappingTarget:
    """Whose mapping: one connection's (`connection_id`), or the platform's default for `provider`."""

    platform_id: uuid.UUID
    provider: str
    connection_id: uuid.UUID | None = None


@dataclass(frozen=True)
class EffectiveMapping:
    """A mapping as a connection uses it. `field`: a custom key, or a built-in member in snake case."""

    model: str
    field: str
    is_custom: bool
    source: str
    transforms: tuple[Transform, ...]
    origin: Origin


@dataclass(frozen=True)
class ClearedMapping:
    """A mapping a forced type change removed because its source no longer fits."""

    provider: str
    connection_id: uuid.UUID | None
    source: str
    transforms: tuple[Transform, ...]


def model_named(name: str) -> CommonModel:
    model = COMMON_MODELS.get(name)
    if model is None:
        raise BadInput(f"unknown model {name!r}; known models: {', '.join(sorted(COMMON_MODELS))}", field="model")
    return model


def _squashed(name: str) -> str:
    return name.replace("_", "")


def check_key(model: CommonModel, key: str) -> None:
    """A new custom key: the pattern, and no built-in name of the model in either spelling (`first_name`,
    `firstname` as `firstName` reads lowered)."""
    if not KEY_PATTERN.fullmatch(key):
        raise BadInput(
            "a custom field key is 1 to 63 lowercase letters, digits and _, starting with a letter", field="key"
        )
    taken = model.member_names | OBJECT_MEMBERS | {inverse.name for inverse in model.inverses}
    if key in taken or _squashed(key) in {_squashed(name) for name in taken}:
        raise BadInput(f"{model.name} already has a built-in field {key!r}; choose another key", field="key")


def check_label(label: str, description: str) -> None:
    if len(label) > MAX_LABEL:
        raise BadInput(f"a label is at most {MAX_LABEL} characters", field="label")
    if len(description) > MAX_DESCRIPTION:
        raise BadInput(f"a description is at most {MAX_DESCRIPTION} characters", field="description")


def snake_member(name: str) -> str:
    """`phoneNumbers` -> `phone_numbers`; a snake name is kept."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def transforms_to_json(transforms: Sequence[Transform]) -> list[dict[str, Any]]:
    return [
        {
            "kind": step.kind,
            "separator": step.separator,
            "table": dict(step.table) if step.table is not None else None,
            "default": step.default,
        }
        for step in transforms
    ]


def transforms_from_json(stored: Sequence[dict[str, Any]]) -> tuple[Transform, ...]:
    return tuple(Transform(s["kind"], s.get("separator"), s.get("table"), s.get("default")) for s in stored)


async def _lock_platform(conn: AsyncConnection, platform_id: uuid.UUID) -> None:
    """One change to a platform's definitions and mappings at a time: a definition counted toward the limit, or
    a field's type a mapping was checked against, cannot change under the transaction that relies on it. A
    write that changes nothing, because SQLite's driver only opens the transaction (and takes the database's
    write lock) at a write, and a read before it would see a count another writer is about to change."""
    await conn.execute(update(platforms).where(platforms.c.id == platform_id).values(name=platforms.c.name))


async def _bump(conn: AsyncConnection, platform_id: uuid.UUID, *where: Any) -> None:
    """The affected connections' overlays are stale, and their records are due to be derived again."""
    await conn.execute(
        update(connections)
        .where(connections.c.platform_id == platform_id, *where)
        .values(
            field_mapping_revision=connections.c.field_mapping_revision + 1,
            field_mappings_due_at=func.coalesce(connections.c.field_mappings_due_at, utcnow()),
        )
    )


async def _bump_target(conn: AsyncConnection, target: MappingTarget) -> None:
    if target.connection_id is not None:
        await _bump(conn, target.platform_id, connections.c.id == target.connection_id)
    else:
        await _bump(conn, target.platform_id, connections.c.provider == target.provider)


# --- definitions ---------------------------------------------------------------------------------------------


async def list_definitions(conn: AsyncConnection, platform_id: uuid.UUID, model: str | None = None) -> list[Definition]:
    stmt = select(custom_field_definitions).where(custom_field_definitions.c.platform_id == platform_id)
    if model is not None:
        stmt = stmt.where(custom_field_definitions.c.model == model)
    stmt = stmt.order_by(custom_field_definitions.c.model, custom_field_definitions.c.key)
    return [Definition.of(row) for row in (await conn.execute(stmt)).all()]


async def _definition(conn: AsyncConnection, platform_id: uuid.UUID, model: str, key: str) -> Row[Any] | None:
    return (
        await conn.execute(
            select(custom_field_definitions).where(
                custom_field_definitions.c.platform_id == platform_id,
                custom_field_definitions.c.model == model,
                custom_field_definitions.c.key == key,
            )
        )
    ).one_or_none()


async def define_field(
    store: Store, platform_id: uuid.UUID, model: str, key: str, type: CustomFieldType, label: str, description: str
) -> Definition:
    check_key(model_named(model), key)
    check_label(label, description)
    now = utcnow()
    try:
        async with store.engine.begin() as conn:
            await _lock_platform(conn, platform_id)
            defined = (
                await conn.execute(
                    select(func.count()).where(
                        custom_field_definitions.c.platform_id == platform_id,
                        custom_field_definitions.c.model == model,
                    )
                )
            ).scalar_one()
            if defined >= MAX_FIELDS_PER_MODEL:
                raise BadInput(f"at most {MAX_FIELDS_PER_MODEL} custom fields per model", field="key")
            await conn.execute(
                custom_field_definitions.insert().values(
                    id=uuid.uuid4(),
                    platform_id=platform_id,
                    model=model,
                    key=key,
                    type=type.value,
                    label=label,
                    description=description,
                    created_at=now,
                    updated_at=now,
                )
            )
            await _bump(conn, platform_id)
    except IntegrityError:
        raise BadInput(f"{model} already has a custom field {key!r}", field="key") from None
    return Definition(model, key, type, label, description, now, now)


async def _custom_mappings(conn: AsyncConnection, platform_id: uuid.UUID, model: str, key: str) -> list[Row[Any]]:
    return list(
        (
            await conn.execute(
                select(field_mappings).where(
                    field_mappings.c.platform_id == platform_id,
                    field_mappings.c.model == model,
                    field_mappings.c.field == key,
                    field_mappings.c.is_custom.is_(True),
                )
            )
        ).all()
    )


def _fits(row: Row[Any], wanted: CustomFieldType) -> bool:
    try:
        check_fits(FieldSource(row.source_path, transforms_from_json(row.transforms)), wanted, field_name=row.field)
    except BadInput:
        return False
    return True


def _cleared(row: Row[Any]) -> ClearedMapping:
    return ClearedMapping(row.provider, row.connection_id, row.source_path, transforms_from_json(row.transforms))


async def update_field(
    store: Store,
    platform_id: uuid.UUID,
    model: str,
    key: str,
    *,
    type: CustomFieldType | None = None,
    label: str | None = None,
    description: str | None = None,
    force: bool = False,
) -> tuple[Definition, list[ClearedMapping]]:
    """A new type, label or description. A new type on a field with mappings is refused unless `force`, which
    removes the mappings whose source cannot fill the new type (judged by their transforms: the provider
    field's own kind is not stored) and returns them."""
    model_named(model)
    check_label(label or "", description or "")
    async with store.engine.begin() as conn:
        await _lock_platform(conn, platform_id)
        row = await _definition(conn, platform_id, model, key)
        if row is None:
            raise NotFound(f"{model} has no custom field {key!r}", field="key")
        retyped = type is not None and type.value != row.type
        cleared: list[Row[Any]] = []
        if retyped:
            assert type is not None
            mapped = await _custom_mappings(conn, platform_id, model, key)
            if mapped and not force:
                raise BadInput(
                    f"{model}.{key} has {len(mapped)} mapping(s); changing its type needs force: true, which "
                    "clears the mappings whose source does not fit the new type",
                    field="type",
                    mappings=len(mapped),
                )
            cleared = [m for m in mapped if not _fits(m, type)]
            if cleared:
                await conn.execute(delete(field_mappings).where(field_mappings.c.id.in_([m.id for m in cleared])))
        values: dict[str, Any] = {"updated_at": utcnow()}
        if type is not None:
            values["type"] = type.value
        if label is not None:
            values["label"] = label
        if description is not None:
            values["description"] = description
        await conn.execute(
            update(custom_field_definitions).where(custom_field_definitions.c.id == row.id).values(**values)
        )
        if retyped:
            await _bump(conn, platform_id)
        updated = await _definition(conn, platform_id, model, key)
    assert updated is not None
    return Definition.of(updated), [_cleared(m) for m in cleared]


async def delete_field(store: Store, platform_id: uuid.UUID, model: str, key: str) -> None:
    """The field and every mapping to it."""
    model_named(model)
    async with store.engine.begin() as conn:
        await _lock_platform(conn, platform_id)
        row = await _definition(conn, platform_id, model, key)
        if row is None:
            raise NotFound(f"{model} has no custom field {key!r}", field="key")
        await conn.execute(
            delete(field_mappings).where(
                field_mappings.c.platform_id == platform_id,
                field_mappings.c.model == model,
                field_mappings.c.field == key,
                field_mappings.c.is_custom.is_(True),
            )
        )
        await conn.execute(delete(custom_field_definitions).where(custom_field_definitions.c.id == row.id))
        await _bump(conn, platform_id)


# --- mappings ------------------------------------------------------------------------------------------------


async def field_type(
    conn: AsyncConnection, platform_id: uuid.UUID, model: str, field: str
) -> tuple[str, bool, CustomFieldType]:
    """What a mapping's `field` names: (stored name, is_custom, the type its source must fill). A defined custom
    key first; otherwise a built-in member of the model (camelCase or snake_case) that holds a plain value."""
    common = model_named(model)
    row = await _definition(conn, platform_id, model, field)
    if row is not None:
        return field, True, CustomFieldType(row.type)
    member = snake_member(field)
    if member not in common.member_names:
        raise BadInput(
            f"{model} has no custom field or built-in field {field!r} (define a custom field first)", field="field"
        )
    return member, False, builtin_type(common, member)


def _target_rows(target: MappingTarget) -> Any:
    if target.connection_id is not None:
        return field_mappings.c.connection_id == target.connection_id
    return and_(field_mappings.c.provider == target.provider, field_mappings.c.connection_id.is_(None))


async def set_mapping(
    store: Store, target: MappingTarget, model: str, field: str, source: FieldSource, checked_as: CustomFieldType
) -> EffectiveMapping:
    """Store a source the caller checked as filling `checked_as` (replacing the target's mapping of that field)."""
    now = utcnow()
    async with store.engine.begin() as conn:
        await _lock_platform(conn, target.platform_id)
        stored, is_custom, wanted = await field_type(conn, target.platform_id, model, field)
        if wanted is not checked_as:
            raise Conflict(f"{model}.{field} changed type while the mapping was set; set it again", field="field")
        await conn.execute(
            delete(field_mappings).where(
                field_mappings.c.platform_id == target.platform_id,
                _target_rows(target),
                field_mappings.c.model == model,
                field_mappings.c.field == stored,
                field_mappings.c.is_custom.is_(is_custom),
            )
        )
        await conn.execute(
            field_mappings.insert().values(
                id=uuid.uuid4(),
                platform_id=target.platform_id,
                provider=target.provider,
                connection_id=target.connection_id,
                model=model,
                field=stored,
                is_custom=is_custom,
                source_path=source.path,
                transforms=transforms_to_json(source.transforms),
                created_at=now,
                updated_at=now,
            )
        )
        await _bump_target(conn, target)
    origin: Origin = "CONNECTION" if target.connection_id is not None else "PROVIDER_DEFAULT"
    return EffectiveMapping(model, stored, is_custom, source.path, source.transforms, origin)


async def clear_mapping(store: Store, target: MappingTarget, model: str, field: str) -> EffectiveMapping:
    """Remove the target's own mapping of `field` (a connection falls back to the provider default, if any)."""
    model_named(model)
    async with store.engine.begin() as conn:
        names = {field, snake_member(field)}
        row = (
            await conn.execute(
                select(field_mappings).where(
                    field_mappings.c.platform_id == target.platform_id,
                    _target_rows(target),
                    field_mappings.c.model == model,
                    field_mappings.c.field.in_(names),
                )
            )
        ).first()
        if row is None:
            whose = "this connection" if target.connection_id is not None else f"the {target.provider} default"
            raise NotFound(f"{whose} has no mapping of {model}.{field}", field="field")
        await conn.execute(delete(field_mappings).where(field_mappings.c.id == row.id))
        await _bump_target(conn, target)
    origin: Origin = "CONNECTION" if target.connection_id is not None else "PROVIDER_DEFAULT"
    return EffectiveMapping(
        model, row.field, row.is_custom, row.source_path, transforms_from_json(row.transforms), origin
    )


async def effective_mappings(
    conn: AsyncConnection, connection_row: Row[Any], model: str | None = None
) -> list[EffectiveMapping]:
    """The mappings a connection uses, by model and field: its own, else its platform's provider default.
    Built-in members nobody mapped keep the connector's mapping and are not listed."""
    stmt = select(field_mappings).where(
        field_mappings.c.platform_id == connection_row.platform_id,
        or_(
            field_mappings.c.connection_id == connection_row.id,
            and_(field_mappings.c.connection_id.is_(None), field_mappings.c.provider == connection_row.provider),
        ),
    )
    if model is not None:
        stmt = stmt.where(field_mappings.c.model == model)
    chosen: dict[tuple[str, str, bool], EffectiveMapping] = {}
    for row in (await conn.execute(stmt)).all():
        slot = (row.model, row.field, row.is_custom)
        origin: Origin = "CONNECTION" if row.connection_id is not None else "PROVIDER_DEFAULT"
        if slot in chosen and origin == "PROVIDER_DEFAULT":
            continue
        chosen[slot] = EffectiveMapping(
            row.model, row.field, row.is_custom, row.source_path, transforms_from_json(row.transforms), origin
        )
    return [chosen[slot] for slot in sorted(chosen)]


# --- the overlay a StreamContext applies ---------------------------------------------------------------------

OVERLAY_CACHE_SIZE = 10_000


class OverlayCache:
    """Overlays by connection, each valid for the revision it was built at (least recently used dropped)."""

    def __init__(self, size: int = OVERLAY_CACHE_SIZE) -> None:
        self.size = size
        self._overlays: OrderedDict[uuid.UUID, FieldOverlay] = OrderedDict()
        self.builds = 0

    def get(self, connection_id: uuid.UUID, revision: int) -> FieldOverlay | None:
        overlay = self._overlays.get(connection_id)
        if overlay is None or overlay.revision != revision:
            return None
        self._overlays.move_to_end(connection_id)
        return overlay

    def put(self, connection_id: uuid.UUID, overlay: FieldOverlay) -> None:
        self._overlays[connection_id] = overlay
        self._overlays.move_to_end(connection_id)
        while len(self._overlays) > self.size:
            self._overlays.popitem(last=False)


OVERLAYS = OverlayCache()


async def load_overlay(store: Store, connection_id: uuid.UUID, cache: OverlayCache = OVERLAYS) -> FieldOverlay:
    """The connection's effective mappings as the kit applies them, at its current revision: one read of the
    revision when the cached overlay is current, the definitions and mappings otherwise."""
    async with store.engine.connect() as conn:
        row: Row[Any] | None = (  # type: ignore[assignment]  # four columns of a connection row
            await conn.execute(
                select(
                    connections.c.id,
                    connections.c.platform_id,
                    connections.c.provider,
                    connections.c.field_mapping_revision,
                ).where(connections.c.id == connection_id)
            )
        ).one_or_none()
        if row is None:
            raise NotFound("no connection with that id", field="connectionId")
        cached = cache.get(connection_id, row.field_mapping_revision)
        if cached is not None:
            return cached
        definitions = await list_definitions(conn, row.platform_id)
        mappings = await effective_mappings(conn, row)
    overlay = _overlay(definitions, mappings, row.field_mapping_revision)
    cache.builds += 1
    cache.put(connection_id, overlay)
    return overlay


def _overlay(definitions: list[Definition], mappings: list[EffectiveMapping], revision: int) -> FieldOverlay:
    types = {(d.model, d.key): d.type for d in definitions}
    custom: dict[str, dict[str, tuple[CustomFieldType, FieldSource]]] = {}
    builtin: dict[str, dict[str, FieldSource]] = {}
    for mapping in mappings:
        try:
            source = FieldSource(mapping.source, mapping.transforms)
        except BadInput:
            # Checked when set; a stored mapping the kit reads differently today is skipped, not fatal to a sync.
            log.warning("skipping unreadable mapping of %s.%s", mapping.model, mapping.field)
            continue
        if not mapping.is_custom:
            builtin.setdefault(mapping.model, {})[mapping.field] = source
        elif (mapping.model, mapping.field) in types:
            custom.setdefault(mapping.model, {})[mapping.field] = (types[mapping.model, mapping.field], source)
    models = {d.model for d in definitions} | set(builtin)
    return FieldOverlay(
        models={
            model: ModelOverlay(
                custom=custom.get(model, {}),
                builtin=builtin.get(model, {}),
                defined=tuple(d.key for d in definitions if d.model == model),
            )
            for model in sorted(models)
        },
        revision=revision,
    )
