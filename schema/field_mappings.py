"""Custom fields a platform defines on the common models, and the mappings that fill them per connection or
per provider (resolvers/field_mappings.py)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import orjson
import strawberry
from strawberry.utils.str_converters import to_camel_case

from connectors.kit.field_mappings import CustomFieldType as CustomFieldType  # registered as a GraphQL enum below
from connectors.kit.field_mappings import Transform
from connectors.kit.models import COMMON_MODELS
from resolvers import field_mappings as resolve
from resolvers.field_mappings import TransformInput
from resolvers.ids import parse_connection_id, to_global_id
from schema.context import Info
from schema.scalars import RawJSON
from sync.tenancy.field_mappings import ClearedMapping, Definition, EffectiveMapping

if TYPE_CHECKING:

    class ModelName(enum.Enum):
        """Members are derived from connectors/kit/models.py at run time."""

else:
    ModelName = strawberry.enum(
        enum.Enum("ModelName", {model.snake_name.upper(): model.name for model in COMMON_MODELS.values()}),
        description="A common model.",
    )

strawberry.enum(CustomFieldType, description="What a custom field holds.")


@strawberry.enum(description="Where a connection's mapping comes from.")
class FieldMappingOrigin(enum.Enum):
    CONNECTION = "CONNECTION"
    PROVIDER_DEFAULT = "PROVIDER_DEFAULT"


@strawberry.enum(description="A step applied to the provider's value, from a fixed set.")
class FieldTransformKind(enum.Enum):
    LOWERCASE = "lowercase"
    SPLIT = "split"
    JOIN = "join"
    PARSE_NUMBER = "parse_number"
    PARSE_DATE = "parse_date"
    MAP_VALUES = "map_values"


def _json(value: object) -> RawJSON | None:
    return None if value is None else RawJSON(orjson.dumps(value))


@strawberry.type(description="A field your platform defined on a common model, shown in `customFields`.")
class CustomFieldDefinition:
    model: ModelName
    key: str
    type: CustomFieldType
    label: str
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def build(cls, definition: Definition) -> CustomFieldDefinition:
        return cls(
            model=ModelName(definition.model),
            key=definition.key,
            type=definition.type,
            label=definition.label,
            description=definition.description,
            created_at=definition.created_at,
            updated_at=definition.updated_at,
        )


@strawberry.type(description="One step of a mapping.")
class FieldTransform:
    kind: FieldTransformKind
    separator: str | None = strawberry.field(description="For split and join.")
    table: RawJSON | None = strawberry.field(description="For mapValues: provider value -> value.")
    default: RawJSON | None = strawberry.field(description="For mapValues: the value of one the table lacks.")

    @classmethod
    def build_all(cls, transforms: Sequence[Transform]) -> list[FieldTransform]:
        return [
            cls(
                kind=FieldTransformKind(step.kind),
                separator=step.separator,
                table=_json(dict(step.table)) if step.table is not None else None,
                default=_json(step.default),
            )
            for step in transforms
        ]


def _field_name(field: str, is_custom: bool) -> str:
    return field if is_custom else to_camel_case(field)


@strawberry.type(description="Where a field of a connection's records comes from.")
class FieldMapping:
    model: ModelName
    field: str = strawberry.field(description="A custom field's key, or a built-in field's name (camelCase).")
    is_custom: bool
    source: str = strawberry.field(description="The provider field's dotted path in `raw`.")
    transforms: list[FieldTransform]
    origin: FieldMappingOrigin

    @classmethod
    def build(cls, mapping: EffectiveMapping) -> FieldMapping:
        return cls(
            model=ModelName(mapping.model),
            field=_field_name(mapping.field, mapping.is_custom),
            is_custom=mapping.is_custom,
            source=mapping.source,
            transforms=FieldTransform.build_all(mapping.transforms),
            origin=FieldMappingOrigin(mapping.origin),
        )


@strawberry.type(description="A mapping a type change cleared because its source no longer fits.")
class ClearedFieldMapping:
    provider: str
    connection_id: strawberry.ID | None = strawberry.field(description="Null for the provider's default.")
    source: str
    transforms: list[FieldTransform]

    @classmethod
    def build(cls, cleared: ClearedMapping) -> ClearedFieldMapping:
        return cls(
            provider=cleared.provider,
            connection_id=strawberry.ID(to_global_id("Connection", cleared.connection_id))
            if cleared.connection_id is not None
            else None,
            source=cleared.source,
            transforms=FieldTransform.build_all(cleared.transforms),
        )


@strawberry.type
class CustomFieldUpdate:
    definition: CustomFieldDefinition
    cleared_mappings: list[ClearedFieldMapping] = strawberry.field(
        description="Mappings removed by `force` because their source cannot fill the new type."
    )


@strawberry.type
class DeletedCustomField:
    model: ModelName
    key: str


@strawberry.input
class DefineCustomFieldInput:
    model: ModelName
    key: str = strawberry.field(description="Lowercase letters, digits and _, e.g. tier; not a built-in name.")
    type: CustomFieldType
    label: str = ""
    description: str = ""


@strawberry.input(description="What to change; a field left out keeps its value.")
class UpdateCustomFieldInput:
    type: CustomFieldType | None = None
    label: str | None = None
    description: str | None = None


@strawberry.input(description="One step applied to the provider's value, in order.")
class FieldTransformInput:
    kind: FieldTransformKind
    separator: str | None = strawberry.field(default=None, description="For split and join.")
    table: RawJSON | None = strawberry.field(default=None, description="For mapValues: provider value -> value.")
    default: RawJSON | None = strawberry.field(
        default=None, description="For mapValues: the value of one the table lacks (null when left out)."
    )


def _transforms(given: list[FieldTransformInput] | None) -> list[TransformInput]:
    return [TransformInput(step.kind.value, step.separator, step.table, step.default) for step in given or ()]


def _connection(connection_id: strawberry.ID | None) -> uuid.UUID | None:
    return parse_connection_id(connection_id, field="connectionId") if connection_id is not None else None


@strawberry.type
class FieldMappingMutation:
    @strawberry.mutation(description="Define a custom field on a common model (at most 100 per model).")
    async def define_custom_field(self, info: Info, input: DefineCustomFieldInput) -> CustomFieldDefinition:
        defined = await resolve.define_field(
            info.context, input.model.value, input.key, input.type, input.label, input.description
        )
        return CustomFieldDefinition.build(defined)

    @strawberry.mutation(
        description="Change a custom field. A new type on a field with mappings needs force: true, which clears "
        "the mappings whose source cannot fill it and lists them."
    )
    async def update_custom_field(
        self, info: Info, model: ModelName, key: str, input: UpdateCustomFieldInput, force: bool = False
    ) -> CustomFieldUpdate:
        updated, cleared = await resolve.update_field(
            info.context,
            model.value,
            key,
            type=input.type,
            label=input.label,
            description=input.description,
            force=force,
        )
        return CustomFieldUpdate(
            definition=CustomFieldDefinition.build(updated),
            cleared_mappings=[ClearedFieldMapping.build(c) for c in cleared],
        )

    @strawberry.mutation(description="Delete a custom field and every mapping to it.")
    async def delete_custom_field(self, info: Info, model: ModelName, key: str) -> DeletedCustomField:
        await resolve.delete_field(info.context, model.value, key)
        return DeletedCustomField(model=model, key=key)

    @strawberry.mutation(
        description="Map a custom field (or override a built-in one) for one connection, or for every connection "
        "of a provider (its default). The source is checked against the provider's fields."
    )
    async def set_field_mapping(
        self,
        info: Info,
        model: ModelName,
        field: str,
        source: str,
        connection_id: strawberry.ID | None = None,
        provider: str | None = None,
        transforms: list[FieldTransformInput] | None = None,
    ) -> FieldMapping:
        mapping = await resolve.set_field_mapping(
            info.context,
            connection_id=_connection(connection_id),
            provider=provider,
            model=model.value,
            field=field,
            source=source,
            transforms=_transforms(transforms),
        )
        return FieldMapping.build(mapping)

    @strawberry.mutation(
        description="Remove a connection's mapping (it falls back to the provider default) or a provider default."
    )
    async def clear_field_mapping(
        self,
        info: Info,
        model: ModelName,
        field: str,
        connection_id: strawberry.ID | None = None,
        provider: str | None = None,
    ) -> FieldMapping:
        cleared = await resolve.clear_field_mapping(
            info.context, connection_id=_connection(connection_id), provider=provider, model=model.value, field=field
        )
        return FieldMapping.build(cleared)


@strawberry.type
class FieldMappingQuery:
    @strawberry.field(description="Your custom fields, of one model or all, by model and key.")
    async def custom_field_definitions(self, info: Info, model: ModelName | None = None) -> list[CustomFieldDefinition]:
        definitions = await resolve.list_definitions(info.context, model.value if model is not None else None)
        return [CustomFieldDefinition.build(d) for d in definitions]
