"""HubSpot records -> common models. Every CRM object keeps its values in the flat `properties` map."""

from __future__ import annotations

from typing import Any

from connectors.kit.mapping import Computed, Constant, Ids, Label, ModelMapping, Path, Source
from connectors.kit.models import COMPANY, CONTACT, DEAL, NOTE, TASK, USER


def prop(name: str) -> Path:
    return Path(f"properties.{name}")


def associated(object_type: str, *, first: bool = False) -> Ids:
    return Ids(f"associations.{object_type}.results", first=first)


def _active(raw: dict[str, Any]) -> bool:
    return not raw.get("archived", False)


OWNER = prop("hubspot_owner_id")
# The label table of deal stage ids (the deals stream reads it from the pipelines API).
DEAL_STAGES = "deal_stages"

CONTACT_MAPPING = ModelMapping(
    CONTACT,
    {
        "first_name": prop("firstname"),
        "last_name": prop("lastname"),
        "email": prop("email"),
        "phone": prop("phone"),
        "job_title": prop("jobtitle"),
        "lifecycle_stage": prop("lifecyclestage"),
        "is_lead": Constant(False),
        "company": associated("companies", first=True),
        "owner": OWNER,
    },
)

COMPANY_MAPPING = ModelMapping(
    COMPANY,
    {
        "name": prop("name"),
        "domain": prop("domain"),
        "industry": prop("industry"),
        "phone": prop("phone"),
        "city": prop("city"),
        "country": prop("country"),
        "employee_count": prop("numberofemployees"),
        "annual_revenue": prop("annualrevenue"),
        "owner": OWNER,
    },
)

DEAL_MAPPING = ModelMapping(
    DEAL,
    {
        "name": prop("dealname"),
        "amount": prop("amount"),
        # The stage's label from the account's pipelines; its id, as HubSpot stores it, in remote_stage.
        "stage": Label("properties.dealstage", DEAL_STAGES),
        "remote_stage": prop("dealstage"),
        "pipeline": prop("pipeline"),
        "close_date": prop("closedate"),
        "company": associated("companies", first=True),
        "contacts": associated("contacts"),
        "owner": OWNER,
    },
)

USER_MAPPING = ModelMapping(
    USER,
    {
        "email": Path("email"),
        "first_name": Path("firstName"),
        "last_name": Path("lastName"),
        "active": Computed(_active),
    },
)

_PARENTS: dict[str, Source] = {
    "contacts": associated("contacts"),
    "companies": associated("companies"),
    "deals": associated("deals"),
    "owner": OWNER,
}

NOTE_MAPPING = ModelMapping(NOTE, {"body": prop("hs_note_body"), "timestamp": prop("hs_timestamp"), **_PARENTS})

TASK_MAPPING = ModelMapping(
    TASK,
    {
        "subject": prop("hs_task_subject"),
        "body": prop("hs_task_body"),
        "status": prop("hs_task_status"),
        "priority": prop("hs_task_priority"),
        "task_type": prop("hs_task_type"),
        "due_at": prop("hs_timestamp"),
        **_PARENTS,
    },
)
