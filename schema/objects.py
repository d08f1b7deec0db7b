"""The common objects as GraphQL types. Their members mirror connectors/kit/models.py (a test checks it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Self

import strawberry

from connectors.kit.models import COMMON_MODELS, CommonModel
from resolvers.ids import to_global_id
from resolvers.records import RecordRow
from schema.connection import Connection
from schema.context import Info
from schema.relay import Node
from schema.scalars import RawJSON

_DATETIME_FIELDS = {
    name: tuple(f.name for f in model.fields if f.type is datetime) for name, model in COMMON_MODELS.items()
}


@strawberry.interface(description="What every cached provider object has, common model or not.")
class RemoteObject(Node):
    remote_id: str = strawberry.field(description="The provider's own id of the object.")
    created_at: datetime | None
    updated_at: datetime | None
    deleted_at: datetime | None = strawberry.field(description="When the provider deleted it, if it did.")
    raw: RawJSON = strawberry.field(description="The provider's payload as received.")
    _row: strawberry.Private[RecordRow]

    @strawberry.field
    async def connection(self, info: Info) -> Connection:
        row = await info.context.loaders.connection.load(self._row.connection_id)
        assert row is not None  # a record never outlives its connection
        return Connection.build(row)


class CommonObject(RemoteObject):
    """Builds a GraphQL object straight from a cache row; its members come from the common model."""

    MODEL: ClassVar[CommonModel]

    @classmethod
    def build(cls, row: RecordRow) -> Self:
        common = row.common or {}
        values: dict[str, Any] = {f.name: common.get(f.name) for f in cls.MODEL.fields}
        for name in _DATETIME_FIELDS[cls.MODEL.name]:
            if isinstance(values[name], str):
                values[name] = datetime.fromisoformat(values[name])
        values["id"] = to_global_id(cls.MODEL.name, row.id)
        values["remote_id"] = row.remote_id
        values["created_at"] = row.remote_created_at
        values["updated_at"] = row.remote_updated_at
        values["deleted_at"] = row.deleted_at
        values["raw"] = row.raw
        values["_row"] = row
        # Every field is set here, so the generated dataclass __init__ (a hundred calls a page) is skipped.
        instance = cls.__new__(cls)
        instance.__dict__.update(values)
        return instance

    async def _one(self, info: Info, relation: str) -> RecordRow | None:
        remote_id = (self._row.common or {}).get(relation)
        if not remote_id:
            return None
        target = self.MODEL.relation(relation).target
        return await info.context.loaders.related.load((self._row.connection_id, target, remote_id))

    async def _many(self, info: Info, relation: str) -> list[RecordRow]:
        remote_ids = (self._row.common or {}).get(relation) or []
        target = self.MODEL.relation(relation).target
        keys = [(self._row.connection_id, target, remote_id) for remote_id in remote_ids]
        return [row for row in await info.context.loaders.related.load_many(keys) if row is not None]


def _built(cls: type[CommonObject], row: RecordRow | None) -> Any:
    return cls.build(row) if row is not None else None


@strawberry.type(description="A person at a customer: a CRM contact (or lead).")
class Contact(CommonObject):
    MODEL = COMMON_MODELS["Contact"]
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    job_title: str | None
    lifecycle_stage: str | None
    is_lead: bool | None = strawberry.field(description="True for a Salesforce lead, false for a contact.")

    @strawberry.field
    async def company(self, info: Info) -> Company | None:
        return _built(Company, await self._one(info, "company"))  # type: ignore[no-any-return]

    @strawberry.field
    async def owner(self, info: Info) -> User | None:
        return _built(User, await self._one(info, "owner"))  # type: ignore[no-any-return]


@strawberry.type(description="An organization: a CRM company or account.")
class Company(CommonObject):
    MODEL = COMMON_MODELS["Company"]
    name: str | None
    domain: str | None
    industry: str | None
    phone: str | None
    city: str | None
    country: str | None
    employee_count: int | None
    annual_revenue: float | None

    @strawberry.field
    async def owner(self, info: Info) -> User | None:
        return _built(User, await self._one(info, "owner"))  # type: ignore[no-any-return]


@strawberry.type(description="A sales opportunity.")
class Deal(CommonObject):
    MODEL = COMMON_MODELS["Deal"]
    name: str | None
    amount: float | None
    stage: str | None = strawberry.field(
        description="The stage as the provider shows it (HubSpot: the stage's label in its pipeline)."
    )
    remote_stage: str | None = strawberry.field(
        description="The provider's own value for the stage (HubSpot: the stage id, e.g. closedwon)."
    )
    pipeline: str | None
    close_date: datetime | None

    @strawberry.field
    async def company(self, info: Info) -> Company | None:
        return _built(Company, await self._one(info, "company"))  # type: ignore[no-any-return]

    @strawberry.field
    async def contacts(self, info: Info) -> list[Contact]:
        return [Contact.build(row) for row in await self._many(info, "contacts")]

    @strawberry.field
    async def owner(self, info: Info) -> User | None:
        return _built(User, await self._one(info, "owner"))  # type: ignore[no-any-return]


@strawberry.type(description="A user of the provider account (HubSpot owner, Salesforce user).")
class User(CommonObject):
    MODEL = COMMON_MODELS["User"]
    email: str | None
    first_name: str | None
    last_name: str | None
    active: bool | None


@strawberry.interface(description="Notes and tasks: activities logged against contacts, companies and deals.")
class Activity(CommonObject):
    @strawberry.field
    async def contacts(self, info: Info) -> list[Contact]:
        return [Contact.build(row) for row in await self._many(info, "contacts")]

    @strawberry.field
    async def companies(self, info: Info) -> list[Company]:
        return [Company.build(row) for row in await self._many(info, "companies")]

    @strawberry.field
    async def deals(self, info: Info) -> list[Deal]:
        return [Deal.build(row) for row in await self._many(info, "deals")]

    @strawberry.field
    async def owner(self, info: Info) -> User | None:
        return _built(User, await self._one(info, "owner"))  # type: ignore[no-any-return]


@strawberry.type(description="A note logged against CRM records.")
class Note(Activity):
    MODEL = COMMON_MODELS["Note"]
    body: str | None
    timestamp: datetime | None


@strawberry.type(description="A to-do in the CRM.")
class Task(Activity):
    MODEL = COMMON_MODELS["Task"]
    subject: str | None
    body: str | None
    status: str | None
    priority: str | None
    task_type: str | None
    due_at: datetime | None


@strawberry.type(description="A cached provider object of a stream that has no common model.")
class Record(RemoteObject):
    stream: str

    @classmethod
    def build(cls, row: RecordRow) -> Record:
        return cls(
            id=strawberry.ID(to_global_id("Record", row.id)),
            remote_id=row.remote_id,
            created_at=row.remote_created_at,
            updated_at=row.remote_updated_at,
            deleted_at=row.deleted_at,
            raw=RawJSON(row.raw),
            stream=row.stream,
            _row=row,
        )


OBJECT_TYPES: dict[str, type[CommonObject]] = {
    cls.MODEL.name: cls for cls in (Contact, Company, Deal, User, Note, Task)
}
