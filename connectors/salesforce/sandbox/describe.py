"""The describe resources: `GET /sobjects` (global) and `GET /sobjects/{SObject}/describe`,
rendered from the schema in the shape of Salesforce's DescribeGlobalResult and DescribeSObjectResult."""

from __future__ import annotations

import functools
from typing import Any

from connectors.salesforce.sandbox.schema import SOBJECTS, FieldDef, FieldType, Schema, SObjectType

_SOAP_TYPES = {
    FieldType.ID: "tns:ID",
    FieldType.REFERENCE: "tns:ID",
    FieldType.DATETIME: "xsd:dateTime",
    FieldType.DATE: "xsd:date",
    FieldType.BOOLEAN: "xsd:boolean",
    FieldType.DOUBLE: "xsd:double",
    FieldType.CURRENCY: "xsd:double",
    FieldType.PERCENT: "xsd:double",
    FieldType.INT: "xsd:int",
    FieldType.ADDRESS: "urn:address",
}
# Fields Salesforce lets a client find a record by (upsert and search on them).
_ID_LOOKUP_FIELDS = frozenset({"Id", "Email", "Username", "Name"})


def global_describe(schema: Schema, api_root: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [object_summary(sobject, api_root) for sobject in schema.sobjects.values()],
    }


@functools.cache
def describe(sobject: SObjectType, api_root: str) -> dict[str, Any]:
    return {
        **object_summary(sobject, api_root),
        "actionOverrides": [],
        # Which objects point at this one is the same in every org the sandbox builds.
        "childRelationships": _child_relationships(sobject),
        "compactLayoutable": True,
        "fields": [_field(definition) for definition in sobject.fields],
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "recordTypeInfos": [],
        "supportedScopes": [{"label": "All", "name": "everything"}, {"label": "My", "name": "mine"}],
    }


def object_summary(sobject: SObjectType, api_root: str) -> dict[str, Any]:
    base = f"{api_root}/sobjects/{sobject.name}"
    return {
        "activateable": False,
        "createable": True,
        "custom": False,
        "customSetting": False,
        "deletable": sobject.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": sobject.name != "Note",
        "hasSubtypes": False,
        "isSubtype": False,
        "keyPrefix": sobject.key_prefix,
        "label": sobject.label,
        "labelPlural": sobject.label_plural,
        "layoutable": True,
        "mergeable": sobject.name in ("Account", "Contact", "Lead"),
        "mruEnabled": True,
        "name": sobject.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": sobject.name != "Note",
        "triggerable": True,
        "undeletable": sobject.deletable,
        "updateable": True,
        "urls": {
            "rowTemplate": f"{base}/{{ID}}",
            "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
            "describe": f"{base}/describe",
            "sobject": base,
        },
    }


def _field(definition: FieldDef) -> dict[str, Any]:
    kind = definition.type
    is_text = definition.is_text
    long_text = not definition.filterable
    return {
        "aggregatable": not long_text and kind is not FieldType.BOOLEAN,
        "autoNumber": False,
        "byteLength": _byte_length(definition),
        "calculated": False,
        "caseSensitive": False,
        "compoundFieldName": definition.compound_of,
        "createable": definition.createable,
        "custom": definition.custom,
        "defaultValue": definition.default if kind is FieldType.BOOLEAN else None,
        "defaultValueFormula": None,
        "defaultedOnCreate": definition.defaulted_on_create,
        "digits": definition.precision if kind is FieldType.INT else 0,
        "externalId": False,
        "filterable": definition.filterable,
        "groupable": not long_text and kind not in (FieldType.DATETIME, FieldType.DOUBLE, FieldType.CURRENCY),
        "idLookup": definition.name in _ID_LOOKUP_FIELDS and is_text,
        "label": definition.label,
        "length": definition.length if is_text else 0,
        "name": definition.name,
        "nameField": definition.name_field,
        "nillable": definition.nillable,
        "permissionable": definition.custom and definition.nillable,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": value == definition.default,
                "label": value,
                "validFor": None,
                "value": value,
            }
            for value in definition.picklist
        ],
        "precision": definition.precision if definition.is_number and kind is not FieldType.INT else 0,
        "referenceTo": list(definition.reference_to),
        "relationshipName": definition.relationship_name,
        "restrictedPicklist": definition.restricted,
        "scale": definition.scale if definition.is_number and kind is not FieldType.INT else 0,
        "soapType": _SOAP_TYPES.get(kind, "xsd:string"),
        "sortable": definition.filterable,
        "type": kind.value,
        "unique": False,
        "updateable": definition.updateable,
    }


def _byte_length(definition: FieldDef) -> int:
    if definition.type in (FieldType.ID, FieldType.REFERENCE):
        return 18
    # Text is stored as UTF-8, budgeted at three bytes a character.
    return definition.length * 3 if definition.is_text else 0


def _child_relationships(parent: SObjectType) -> list[dict[str, Any]]:
    relationships = []
    for child in SOBJECTS.values():
        for definition in child.fields:
            if parent.name in definition.reference_to and definition.name not in ("CreatedById", "LastModifiedById"):
                relationships.append(
                    {
                        "cascadeDelete": definition.cascade_delete and definition.name != "OwnerId",
                        "childSObject": child.name,
                        "deprecatedAndHidden": False,
                        "field": definition.name,
                        "relationshipName": child.label_plural.replace(" ", "")
                        if definition.name != "OwnerId"
                        else None,
                        "restrictedDelete": False,
                    }
                )
    return relationships
