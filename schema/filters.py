"""List arguments: filters on where a record came from, when it changed, and the model's key fields and
relations, derived from connectors/kit/models.py (a member marked `filterable` there is filterable here)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Optional

import strawberry

from connectors.kit.models import COMMON_MODELS, CommonModel, CurrencyCode, EnumType, Field, ListOf, graphql_name
from resolvers.ids import parse_connection_id
from resolvers.records import CustomMatch, RecordQuery, StringMatch
from schema.objects import graphql_enum
from schema.relay import RecordOrder
from schema.scalars import RawJSON


@strawberry.input(description="Match a text field exactly (eq) or by case-insensitive substring (contains).")
class StringFilter:
    eq: str | None = None
    contains: str | None = None


@strawberry.input(description="Match a list of text values by one value it holds, exactly.")
class StringListFilter:
    contains: str | None = None


@strawberry.input(
    description="Match a custom field your platform defined: text (STRING, STRING_LIST, and BOOLEAN as "
    '"true"/"false") by eq, contains (case-insensitive) or in; numbers (INT, FLOAT, MONEY by its amount) and '
    "instants (DATETIME) by gt and lt. Several operators all apply."
)
class CustomFieldFilter:
    key: str
    eq: str | None = None
    contains: str | None = None
    in_: list[str] | None = strawberry.field(default=None, name="in")
    gt: RawJSON | None = strawberry.field(default=None, description="A number, or an ISO-8601 instant.")
    lt: RawJSON | None = strawberry.field(default=None, description="A number, or an ISO-8601 instant.")


@strawberry.input
class ObjectFilter:
    connection_id: strawberry.ID | None = None
    external_user_id: str | None = strawberry.field(default=None, description="The platform's own end-user id.")
    provider: str | None = None
    updated_after: datetime | None = None


def _match_type(field: Field) -> Any:
    if isinstance(field.type, EnumType):
        return graphql_enum(field.type)
    if isinstance(field.type, ListOf):
        return StringListFilter
    return bool if field.type is bool else StringFilter


def derive_filter_type(model: CommonModel) -> type[ObjectFilter]:
    """`<Model>Filter`: where a record came from and when it changed, plus the model's filterable fields
    (text by `StringFilter`, an enum by the member it equals, a boolean by its value, a list by a value
    it holds) and relations (by the related record's remote id, as write inputs name them)."""
    annotations: dict[str, Any] = {"custom_fields": Optional[list[CustomFieldFilter]]}  # noqa: UP045
    defaults: dict[str, Any] = {
        "custom_fields": strawberry.field(
            default=None, description="Only those whose custom fields match every one of these."
        )
    }
    for field in model.filterable_fields:
        annotations[field.name] = Optional[_match_type(field)]  # noqa: UP045 - built at run time from a type object
        defaults[field.name] = None
    for relation in model.filterable_relations:
        name = model.input_name(relation.name)
        annotations[name] = Optional[str]  # noqa: UP045
        which = "include" if relation.many else "is"
        defaults[name] = strawberry.field(
            default=None,
            description=f"Only those whose {graphql_name(relation.name)} {which} the {relation.target} "
            "with this remote id.",
        )
    namespace = {"__module__": __name__, "__annotations__": annotations, **defaults}
    return strawberry.input(type(f"{model.name}Filter", (ObjectFilter,), namespace))


FILTER_TYPES: dict[str, type[ObjectFilter]] = {name: derive_filter_type(m) for name, m in COMMON_MODELS.items()}


def record_query(
    model: CommonModel, where: ObjectFilter | None, order_by: RecordOrder, include_deleted: bool
) -> RecordQuery:
    if where is None:
        return RecordQuery(model=model.name, order=order_by.value, include_deleted=include_deleted)
    fields: dict[str, StringMatch] = {}
    for field in model.filterable_fields:
        match: StringFilter | StringListFilter | enum.Enum | bool | None = getattr(where, field.name, None)
        if isinstance(match, StringFilter):
            ignore_case = field.type is CurrencyCode  # "usd" finds USD
            fields[field.name] = StringMatch(eq=match.eq, contains=match.contains, ignore_case=ignore_case)
        elif isinstance(match, StringListFilter):
            if match.contains is not None:
                fields[field.name] = StringMatch(holds=match.contains)
        elif isinstance(match, bool):
            fields[field.name] = StringMatch(flag=match)
        elif match is not None:
            fields[field.name] = StringMatch(eq=match.value)  # an enum field stores the member's name
    for relation in model.filterable_relations:
        remote_id: str | None = getattr(where, model.input_name(relation.name), None)
        if remote_id is not None:
            fields[relation.name] = StringMatch(holds=remote_id) if relation.many else StringMatch(eq=remote_id)
    custom = tuple(
        CustomMatch(
            key=match.key,
            eq=match.eq,
            contains=match.contains,
            among=tuple(match.in_) if match.in_ is not None else None,
            gt=match.gt,
            lt=match.lt,
        )
        for match in getattr(where, "custom_fields", None) or ()
    )
    return RecordQuery(
        model=model.name,
        custom=custom,
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
