"""List arguments: filters on where a record came from, when it changed, and the model's key fields."""

from __future__ import annotations

from datetime import datetime

import strawberry

from connectors.kit.models import CommonModel
from resolvers.ids import parse_connection_id
from resolvers.records import RecordQuery, StringMatch
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


@strawberry.input
class ContactFilter(ObjectFilter):
    email: StringFilter | None = None
    first_name: StringFilter | None = None
    last_name: StringFilter | None = None
    lifecycle_stage: StringFilter | None = None


@strawberry.input
class CompanyFilter(ObjectFilter):
    name: StringFilter | None = None
    domain: StringFilter | None = None
    industry: StringFilter | None = None


@strawberry.input
class DealFilter(ObjectFilter):
    name: StringFilter | None = None
    stage: StringFilter | None = None
    remote_stage: StringFilter | None = None
    pipeline: StringFilter | None = None


@strawberry.input
class UserFilter(ObjectFilter):
    email: StringFilter | None = None
    first_name: StringFilter | None = None
    last_name: StringFilter | None = None


@strawberry.input
class NoteFilter(ObjectFilter):
    body: StringFilter | None = None


@strawberry.input
class TaskFilter(ObjectFilter):
    subject: StringFilter | None = None
    status: StringFilter | None = None
    priority: StringFilter | None = None


def record_query(
    model: CommonModel, where: ObjectFilter | None, order_by: RecordOrder, include_deleted: bool
) -> RecordQuery:
    if where is None:
        return RecordQuery(model=model.name, order=order_by.value, include_deleted=include_deleted)
    fields: dict[str, StringMatch] = {}
    for field in model.filterable_fields:
        match: StringFilter | None = getattr(where, field.name, None)
        if match is not None:
            fields[field.name] = StringMatch(eq=match.eq, contains=match.contains)
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
