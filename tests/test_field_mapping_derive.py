"""Field mappings applied where records are read (`StreamContext.to_record`), stored with the cache, and
re-derived from the cached payloads when a connection's mappings change."""

from __future__ import annotations

from typing import Any

from connectors.hubspot.connector import HUBSPOT
from connectors.kit.declaration import StreamContext
from connectors.kit.field_mappings import (
    CustomFieldType,
    FieldOverlay,
    FieldSource,
    ModelOverlay,
    Transform,
)

CONTACTS = HUBSPOT.stream("contacts")
DEALS = HUBSPOT.stream("deals")


def contact(**properties: Any) -> dict[str, Any]:
    return {"id": "101", "properties": {"firstname": "Ada", "phone": "+1 555 0100", **properties}}


def overlay(model: str = "Contact", **kwargs: Any) -> FieldOverlay:
    return FieldOverlay({model: ModelOverlay(**kwargs)}, revision=3)


def context(stream: Any = CONTACTS, mappings: FieldOverlay | None = None, **labels: dict[str, str]) -> StreamContext:
    return StreamContext(session=None, stream=stream, labels=dict(labels), overlay=mappings)  # type: ignore[arg-type]


def test_without_an_overlay_a_record_maps_as_the_connector_declares() -> None:
    record = context().to_record(contact(tier="Gold"))
    assert record.common is not None and record.common["phone"] == "+1 555 0100"
    assert record.custom is None


def test_custom_values_are_derived_typed_and_undefined_mapped_keys_read_null() -> None:
    mappings = overlay(
        custom={
            "tier": (CustomFieldType.STRING, FieldSource("properties.tier", (Transform("lowercase"),))),
            "seats": (CustomFieldType.INT, FieldSource("properties.seats")),
            "tags": (CustomFieldType.STRING_LIST, FieldSource("properties.tags", (Transform("split", ";"),))),
        },
        defined=("tier", "seats", "tags", "renewal"),
    )
    record = context(mappings=mappings).to_record(contact(tier="Gold", seats="12", tags="a; b"))
    assert record.custom == {"tier": "gold", "seats": 12, "tags": ["a", "b"], "renewal": None}


def test_an_overridden_builtin_member_replaces_the_connectors_value() -> None:
    mappings = overlay(builtin={"phone": FieldSource("properties.mobilephone")})
    record = context(mappings=mappings).to_record(contact(mobilephone="+44 7700 900123"))
    assert record.common is not None and record.common["phone"] == "+44 7700 900123"
    assert record.common["first_name"] == "Ada"  # the rest as declared
    assert record.custom is None  # no custom field defined on Contact


def test_an_overlay_of_another_model_leaves_the_record_alone() -> None:
    record = context(mappings=overlay("Ticket", defined=("tier",))).to_record(contact())
    assert record.custom is None


def test_money_fields_take_the_accounts_currency_from_its_account_table() -> None:
    mappings = overlay(
        "Deal",
        custom={"budget": (CustomFieldType.MONEY, FieldSource("properties.budget"))},
        defined=("budget",),
    )
    raw = {"id": "7", "properties": {"dealname": "Big", "budget": "1200.5"}}
    record = context(DEALS, mappings, account={"currency": "EUR"}).to_record(raw)
    assert record.custom == {"budget": {"amount": "1200.5", "currency": "EUR"}}
    # Never a guessed currency: without the account's, the amount reads as null.
    assert context(DEALS, mappings).to_record(raw).custom == {"budget": None}


def test_tombstones_carry_no_derived_values() -> None:
    mappings = overlay(custom={"tier": (CustomFieldType.STRING, FieldSource("properties.tier"))}, defined=("tier",))
    record = context(mappings=mappings).to_record(contact(tier="Gold"), deleted=True)
    assert record.custom is None
