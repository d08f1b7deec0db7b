"""HubSpot records -> common models. Every CRM object keeps its values in the flat `properties` map."""

from __future__ import annotations

from typing import Any

from connectors.hubspot.account import ACCOUNT
from connectors.kit.errors import BadInput
from connectors.kit.jsonpath import dig
from connectors.kit.mapping import Computed, Constant, Ids, Label, ModelMapping, MoneyAt, Path, Source
from connectors.kit.models import COMPANY, CONTACT, DEAL, NOTE, TASK, TICKET, USER


def prop(name: str) -> Path:
    return Path(f"properties.{name}")


def associated(object_type: str, *, first: bool = False) -> Ids:
    return Ids(f"associations.{object_type}.results", first=first)


def _active(raw: dict[str, Any]) -> bool:
    return not raw.get("archived", False)


OWNER = prop("hubspot_owner_id")
# The label table of deal stage ids (the deals stream reads it from the pipelines API).
DEAL_STAGES = "deal_stages"
# Ticket stage id -> TicketStatus, read from the ticket pipelines (connectors/hubspot/pipelines.py says the rule).
TICKET_STATUSES = "ticket_statuses"
# hs_ticket_priority -> TicketPriority: HubSpot's MEDIUM is the common NORMAL.
TICKET_PRIORITIES = {"LOW": "LOW", "MEDIUM": "NORMAL", "HIGH": "HIGH", "URGENT": "URGENT"}
_PRIORITY_VALUES = {common: hubspot for hubspot, common in TICKET_PRIORITIES.items()}

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
        # HubSpot keeps a company's amounts in the account's currency.
        "annual_revenue": MoneyAt("properties.annualrevenue", currency_table=ACCOUNT),
        "owner": OWNER,
    },
)

DEAL_MAPPING = ModelMapping(
    DEAL,
    {
        "name": prop("dealname"),
        "amount": MoneyAt(
            "properties.amount",
            currency="properties.deal_currency_code",
            currency_table=ACCOUNT,
            currency_writable=True,
        ),
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


def _ticket_priority(raw: dict[str, Any]) -> str | None:
    return TICKET_PRIORITIES.get(str(dig(raw, "properties.hs_ticket_priority")))


def _write_ticket_priority(priority: Any) -> dict[str, Any]:
    if priority is None:
        return {"properties.hs_ticket_priority": None}
    value = _PRIORITY_VALUES.get(str(priority))
    if value is None:
        allowed = ", ".join(_PRIORITY_VALUES)
        raise BadInput(f"priority {priority!r} is not one of {allowed}", field="priority")
    return {"properties.hs_ticket_priority": value}


TICKET_MAPPING = ModelMapping(
    TICKET,
    {
        "subject": prop("subject"),
        "description": prop("content"),
        # The status its stage stands for; the stage id itself, as HubSpot stores it, in remote_status
        # (as a deal's stage label and remote_stage). Written by status when one stage has it, else by id.
        "status": Label("properties.hs_pipeline_stage", TICKET_STATUSES),
        "remote_status": prop("hs_pipeline_stage"),
        "priority": Computed(_ticket_priority, write=_write_ticket_priority),
        "remote_priority": prop("hs_ticket_priority"),
        "ticket_type": prop("hs_ticket_category"),
        "channel": prop("source_type"),
        # HubSpot sets closed_date when a ticket enters a closed stage.
        "solved_at": prop("closed_date"),
        "requester": associated("contacts", first=True),
        "company": associated("companies", first=True),
        "assignee": OWNER,
    },
)
