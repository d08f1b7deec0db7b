"""The common models: each defined once here.

Mappings, GraphQL types and filters are derived from or checked against these definitions.
A relation is stored in a record's common fields as the remote id (or list of remote ids)
of the related record on the same connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

ScalarType = type[str] | type[int] | type[float] | type[bool] | type[datetime]


@dataclass(frozen=True)
class Field:
    name: str
    type: ScalarType
    filterable: bool = False


@dataclass(frozen=True)
class Relation:
    name: str
    target: str
    many: bool = False


@dataclass(frozen=True)
class CommonModel:
    name: str
    fields: tuple[Field, ...]
    relations: tuple[Relation, ...] = ()

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"{self.name} has no field {name!r}")

    def relation(self, name: str) -> Relation:
        for relation in self.relations:
            if relation.name == name:
                return relation
        raise KeyError(f"{self.name} has no relation {name!r}")

    def input_name(self, member: str) -> str:
        """A member's name in write inputs: relations take remote ids (`company_remote_id`, `contact_remote_ids`)."""
        for relation in self.relations:
            if relation.name == member:
                return f"{relation.target.lower()}_remote_ids" if relation.many else f"{member}_remote_id"
        return member

    @property
    def member_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields) | frozenset(r.name for r in self.relations)

    @property
    def filterable_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.filterable)

    def validate(self, common: dict[str, Any]) -> None:
        """Raise TypeError when a mapped record does not fit this model (used by the conformance tests)."""
        unknown = set(common) - self.member_names
        if unknown:
            raise TypeError(f"{self.name} has no members {sorted(unknown)}")
        for field in self.fields:
            value = common.get(field.name)
            if value is not None and not _is_instance(value, field.type):
                raise TypeError(f"{self.name}.{field.name} must be {field.type.__name__}, got {value!r}")
        for relation in self.relations:
            value = common.get(relation.name)
            if value is None:
                continue
            if relation.many:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise TypeError(f"{self.name}.{relation.name} must be a list of remote ids")
            elif not isinstance(value, str):
                raise TypeError(f"{self.name}.{relation.name} must be a remote id")


def graphql_name(member: str) -> str:
    """A member's name in the GraphQL API: `first_name` -> `firstName`."""
    head, *rest = member.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _is_instance(value: object, expected: ScalarType) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


CONTACT = CommonModel(
    "Contact",
    fields=(
        Field("first_name", str, filterable=True),
        Field("last_name", str, filterable=True),
        Field("email", str, filterable=True),
        Field("phone", str),
        Field("job_title", str),
        Field("lifecycle_stage", str, filterable=True),
        # Salesforce keeps leads apart from contacts; both are people, so both are Contacts here.
        Field("is_lead", bool),
    ),
    relations=(Relation("company", "Company"), Relation("owner", "User")),
)

COMPANY = CommonModel(
    "Company",
    fields=(
        Field("name", str, filterable=True),
        Field("domain", str, filterable=True),
        Field("industry", str, filterable=True),
        Field("phone", str),
        Field("city", str),
        Field("country", str),
        Field("employee_count", int),
        Field("annual_revenue", float),
    ),
    relations=(Relation("owner", "User"),),
)

DEAL = CommonModel(
    "Deal",
    fields=(
        Field("name", str, filterable=True),
        Field("amount", float),
        # The stage as people read it (HubSpot's stage label) and the provider's own value (its stage id).
        Field("stage", str, filterable=True),
        Field("remote_stage", str, filterable=True),
        Field("pipeline", str, filterable=True),
        Field("close_date", datetime),
    ),
    relations=(
        Relation("company", "Company"),
        Relation("contacts", "Contact", many=True),
        Relation("owner", "User"),
    ),
)

USER = CommonModel(
    "User",
    fields=(
        Field("email", str, filterable=True),
        Field("first_name", str, filterable=True),
        Field("last_name", str, filterable=True),
        Field("active", bool),
    ),
)

_ACTIVITY_PARENTS = (
    Relation("contacts", "Contact", many=True),
    Relation("companies", "Company", many=True),
    Relation("deals", "Deal", many=True),
    Relation("owner", "User"),
)

NOTE = CommonModel(
    "Note",
    fields=(Field("body", str, filterable=True), Field("timestamp", datetime)),
    relations=_ACTIVITY_PARENTS,
)

TASK = CommonModel(
    "Task",
    fields=(
        Field("subject", str, filterable=True),
        Field("body", str),
        Field("status", str, filterable=True),
        Field("priority", str, filterable=True),
        Field("task_type", str),
        Field("due_at", datetime),
    ),
    relations=_ACTIVITY_PARENTS,
)

COMMON_MODELS: dict[str, CommonModel] = {m.name: m for m in (CONTACT, COMPANY, DEAL, USER, NOTE, TASK)}
