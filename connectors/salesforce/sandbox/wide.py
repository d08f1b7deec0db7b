"""A wide Contact, as long-lived orgs have one: the standard Contact plus both standard addresses
(MailingAddress, OtherAddress: compound `address` fields with their components) and hundreds of
custom fields, some from managed packages (`namespace__Name__c`), until the object has the asked
number of fields. `SalesforceSize(contact_fields=500)` seeds one; the standard Contact stays narrow.

New fields are appended after the standard ones, so every standard field keeps its row position and
code that reads a Contact row by position serves both shapes. Names and types are deterministic.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Any

from connectors.kit.sandbox_support import DAY_MS, ms_of
from connectors.salesforce.sandbox.schema import CONTACT, FieldDef, FieldType, SObjectType
from connectors.salesforce.sandbox.timestamps import format_date, format_datetime

GEOCODE_ACCURACIES = ("Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip", "City", "State", "Unknown")
# (component suffix, key in the compound value, type, length, precision, scale)
ADDRESS_PARTS: tuple[tuple[str, str, FieldType, int, int, int], ...] = (
    ("Street", "street", FieldType.TEXTAREA, 255, 0, 0),
    ("City", "city", FieldType.STRING, 40, 0, 0),
    ("State", "state", FieldType.STRING, 80, 0, 0),
    ("PostalCode", "postalCode", FieldType.STRING, 20, 0, 0),
    ("Country", "country", FieldType.STRING, 80, 0, 0),
    ("Latitude", "latitude", FieldType.DOUBLE, 0, 18, 15),
    ("Longitude", "longitude", FieldType.DOUBLE, 0, 18, 15),
    ("GeocodeAccuracy", "geocodeAccuracy", FieldType.PICKLIST, 40, 0, 0),
)

_LABELS = {"PostalCode": "Zip/Postal Code", "GeocodeAccuracy": "Geocode Accuracy"}
_AREAS = (
    "Billing",
    "Marketing",
    "Support",
    "Renewal",
    "Partner",
    "Onboarding",
    "Compliance",
    "Event",
    "Survey",
    "Product_Interest",
    "Territory",
    "Segment",
    "Lifecycle",
    "Customer_Health",
    "Contract",
    "Referral",
    "Webinar",
    "Newsletter",
    "Security_Review",
    "Executive_Sponsor",
)
# (attribute, type): the type follows the name, as an admin would choose it.
_ATTRIBUTES: tuple[tuple[str, FieldType], ...] = (
    ("Status", FieldType.PICKLIST),
    ("Score", FieldType.DOUBLE),
    ("Last_Activity_Date_Time_Zone_Adjusted", FieldType.DATE),
    ("Owner_Email", FieldType.EMAIL),
    ("Notes", FieldType.TEXTAREA),
    ("Tier", FieldType.PICKLIST),
    ("Original_Source_Detail", FieldType.STRING),
    ("Opt_In", FieldType.BOOLEAN),
    ("Amount", FieldType.CURRENCY),
    ("Completion_Rate", FieldType.PERCENT),
    ("Last_Synced_With_ERP_At", FieldType.DATETIME),
    ("Hotline_Phone", FieldType.PHONE),
    ("Portal_URL", FieldType.URL),
    ("Reference_Code", FieldType.STRING),
    ("Touch_Count", FieldType.DOUBLE),
    ("Preferred_Communication_Channel", FieldType.PICKLIST),
    ("Renewal_Date", FieldType.DATE),
    ("Comment", FieldType.TEXTAREA),
    ("Verified", FieldType.BOOLEAN),
    ("External_Key", FieldType.STRING),
    ("Region_Override", FieldType.PICKLIST),
    ("Budget", FieldType.CURRENCY),
    ("Health_Index", FieldType.PERCENT),
)
# Installed packages prefix their fields with a namespace, which makes names long.
_NAMESPACES = ("", "", "mkto_si__", "et4ae5__", "FinServ__", "LID__", "pi__", "dsfs__")
_PICKLIST_VALUES = ("Not Started", "In Progress", "Needs Review", "Approved", "Declined", "On Hold")
_WORDS = ("alpha", "north", "priority", "legacy", "pilot", "west", "enterprise", "mid-market", "smb", "emea")
_STREETS = ("Market Street", "Main Street", "Harbor Way", "King's Road", "Rue de Rivoli", "Hauptstraße")
_STATES = ("CA", "NY", "TX", "WA", "MA", "Ontario", "Bavaria", "Île-de-France")


def _component(compound: str, part: tuple[str, str, FieldType, int, int, int], label_prefix: str) -> FieldDef:
    suffix, _, kind, length, precision, scale = part
    prefix = compound.removesuffix("Address")
    label = f"{label_prefix} {_LABELS.get(suffix, suffix)}"
    picklist = GEOCODE_ACCURACIES if kind is FieldType.PICKLIST else ()
    return FieldDef(
        f"{prefix}{suffix}",
        label,
        kind,
        length,
        precision=precision,
        scale=scale,
        picklist=picklist,
        restricted=bool(picklist),
        compound_of=compound,
    )


def _address_fields(present: set[str]) -> list[FieldDef]:
    """The components of both standard addresses that the narrow Contact lacks, then the compound fields."""
    fields: list[FieldDef] = []
    for compound, label_prefix in (("MailingAddress", "Mailing"), ("OtherAddress", "Other")):
        for part in ADDRESS_PARTS:
            definition = _component(compound, part, label_prefix)
            if definition.name.lower() not in present:
                fields.append(definition)
        fields.append(
            FieldDef(compound, f"{label_prefix} Address", FieldType.ADDRESS, createable=False, updateable=False)
        )
    return fields


def _custom_fields(count: int) -> list[FieldDef]:
    fields: list[FieldDef] = []
    for index in range(count):
        area = _AREAS[index % len(_AREAS)]
        attribute, kind = _ATTRIBUTES[(index // len(_AREAS)) % len(_ATTRIBUTES)]
        namespace = _NAMESPACES[index % len(_NAMESPACES)]
        round_number = index // (len(_AREAS) * len(_ATTRIBUTES))
        suffix = f"_{round_number + 1}" if round_number else ""
        # An API name is at most 40 characters before its namespace and `__c`.
        base = f"{area}_{attribute}"[: 40 - len(suffix)].rstrip("_") + suffix
        name = f"{namespace}{base}__c"
        label = f"{area} {attribute}{suffix}".replace("_", " ")
        options: dict[str, Any] = {}
        length = 0
        if kind is FieldType.PICKLIST:
            options = {"picklist": _PICKLIST_VALUES}
            length = 255
        elif kind is FieldType.TEXTAREA:
            length = 32_768 if index % 2 else 255  # long and plain text areas
        elif kind in (FieldType.STRING, FieldType.URL):
            length = 255
        elif kind is FieldType.EMAIL:
            length = 80
        elif kind is FieldType.PHONE:
            length = 40
        elif kind in (FieldType.DOUBLE, FieldType.CURRENCY, FieldType.PERCENT):
            options = {"precision": 18, "scale": 2}
        if kind is FieldType.BOOLEAN:
            options["default"] = False
        fields.append(FieldDef(name, label, kind, length, **options))
    return fields


@functools.cache
def wide_contact(total_fields: int) -> SObjectType:
    """Contact with `total_fields` fields in all (at least the standard ones and both addresses)."""
    standard = [
        dataclasses.replace(f, compound_of="MailingAddress") if f.name in ("MailingCity", "MailingCountry") else f
        for f in CONTACT.fields
    ]
    addresses = _address_fields({f.name.lower() for f in standard})
    custom = _custom_fields(max(0, total_fields - len(standard) - len(addresses)))
    return SObjectType(
        CONTACT.name, CONTACT.label, CONTACT.label_plural, CONTACT.key_prefix, (*standard, *addresses, *custom)
    )


def wide_values(rng: random.Random, sobject: SObjectType, row: list[Any]) -> None:
    """Fill a seeded wide Contact's extra fields, about half of them, from `rng` (a stream of its own,
    so the standard fields get the same values as in a narrow org)."""
    city = row[sobject.position("MailingCity")]
    has_other_address = rng.random() < 0.2
    for definition in sobject.fields[len(CONTACT.fields) :]:
        position = sobject.position(definition.name)
        if definition.type is FieldType.ADDRESS:
            continue
        if definition.compound_of == "MailingAddress":
            row[position] = _address_part(rng, definition) if city else None
        elif definition.compound_of == "OtherAddress":
            row[position] = _address_part(rng, definition) if has_other_address else None
        elif definition.type is FieldType.BOOLEAN:
            row[position] = rng.random() < 0.3
        elif rng.random() < 0.5:
            row[position] = _custom_value(rng, definition)


def _address_part(rng: random.Random, definition: FieldDef) -> Any:
    suffix = definition.name.removeprefix("Mailing").removeprefix("Other")
    if suffix == "Street":
        return f"{rng.randrange(1, 2000)} {rng.choice(_STREETS)}"
    if suffix == "City":
        return rng.choice(("Springfield", "Leeds", "Lyon", "Osaka", "Toronto"))
    if suffix == "State":
        return rng.choice(_STATES)
    if suffix == "PostalCode":
        return f"{rng.randrange(10000, 99999)}"
    if suffix == "Country":
        return rng.choice(("United States", "Canada", "Germany", "France", "Japan"))
    if suffix in ("Latitude", "Longitude"):
        return round(rng.uniform(-80, 80), 6)
    return rng.choice(GEOCODE_ACCURACIES)


def _custom_value(rng: random.Random, definition: FieldDef) -> Any:
    kind = definition.type
    if kind is FieldType.PICKLIST:
        return rng.choice(definition.picklist)
    if kind in (FieldType.DOUBLE, FieldType.CURRENCY, FieldType.PERCENT):
        return float(rng.randrange(0, 100_000)) / 100
    if kind is FieldType.DATE:
        return format_date(ms_of(2020, 1, 1) + rng.randrange(0, 2000) * DAY_MS)
    if kind is FieldType.DATETIME:
        return format_datetime(ms_of(2024, 1, 1) + rng.randrange(0, 700 * 86_400) * 1000)
    if kind is FieldType.EMAIL:
        return f"{rng.choice(_WORDS)}.{rng.randrange(1000)}@example.com"
    if kind is FieldType.PHONE:
        return f"(555) 010-{rng.randrange(10_000):04d}"
    if kind is FieldType.URL:
        return f"https://portal.example.com/{rng.choice(_WORDS)}/{rng.randrange(10_000)}"
    if kind is FieldType.TEXTAREA:
        return f"Follow-up: {rng.choice(_WORDS)} account, {rng.choice(_WORDS)} segment."
    return f"{rng.choice(_WORDS).upper()}-{rng.randrange(100_000):05d}"
