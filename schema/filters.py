"""List arguments: filters on where a record came from, when it changed, and the model's key fields,
derived from connectors/kit/models.py (a field marked `filterable` there is filterable here)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Optional

import strawberry

from connectors.kit.models import COMMON_MODELS, CommonModel, EnumType
from resolvers.ids import parse_connection_id
from resolvers.records import RecordQuery, StringMatch
from schema.objects import graphql_enum
from schema.relay import RecordOrder


@strawberry.input(description="Match a text field exactly (eq) or by case-insensitive substring (contains).")
class StringFilter:
    eq: str | None = None
    contains: str | None = None


@strawberry.input
class ObjectFilter:
    connection_id: strawberry.ID | None = None
    external_user_id: str | None = strawberry.field(default=None, description="The platform's own end-user id.")
    provider: str | None = None
    updated_after: datetime | None = None


def derive_filter_type(model: CommonModel) -> type[ObjectFilter]:
    """`<Model>Filter`: where a record came from and when it changed, plus the model's filterable fields
    (text by `StringFilter`, an enum by the member it equals)."""
    annotations: dict[str, Any] = {}
    for field in model.filterable_fields:
        match = graphql_enum(field.type) if isinstance(field.type, EnumType) else StringFilter
        annotations[field.name] = Optional[match]  # noqa: UP045 - built at run time from a type object
    namespace = {"__module__": __name__, "__annotations__": annotations, **dict.fromkeys(annotations)}
    return strawberry.input(type(f"{model.name}Filter", (ObjectFilter,), namespace))


FILTER_TYPES: dict[str, type[ObjectFilter]] = {name: derive_filter_type(m) for name, m in COMMON_MODELS.items()}


def record_query(
    model: CommonModel, where: ObjectFilter | None, order_by: RecordOrder, include_deleted: bool
) -> RecordQuery:
    if where is None:
        return RecordQuery(model=model.name, order=order_by.value, include_deleted=include_deleted)
    fields: dict[str, StringMatch] = {}
    for field in model.filterable_fields:
        match: StringFilter | enum.Enum | None = getattr(where, field.name, None)
        if isinstance(match, StringFilter):
            fields[field.name] = StringMatch(eq=match.eq, contains=match.contains)
        elif match is not None:
            fields[field.name] = StringMatch(eq=match.value)  # an enum field stores the member's name
    return RecordQuery(
        model=model.name,
        connection_id=parse_connection_id(where.connection_id, field="filter.connectionId")
        if where.connection_id
        else None,
        external_user_id=where.external_user_id,
        provider=where.provider.lower() if where.provider else None,
        updated_after=where.updated_after,
        fields=fields,
        include_deleted=include_deleted,
        order=order_by.value,
    )
