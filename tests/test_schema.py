"""The exported schema and the common models stay in step with the code."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from connectors import CONNECTORS
from connectors.kit.models import COMMON_MODELS, CurrencyCode, Embedded, EnumType, Field, ListOf, Money, StringMap
from schema import schema
from schema.objects import OBJECT_TYPES

ROOT = Path(__file__).resolve().parent.parent
SCALARS = {
    str: "String",
    int: "Int",
    float: "Float",
    bool: "Boolean",
    datetime: "DateTime",
    Money: "Money",
    CurrencyCode: "String",
    dict: "JSON",
}


def graphql_type_name(field: Field) -> str:
    if isinstance(field.type, ListOf):
        return f"[{SCALARS[field.type.item]}!]!"
    if isinstance(field.type, Embedded):
        return f"[{field.type.struct.name}!]!"
    if isinstance(field.type, StringMap):
        return "JSON"
    return field.type.name if isinstance(field.type, EnumType) else SCALARS[field.type]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_schema_graphql_matches_the_code() -> None:
    exported = (ROOT / "schema.graphql").read_text()
    assert exported == schema.as_str() + "\n", "schema.graphql is stale: run `make schema` and commit it"


@pytest.mark.parametrize("model_name", sorted(COMMON_MODELS))
def test_graphql_types_mirror_the_common_models(model_name: str) -> None:
    model = COMMON_MODELS[model_name]
    graphql_type = schema._schema.type_map[model_name]
    fields = graphql_type.fields  # type: ignore[attr-defined]
    for field in model.fields:
        graphql_field = fields[camel(field.name)]
        assert str(graphql_field.type) == graphql_type_name(field), field.name
        assert (graphql_field.description or "") == field.description, field.name
    assert (graphql_type.description or "") == model.description
    for relation in model.relations:
        graphql_field = fields[camel(relation.name)]
        expected = f"[{relation.target}!]!" if relation.many else relation.target
        assert str(graphql_field.type) == expected, relation.name
    for inverse in model.inverses:
        assert str(fields[camel(inverse.name)].type) == f"[{inverse.target}!]!", inverse.name
    common_members = {"id", "remoteId", "connection", "createdAt", "updatedAt", "deletedAt", "raw"}
    common_members |= {"customFields", "customField"}
    inverses = {camel(inverse.name) for inverse in model.inverses}
    assert set(fields) == common_members | {camel(m) for m in model.member_names} | inverses
    assert OBJECT_TYPES[model_name].MODEL is model


@pytest.mark.parametrize("model_name", sorted(COMMON_MODELS))
def test_filters_cover_exactly_the_filterable_fields(model_name: str) -> None:
    model = COMMON_MODELS[model_name]
    filter_type = schema._schema.type_map[f"{model_name}Filter"]
    source = {"connectionId", "externalUserId", "provider", "updatedAfter", "customFields"}
    members = set(filter_type.fields) - source  # type: ignore[attr-defined]
    relations = {camel(model.input_name(r.name)) for r in model.filterable_relations}
    assert members == {camel(f.name) for f in model.filterable_fields} | relations


@pytest.mark.parametrize("connector", sorted(CONNECTORS))
def test_every_mapping_targets_real_members_of_its_model(connector: str) -> None:
    for stream in CONNECTORS[connector].streams:
        if stream.mapping is not None:
            assert set(stream.mapping.members) <= stream.mapping.model.member_names
