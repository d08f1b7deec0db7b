"""What a HubSpot object's records hold, from the account's property definitions
(`GET /crm/v3/properties/{objectType}`): every property lands in a record's raw payload under
`properties.<name>`, as text whatever its type (HubSpot sends numbers, booleans and dates as strings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.kit.declaration import StreamContext
from connectors.kit.field_catalog import AvailableField
from connectors.kit.field_mappings import Kind

# HubSpot's property types as the kinds a mapping reads. A multi-select (`enumeration` shown as checkboxes)
# holds its values in one string joined by ';', so it is text a `split(";")` turns into a list.
_KINDS: dict[str, Kind] = {
    "string": "text",
    "phone_number": "text",
    "enumeration": "text",
    "number": "number",
    "bool": "boolean",
    "date": "datetime",
    "datetime": "datetime",
}


@dataclass(frozen=True)
class PropertyCatalog:
    object_type: str

    async def fields(self, ctx: StreamContext) -> list[AvailableField]:
        body = await ctx.session.get_json(f"/crm/v3/properties/{self.object_type}")
        return [_field(p) for p in body.get("results", []) if isinstance(p, dict) and not p.get("archived")]


def _field(prop: dict[str, Any]) -> AvailableField:
    metadata = prop.get("modificationMetadata") or {}
    read_only = bool(metadata.get("readOnlyValue") or prop.get("readOnlyValue") or prop.get("calculated"))
    options = [o.get("value") for o in prop.get("options") or () if isinstance(o, dict) and not o.get("hidden")]
    return AvailableField(
        path=f"properties.{prop.get('name', '')}",
        label=str(prop.get("label") or prop.get("name") or ""),
        kind=_KINDS.get(str(prop.get("type")), "any"),
        # Owner ids are listed as options too (`externalOptions`), but they are a changing list, not a choice.
        options=() if prop.get("externalOptions") else tuple(str(o) for o in options if o is not None),
        is_custom=not prop.get("hubspotDefined", False),
        writable=not read_only,
    )


# The common models read from CRM objects, each from its object's properties (owners have no properties).
PROPERTY_CATALOGS = {
    model: PropertyCatalog(object_type)
    for model, object_type in (
        ("Contact", "contacts"),
        ("Company", "companies"),
        ("Deal", "deals"),
        ("Note", "notes"),
        ("Task", "tasks"),
        ("Ticket", "tickets"),
    )
}
