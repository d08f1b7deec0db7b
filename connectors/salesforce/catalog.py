"""What a Salesforce object's records hold, from its describe (`GET /sobjects/{SObject}/describe`): each field
is a top-level key of a record as SOQL returns it (`customer_tier__c`), custom ones ending in `__c`.

A model read from two objects (Contact from Contact and Lead) lists the fields of the first, its primary one:
a mapping reads the same path on both, and a lead without that field reads null."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.kit.declaration import StreamContext
from connectors.kit.field_catalog import AvailableField
from connectors.kit.field_mappings import Kind
from connectors.salesforce.query import API, UNSELECTABLE

# Salesforce's field types as the kinds a mapping reads. A multi-select picklist holds its values joined by
# ';' in one string (text a `split(";")` turns into a list); compound fields (address, location) are objects.
_KINDS: dict[str, Kind] = {
    "string": "text",
    "textarea": "text",
    "email": "text",
    "phone": "text",
    "url": "text",
    "picklist": "text",
    "multipicklist": "text",
    "combobox": "text",
    "id": "text",
    "reference": "text",
    "encryptedstring": "text",
    "time": "text",
    "double": "number",
    "currency": "number",
    "percent": "number",
    "int": "number",
    "long": "number",
    "boolean": "boolean",
    "date": "datetime",
    "datetime": "datetime",
}


@dataclass(frozen=True)
class DescribeCatalog:
    sobject: str

    async def fields(self, ctx: StreamContext) -> list[AvailableField]:
        body = await ctx.session.get_json(f"{API}/sobjects/{self.sobject}/describe")
        return [_field(f) for f in body.get("fields", []) if isinstance(f, dict) and f.get("type") not in UNSELECTABLE]


def _field(described: dict[str, Any]) -> AvailableField:
    picklist = described.get("picklistValues") or ()
    return AvailableField(
        path=str(described.get("name") or ""),
        label=str(described.get("label") or described.get("name") or ""),
        kind=_KINDS.get(str(described.get("type")), "any"),
        options=tuple(
            str(p["value"]) for p in picklist if isinstance(p, dict) and p.get("active") and p.get("value") is not None
        ),
        is_custom=bool(described.get("custom")),
        writable=bool(described.get("updateable") or described.get("createable")),
    )


# Each common model from its primary object (see above).
DESCRIBE_CATALOGS = {
    model: DescribeCatalog(sobject)
    for model, sobject in (
        ("Contact", "Contact"),
        ("Company", "Account"),
        ("Deal", "Opportunity"),
        ("User", "User"),
        ("Task", "Task"),
        ("Note", "Note"),
        ("Ticket", "Case"),
        ("TicketComment", "CaseComment"),
    )
}
