"""What a connection's provider holds, field by field, for the mapping picker (resolvers/field_catalog.py)."""

from __future__ import annotations

import enum

import strawberry

from connectors.kit.field_catalog import AvailableField as CatalogField
from resolvers.field_catalog import fits

# CustomFieldType becomes a GraphQL enum (with its description) when schema/field_mappings.py registers it; the
# types below must be declared after that, or strawberry would register it a second time without one.
from schema.field_mappings import CustomFieldType


@strawberry.enum(
    description="What a provider field holds, as a mapping reads it: TEXT (picklist values included), NUMBER, "
    "BOOLEAN, DATETIME, LIST, or ANY when the provider does not say."
)
class ProviderFieldType(enum.Enum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    LIST = "list"
    ANY = "any"


@strawberry.type(description="A field a connection's records of a model hold at the provider, to map from.")
class AvailableField:
    path: str = strawberry.field(description="Its dotted path in `raw` (`properties.tier`): a mapping's `source`.")
    label: str = strawberry.field(description="The provider's name for it.")
    type: ProviderFieldType = strawberry.field(description="What it holds, as a mapping reads it.")
    fits: list[CustomFieldType] = strawberry.field(
        description="The custom field types it fills without a transform (a multi-select, which providers send "
        "as text joined by ';', fills STRING_LIST after `split`)."
    )
    options: list[str] = strawberry.field(description="The values a picklist allows (at most 500), else empty.")
    is_custom: bool = strawberry.field(description="Whether the account added it (not the provider's own).")
    writable: bool = strawberry.field(description="Whether writes through a mapping can change it.")

    @classmethod
    def build(cls, field: CatalogField) -> AvailableField:
        return cls(
            path=field.path,
            label=field.label,
            type=ProviderFieldType(field.kind),
            fits=fits(field),
            options=list(field.options),
            is_custom=field.is_custom,
            writable=field.writable,
        )
