"""The common objects as GraphQL types, derived from connectors/kit/models.py: per model a type of its
fields with a resolver per relation (and per inverse relation: the children that name it, a ticket's
comments), per family an interface of the shared relations, per enum a GraphQL enum, and `Money`. A model
added there is a type here with no edit.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Optional, Self

import orjson
import strawberry

from connectors.kit.models import (
    COMMON_MODELS,
    CommonModel,
    CurrencyCode,
    Embedded,
    EnumType,
    Family,
    Field,
    Inverse,
    ListOf,
    Money,
    Relation,
    StringMap,
    Struct,
    graphql_name,
)
from resolvers.ids import to_global_id
from resolvers.loaders import MAX_CHILDREN
from resolvers.records import RecordRow
from schema.connection import LinkedAccount
from schema.context import Info
from schema.relay import Node
from schema.scalars import RawJSON


@strawberry.interface(description="What every cached provider object has, common model or not.")
class RemoteObject(Node):
    remote_id: str = strawberry.field(description="The provider's own id of the object.")
    created_at: datetime | None
    updated_at: datetime | None
    deleted_at: datetime | None = strawberry.field(description="When the provider deleted it, if it did.")
    raw: RawJSON = strawberry.field(description="The provider's payload as received.")
    _row: strawberry.Private[RecordRow]

    @strawberry.field
    async def connection(self, info: Info) -> LinkedAccount:
        row = await info.context.loaders.connection.load(self._row.connection_id)
        assert row is not None  # a record never outlives its connection
        return LinkedAccount.build(row)


class CommonObject(RemoteObject):
    """Builds a GraphQL object straight from a cache row; its members come from the common model."""

    MODEL: ClassVar[CommonModel]
    # The fields stored in another form than GraphQL shows them (datetimes as text, Money as a dict, enum
    # members by name), with the function that turns a stored value into the shown one.
    REVIVE: ClassVar[tuple[tuple[str, Callable[[Any], Any]], ...]]
    # The list fields, never null: a record without one (cached before the field existed) shows [].
    LISTS: ClassVar[tuple[str, ...]]

    @classmethod
    def build(cls, row: RecordRow) -> Self:
        common = row.common or {}
        values: dict[str, Any] = {f.name: common.get(f.name) for f in cls.MODEL.fields}
        for name, revive in cls.REVIVE:
            if values[name] is not None:
                values[name] = revive(values[name])
        for name in cls.LISTS:
            if not isinstance(values[name], list):
                values[name] = []
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

    async def _inverse(self, info: Info, inverse: Inverse) -> list[RecordRow]:
        key = (self._row.connection_id, inverse.target, inverse.via, self._row.remote_id)
        return await info.context.loaders.inverse.load(key)


@strawberry.type(name="Money", description="An exact amount of money.")
class MoneyObject:
    amount: Decimal = strawberry.field(description='In major units, exact, as text: "1234.50".')
    currency: str = strawberry.field(description="The upper-case ISO 4217 code.")

    @classmethod
    def revive(cls, stored: Any) -> MoneyObject | None:
        try:
            money = Money.from_common(stored)
        except (ValueError, TypeError):
            return None  # not Money as stored; `raw` keeps what the provider sent
        return cls(amount=money.amount, currency=money.currency)


_ENUMS: dict[EnumType, type[enum.Enum]] = {}


def graphql_enum(spec: EnumType) -> type[enum.Enum]:
    """One GraphQL enum per EnumType, shared by every model and filter that uses it."""
    made = _ENUMS.get(spec)
    if made is None:
        values: type[enum.Enum] = enum.Enum(spec.name, {member: member for member in spec.members})  # type: ignore[misc]
        made = _ENUMS[spec] = strawberry.enum(values, description=spec.description or None)
    return made


def _revive_object(stored: Any) -> Any:
    """A stored JSON object as shown; anything else reads as null. Never text: the JSON scalar would embed
    text as JSON verbatim, so a provider's string must not reach it as if it were an object."""
    return stored if isinstance(stored, dict) else None


def _revive_datetime(stored: Any) -> Any:
    return datetime.fromisoformat(stored) if isinstance(stored, str) else stored


_STRUCTS: dict[Struct, tuple[type, Callable[[Any], Any]]] = {}


def struct_type(struct: Struct) -> tuple[type, Callable[[Any], Any]]:
    """One GraphQL object per embedded `Struct` (InvoiceLine), and how a stored list becomes a list of them:
    each member revived like a model's field (Money from its dict), items that are not objects skipped."""
    made = _STRUCTS.get(struct)
    if made is not None:
        return made
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": __name__, "__annotations__": annotations}
    revivers: list[tuple[str, Callable[[Any], Any] | None]] = []
    for field in struct.fields:
        shown, reviver = _shown_type(field)
        annotations[field.name] = Optional[shown]  # noqa: UP045 - built at run time
        namespace[field.name] = strawberry.field(default=None, description=field.description or None)
        revivers.append((field.name, reviver))
    cls = strawberry.type(type(struct.name, (), namespace), description=struct.description or None)

    def revive_items(stored: Any) -> list[Any]:
        items = []
        for item in stored if isinstance(stored, list) else ():
            if not isinstance(item, dict):
                continue
            values = {}
            for name, reviver in revivers:
                value = item.get(name)
                values[name] = reviver(value) if reviver is not None and value is not None else value
            items.append(cls(**values))
        return items

    made = _STRUCTS[struct] = (cls, revive_items)
    return made


def _shown_type(field: Field) -> tuple[Any, Callable[[Any], Any] | None]:
    """A field's Python type in the GraphQL object, and how a stored value becomes one (None: as stored)."""
    if isinstance(field.type, Embedded):
        shown, revive_items = struct_type(field.type.struct)
        return list[shown], revive_items  # type: ignore[valid-type]
    if field.type is dict or isinstance(field.type, StringMap):
        return RawJSON, _revive_object
    if field.type is CurrencyCode:
        return str, None
    if isinstance(field.type, EnumType):
        members = graphql_enum(field.type).__members__
        return graphql_enum(field.type), members.get  # a name the enum lacks reads as null
    if field.type is Money:
        return MoneyObject, MoneyObject.revive
    if field.type is datetime:
        return datetime, _revive_datetime
    if isinstance(field.type, ListOf):
        return list[field.type.item], None  # type: ignore[name-defined]
    return field.type, None


def _relation_resolver(relation: Relation, types: dict[str, type[CommonObject]]) -> Any:
    """The resolver of a relation; the caller names its return type once every type exists, as relations
    form cycles (Ticket -> TicketComment -> Ticket)."""
    name = relation.name
    if relation.many:

        async def resolve_many(self: CommonObject, info: Info) -> Any:
            target = types[relation.target]
            return [target.build(row) for row in await self._many(info, name)]

        resolve = resolve_many
    else:

        async def resolve_one(self: CommonObject, info: Info) -> Any:
            row = await self._one(info, name)
            return types[relation.target].build(row) if row is not None else None

        resolve = resolve_one
    resolve.__annotations__ = {"self": CommonObject, "info": Info}
    return resolve


def _inverse_resolver(inverse: Inverse, types: dict[str, type[CommonObject]]) -> Any:
    async def resolve(self: CommonObject, info: Info) -> Any:
        target = types[inverse.target]
        return [target.build(row) for row in await self._inverse(info, inverse)]

    resolve.__annotations__ = {"self": CommonObject, "info": Info}
    return resolve


def _about(inverse: Inverse, target: CommonModel) -> str:
    lead = f"{inverse.description} " if inverse.description else ""
    every = f"{graphql_name(target.list_name)}(filter: {{{graphql_name(target.input_name(inverse.via))}: ...}})"
    return f"{lead}Oldest first, at most {MAX_CHILDREN}; all of them through `{every}`."


def _check_inverse(model: CommonModel, inverse: Inverse, models: dict[str, CommonModel]) -> None:
    target = models.get(inverse.target)
    if target is None:
        raise ValueError(f"{model.name}.{inverse.name} targets {inverse.target}, which is not derived")
    via = next((r for r in target.relations if r.name == inverse.via), None)
    if via is None or via.many or via.target != model.name:
        raise ValueError(f"{model.name}.{inverse.name}: {inverse.target}.{inverse.via} must be one {model.name}")
    if not via.filterable:  # past the limit, the children are listed by this filter
        raise ValueError(f"{model.name}.{inverse.name}: {inverse.target}.{inverse.via} must be filterable")


def _custom_fields(self: CommonObject) -> RawJSON:
    return RawJSON(orjson.dumps(self._row.custom or {}))


def _custom_field(self: CommonObject, key: str) -> RawJSON | None:
    value = (self._row.custom or {}).get(key)
    return None if value is None else RawJSON(orjson.dumps(value))


def _custom_members() -> dict[str, Any]:
    """`customFields` and `customField(key)`, which every common object and family interface has."""
    return {
        "custom_fields": strawberry.field(
            resolver=_custom_fields,
            description="The custom fields your platform defined on this model, as this connection's field "
            "mappings fill them: {key: value or null}.",
        ),
        "custom_field": strawberry.field(
            resolver=_custom_field,
            description="One custom field's value; null when it holds none or no such field is defined.",
        ),
    }


def derive_object_types(models: Iterable[CommonModel]) -> dict[str, type[CommonObject]]:
    """The GraphQL object types of `models` by model name; relations must target models among them."""
    models = tuple(models)
    types: dict[str, type[CommonObject]] = {}
    # (class, relation): relation fields are added once every class exists, so their return types can
    # name any of them (Contact -> Company and back).
    relations: list[tuple[type, Relation]] = []
    interfaces: dict[Family, type] = {}
    for model in models:
        family = model.family
        if family is not None and family not in interfaces:
            interfaces[family] = type(family.name, (CommonObject,), {"__module__": __name__, **_custom_members()})
            relations += [(interfaces[family], relation) for relation in family.relations]
    for model in models:
        annotations: dict[str, Any] = {}
        revive: list[tuple[str, Callable[[Any], Any]]] = []
        namespace: dict[str, Any] = {
            "__module__": __name__,
            "__annotations__": annotations,
            "MODEL": model,
            **_custom_members(),
        }
        for field in model.fields:
            shown, reviver = _shown_type(field)
            many = isinstance(field.type, ListOf | Embedded)
            annotations[field.name] = shown if many else Optional[shown]  # noqa: UP045 - built at run time
            if field.description:
                namespace[field.name] = strawberry.field(description=field.description)
            if reviver is not None:
                revive.append((field.name, reviver))
        namespace["REVIVE"] = tuple(revive)
        namespace["LISTS"] = tuple(f.name for f in model.fields if isinstance(f.type, ListOf | Embedded))
        base = interfaces[model.family] if model.family is not None else CommonObject
        types[model.name] = type(model.name, (base,), namespace)
        inherited = model.family.relations if model.family is not None else ()
        relations += [(types[model.name], r) for r in model.relations if r not in inherited]
    missing = {relation.target for _, relation in relations} - set(types)
    if missing:
        raise ValueError(f"relations target models that are not derived: {sorted(missing)}")
    for cls, relation in relations:
        resolver = _relation_resolver(relation, types)
        target = types[relation.target]
        resolver.__annotations__["return"] = list[target] if relation.many else Optional[target]  # type: ignore[valid-type]  # noqa: UP045
        setattr(cls, relation.name, strawberry.field(resolver=resolver))
    by_name = {model.name: model for model in models}
    for model in models:
        for inverse in model.inverses:
            _check_inverse(model, inverse, by_name)
            resolver = _inverse_resolver(inverse, types)
            children = types[inverse.target]
            resolver.__annotations__["return"] = list[children]  # type: ignore[valid-type]
            setattr(
                types[model.name],
                inverse.name,
                strawberry.field(resolver=resolver, description=_about(inverse, by_name[inverse.target])),
            )
    for family, interface in interfaces.items():
        strawberry.interface(interface, description=family.description or None)
    for model in models:
        strawberry.type(types[model.name], description=model.description or None)
    return types


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


OBJECT_TYPES: dict[str, type[CommonObject]] = derive_object_types(COMMON_MODELS.values())
