"""Writeback mutations, derived from the common models: for each model that connectors write,
`create<Model>`, `update<Model>` and `delete<Model>`, a `<Model>Input` of its fields and relations
(related records by remote id), and a `<Model>Payload` holding the stored object.

They are built from `connectors/kit/models.py` rather than written out, so a field added to a model
is writable everywhere its connectors map it, with no schema edit.
"""

# No `from __future__ import annotations`: the generated resolvers carry real classes as annotations.

import enum
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Optional

import strawberry
from strawberry.types.unset import UnsetType

from connectors import CONNECTORS
from connectors.kit.errors import BadInput
from connectors.kit.models import (
    COMMON_MODELS,
    CommonModel,
    CurrencyCode,
    Embedded,
    EnumType,
    Field,
    ListOf,
    Money,
    StringMap,
    Struct,
    currency_problem,
    graphql_name,
)
from resolvers import writeback
from schema.context import Info
from schema.objects import OBJECT_TYPES, CommonObject, graphql_enum
from schema.scalars import RawJSON

WRITABLE_MODELS = tuple(
    name for name in COMMON_MODELS if any(connector.writable_streams(name) for connector in CONNECTORS.values())
)

RAW_FIELDS = "Provider-native fields merged into the provider's request as they are (custom fields included)."
CUSTOM_FIELDS = (
    'Custom field values by key ({"tier": "gold"}), each written to the provider field the connection maps it '
    "to; a key not defined, or not mapped on this connection, is refused. null clears a field."
)
IDEMPOTENCY_KEY = (
    "Retries with the same key within 24 hours return the first result without writing again; "
    "the same key with different arguments is a CONFLICT."
)
IF_UPDATED_AT = "Refuse the write with CONFLICT (and the current record) if the record changed after this instant."
RAW_FIELDS_ARGUMENT = Annotated[Optional[RawJSON], strawberry.argument(description=RAW_FIELDS)]  # noqa: UP045
IDEMPOTENCY_KEY_ARGUMENT = Annotated[Optional[str], strawberry.argument(description=IDEMPOTENCY_KEY)]  # noqa: UP045
IF_UPDATED_AT_ARGUMENT = Annotated[Optional[datetime], strawberry.argument(description=IF_UPDATED_AT)]  # noqa: UP045


@strawberry.input(name="MoneyInput", description="An exact amount of money to write.")
class MoneyInput:
    amount: Decimal = strawberry.field(description='In major units, exact, as text: "1234.50".')
    currency: str = strawberry.field(description="The ISO 4217 code (upper-case).")


_STRUCT_INPUTS: dict[Struct, type] = {}


def _struct_input(struct: Struct) -> type:
    """One input type per embedded `Struct` (InvoiceLineInput), its fields written like a model's."""
    made = _STRUCT_INPUTS.get(struct)
    if made is None:
        annotations = {f.name: Optional[_written_type(f)] for f in struct.fields}  # noqa: UP045
        namespace: dict[str, Any] = {"__annotations__": annotations}
        namespace |= {
            f.name: strawberry.field(default=strawberry.UNSET, description=f.description or None) for f in struct.fields
        }
        made = _STRUCT_INPUTS[struct] = strawberry.input(
            type(f"{struct.name}Input", (), namespace), description=struct.description or None
        )
    return made


def _written_type(field: Field) -> Any:
    """A field's type in write inputs: enums as themselves, Money as `MoneyInput`, a currency as text, a list
    as a list, embedded values as a list of their input type, an object as JSON."""
    if isinstance(field.type, EnumType):
        return graphql_enum(field.type)
    if isinstance(field.type, ListOf):
        return list[field.type.item]  # type: ignore[name-defined]
    if isinstance(field.type, Embedded):
        return list[_struct_input(field.type.struct)]  # type: ignore[misc]
    if field.type is dict or isinstance(field.type, StringMap):
        return RawJSON
    if field.type is CurrencyCode:
        return str
    return MoneyInput if field.type is Money else field.type


def _stored(field: Field, value: Any, path: str) -> Any:
    """A written value in the form records store it: an enum member by name, Money as its common dict,
    embedded values as dicts of their set members. A value the field's type refuses (an unknown or
    lower-case currency, an amount more precise than its currency, metadata that is not text) is refused
    naming `path`, the member as the input spells it (`lines[1].amount`)."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, MoneyInput):
        return _stored_money(value, path)
    if field.type is CurrencyCode:
        problem = currency_problem(value)
        if problem is not None:
            raise BadInput(f"{path}: {problem}", field=path)
        return value
    if isinstance(field.type, StringMap):
        found = field.type.problem(value)
        if found is not None:
            problem, below = found
            raise BadInput(f"{path}{below} {problem}", field=f"{path}{below}")
        return value
    if field.type is dict and not isinstance(value, dict):
        raise BadInput(f"{path} must be a JSON object, got {type(value).__name__}", field=path)
    if isinstance(field.type, Embedded):
        return [_stored_item(field.type.struct, item, f"{path}[{n}]") for n, item in enumerate(value)]
    return value


def _stored_money(value: MoneyInput, path: str) -> dict[str, str]:
    """Money as stored; refusals name the Money field (`lines[1].amount`, `total`), as the provider's
    checks of the same value do (`MoneyAt.write`): its amount and currency are judged together."""
    problem = currency_problem(value.currency)
    if problem is not None:
        raise BadInput(f"{path}: currency {problem}", field=path)
    try:
        money = Money(value.amount, value.currency)
    except ValueError as error:
        raise BadInput(f"{path}: {error}", field=path) from error
    if not money.is_precise_enough:
        decimals = "no decimals" if money.exponent == 0 else f"at most {money.exponent} decimals"
        raise BadInput(
            f"{path} {format(money.amount, 'f')} has more decimals than {money.currency} allows ({money.exponent}): "
            f"{money.currency} has {decimals}, and xkit never rounds",
            field=path,
            decimals=money.exponent,
        )
    return money.to_common()


def _stored_item(struct: Struct, item: Any, path: str) -> dict[str, Any]:
    """One embedded value (an invoice line) as stored: its set members, each checked like a model's field."""
    return {
        field.name: _stored(field, getattr(item, field.name), f"{path}.{graphql_name(field.name)}")
        for field in struct.fields
        if not isinstance(getattr(item, field.name), UnsetType)
    }


def _input_type(model: CommonModel) -> type:
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for field in model.fields:
        annotations[field.name] = Optional[_written_type(field)]  # noqa: UP045 - built at run time from a type object
        defaults[field.name] = strawberry.UNSET
    for relation in model.relations:
        name = model.input_name(relation.name)
        annotations[name] = Optional[list[str]] if relation.many else Optional[str]  # noqa: UP045
        defaults[name] = strawberry.field(
            default=strawberry.UNSET,
            description=f"Remote id{'s' if relation.many else ''} of the related {relation.target}"
            f"{' records' if relation.many else ''}; null clears.",
        )
    annotations["custom_fields"] = Optional[RawJSON]  # noqa: UP045
    defaults["custom_fields"] = strawberry.field(default=strawberry.UNSET, description=CUSTOM_FIELDS)
    namespace = {"__annotations__": annotations, **defaults}
    return strawberry.input(
        type(f"{model.name}Input", (), namespace),
        description=f"{model.name} fields to write. Fields left out are not changed; null clears a field.",
    )


def _payload_type(model: CommonModel, object_type: type[CommonObject]) -> type:
    field = model.snake_name
    namespace = {
        "__annotations__": {field: object_type, "replayed": bool},
        "replayed": strawberry.field(description="True when answered from an earlier request with the same key."),
    }
    return strawberry.type(
        type(f"{model.name}Payload", (), namespace),
        description=f"The {model.name} as stored after the write (deletedAt is set after a delete).",
    )


def _values(model: CommonModel, given: Any) -> dict[str, Any]:
    """The members the caller set (left-out fields are UNSET), by common member name."""
    values: dict[str, Any] = {}
    if given is None:
        return values
    for field in model.fields:
        value = getattr(given, field.name)
        if not isinstance(value, UnsetType):
            values[field.name] = _stored(field, value, graphql_name(field.name))
    for relation in model.relations:
        value = getattr(given, model.input_name(relation.name))
        if not isinstance(value, UnsetType):
            values[relation.name] = value
    return values


def _custom_fields(given: Any) -> Any:
    """The input's `customFields` (None when left out); checked and written by resolvers/writeback.py."""
    if given is None:
        return None
    value = given.custom_fields
    return None if isinstance(value, UnsetType) else value


def _mutations(model_name: str) -> dict[str, Any]:
    model = COMMON_MODELS[model_name]
    object_type = OBJECT_TYPES[model_name]
    input_type = _input_type(model)
    payload_type = _payload_type(model, object_type)
    field = model.snake_name

    def payload(result: writeback.WriteResult) -> Any:
        return payload_type(**{field: object_type.build(result.row), "replayed": result.replayed})

    async def create(
        info: Info, connection_id: strawberry.ID, input: Any, raw_fields: Any = None, idempotency_key: Any = None
    ) -> Any:
        return payload(
            await writeback.create_record(
                info.context,
                model_name,
                connection_id,
                _values(model, input),
                raw_fields,
                idempotency_key,
                _custom_fields(input),
            )
        )

    async def update(
        info: Info,
        input: Any = None,
        id: Any = None,
        connection_id: Any = None,
        remote_id: Any = None,
        raw_fields: Any = None,
        if_updated_at: Any = None,
        idempotency_key: Any = None,
    ) -> Any:
        target = writeback.Target(id, connection_id, remote_id)
        return payload(
            await writeback.update_record(
                info.context,
                model_name,
                target,
                _values(model, input),
                raw_fields,
                if_updated_at,
                idempotency_key,
                _custom_fields(input),
            )
        )

    async def delete(
        info: Info,
        id: Any = None,
        connection_id: Any = None,
        remote_id: Any = None,
        if_updated_at: Any = None,
        idempotency_key: Any = None,
    ) -> Any:
        target = writeback.Target(id, connection_id, remote_id)
        return payload(await writeback.delete_record(info.context, model_name, target, if_updated_at, idempotency_key))

    target_arguments: dict[str, Any] = {
        "id": Optional[strawberry.ID],  # noqa: UP045
        "connection_id": Optional[strawberry.ID],  # noqa: UP045
        "remote_id": Optional[str],  # noqa: UP045
    }
    create.__annotations__ = {
        "info": Info,
        "connection_id": strawberry.ID,
        "input": input_type,
        "raw_fields": RAW_FIELDS_ARGUMENT,
        "idempotency_key": IDEMPOTENCY_KEY_ARGUMENT,
        "return": payload_type,
    }
    update.__annotations__ = {
        "info": Info,
        "input": Optional[input_type],  # noqa: UP045
        **target_arguments,
        "raw_fields": RAW_FIELDS_ARGUMENT,
        "if_updated_at": IF_UPDATED_AT_ARGUMENT,
        "idempotency_key": IDEMPOTENCY_KEY_ARGUMENT,
        "return": payload_type,
    }
    delete.__annotations__ = {
        "info": Info,
        **target_arguments,
        "if_updated_at": IF_UPDATED_AT_ARGUMENT,
        "idempotency_key": IDEMPOTENCY_KEY_ARGUMENT,
        "return": payload_type,
    }
    which = "by its id, or by connectionId and remoteId"
    return {
        f"create_{field}": _mutation(create, f"Create a {model.name} at the connection's provider."),
        f"update_{field}": _mutation(update, f"Update a {model.name} at its provider, {which}."),
        f"delete_{field}": _mutation(delete, f"Delete a {model.name} at its provider, {which}."),
    }


def _mutation(resolver: Callable[..., Any], description: str) -> Any:
    return strawberry.mutation(resolver=resolver, description=description)


WriteMutation = strawberry.type(
    type("WriteMutation", (), {k: v for name in WRITABLE_MODELS for k, v in _mutations(name).items()}),
    name="WriteMutation",
)
