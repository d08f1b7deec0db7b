"""Salesforce records -> common models. Polymorphic lookups (WhoId, WhatId, ParentId) are told apart by
the key prefix of the id they hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from connectors.kit.errors import BadInput
from connectors.kit.mapping import Computed, Constant, ModelMapping, MoneyAt, Path, Source, date_only, exact_json_number
from connectors.kit.models import COMPANY, CONTACT, DEAL, NOTE, TASK, TICKET, TICKET_COMMENT, USER
from connectors.salesforce.currencies import ORG

ACCOUNT, CONTACT_ID, LEAD, OPPORTUNITY = "001", "003", "00Q", "006"


def ids_with_prefix(*fields: str, prefixes: tuple[str, ...]) -> Computed:
    def pick(raw: dict[str, Any]) -> list[str]:
        found = [str(raw[f]) for f in fields if isinstance(raw.get(f), str) and raw[f][:3] in prefixes]
        return list(dict.fromkeys(found))

    return Computed(pick)


def _domain(raw: dict[str, Any]) -> str | None:
    website = raw.get("Website")
    if not website:
        return None
    host = urlsplit(website if "://" in website else f"https://{website}").hostname or ""
    return host.removeprefix("www.") or None


OWNER = Path("OwnerId")


def org_money(amount: str) -> MoneyAt:
    """An amount in the record's CurrencyIsoCode (a multi-currency org), else in the org's one currency;
    written as a JSON number (Salesforce's currency fields are doubles), refused when a double cannot hold
    it exactly."""
    return MoneyAt(
        amount, currency="CurrencyIsoCode", currency_table=ORG, currency_writable=True, encode_amount=exact_json_number
    )


PERSON: dict[str, Source] = {
    "first_name": Path("FirstName"),
    "last_name": Path("LastName"),
    "email": Path("Email"),
    "phone": Path("Phone"),
    "job_title": Path("Title"),
    "owner": OWNER,
}

CONTACT_MAPPING = ModelMapping(
    CONTACT, {**PERSON, "is_lead": Constant(False), "lifecycle_stage": Constant(None), "company": Path("AccountId")}
)

LEAD_MAPPING = ModelMapping(
    CONTACT,
    {
        **PERSON,
        "is_lead": Constant(True),
        "lifecycle_stage": Path("Status"),
        "company": Path("ConvertedAccountId", writable=False),
    },
)

COMPANY_MAPPING = ModelMapping(
    COMPANY,
    {
        "name": Path("Name"),
        "domain": Computed(_domain, write=lambda domain: {"Website": domain}),
        "industry": Path("Industry"),
        "phone": Path("Phone"),
        "city": Path("BillingCity"),
        "country": Path("BillingCountry"),
        "employee_count": Path("NumberOfEmployees"),
        "annual_revenue": org_money("AnnualRevenue"),
        "owner": OWNER,
    },
)

DEAL_MAPPING = ModelMapping(
    DEAL,
    {
        "name": Path("Name"),
        "amount": org_money("Amount"),
        # StageName holds the picklist's API value, which is also its label unless an admin relabelled it.
        "stage": Path("StageName"),
        "remote_stage": Path("StageName"),
        "pipeline": Path("ForecastCategoryName"),
        "close_date": Path("CloseDate", encode=date_only),
        "company": Path("AccountId"),
        # The primary contact: Salesforce takes it on create and keeps the rest as contact roles.
        "contacts": ids_with_prefix("ContactId", prefixes=(CONTACT_ID,)),
        "owner": OWNER,
    },
)

USER_MAPPING = ModelMapping(
    USER,
    {
        "email": Path("Email"),
        "first_name": Path("FirstName"),
        "last_name": Path("LastName"),
        "active": Path("IsActive"),
    },
)


def parents(*fields: str) -> dict[str, Source]:
    return {
        "contacts": ids_with_prefix(*fields, prefixes=(CONTACT_ID, LEAD)),
        "companies": ids_with_prefix(*fields, "AccountId", prefixes=(ACCOUNT,)),
        "deals": ids_with_prefix(*fields, prefixes=(OPPORTUNITY,)),
        "owner": OWNER,
    }


TASK_MAPPING = ModelMapping(
    TASK,
    {
        "subject": Path("Subject"),
        "body": Path("Description"),
        "status": Path("Status"),
        "priority": Path("Priority"),
        "task_type": Path("TaskSubtype", writable=False),
        "due_at": Path("ActivityDate", encode=date_only),
        **parents("WhoId", "WhatId"),
    },
)

NOTE_MAPPING = ModelMapping(
    NOTE,
    {"body": Path("Body"), "timestamp": Path("CreatedDate", writable=False), **parents("ParentId")},
)


# Case.Status -> TicketStatus for the values a new org ships; an org's own values read as None (the word stays
# in remote_status). Escalated is still being worked on, so OPEN.
CASE_STATUSES = {"New": "NEW", "Working": "OPEN", "Escalated": "OPEN", "Closed": "CLOSED"}
# What a status written through the common enum becomes; other members have no Case value to say them.
CASE_STATUS_VALUES = {"NEW": "New", "OPEN": "Working", "CLOSED": "Closed"}
# Case.Priority -> TicketPriority: Salesforce's Medium is the common NORMAL; it has no urgent.
CASE_PRIORITIES = {"Low": "LOW", "Medium": "NORMAL", "High": "HIGH"}
_CASE_PRIORITY_VALUES = {common: salesforce for salesforce, common in CASE_PRIORITIES.items()}


def _enum_writer(field: str, member: str, values: dict[str, str]) -> Callable[[Any], dict[str, Any]]:
    def write(value: Any) -> dict[str, Any]:
        if value is None:
            return {field: None}
        chosen = values.get(str(value))
        if chosen is None:
            raise BadInput(
                f"{member} {value!r} has no Salesforce Case value: use one of {', '.join(values)}, or set "
                f"remote{member.capitalize()} to the org's own {field} value",
                field=member,
            )
        return {field: chosen}

    return write


TICKET_MAPPING = ModelMapping(
    TICKET,
    {
        "subject": Path("Subject"),
        "description": Path("Description"),
        "status": Computed(
            lambda raw: CASE_STATUSES.get(str(raw.get("Status"))),
            _enum_writer("Status", "status", CASE_STATUS_VALUES),
        ),
        "remote_status": Path("Status"),
        "priority": Computed(
            lambda raw: CASE_PRIORITIES.get(str(raw.get("Priority"))),
            _enum_writer("Priority", "priority", _CASE_PRIORITY_VALUES),
        ),
        "remote_priority": Path("Priority"),
        "ticket_type": Path("Type"),
        "channel": Path("Origin"),
        # Set by Salesforce when the case closes.
        "solved_at": Path("ClosedDate", writable=False),
        "requester": Path("ContactId"),
        "company": Path("AccountId"),
        "assignee": OWNER,
    },
)

TICKET_COMMENT_MAPPING = ModelMapping(
    TICKET_COMMENT,
    {
        "body": Path("CommentBody"),
        "is_public": Path("IsPublished"),
        "ticket": Path("ParentId"),
        # Whoever wrote it in Salesforce is a user; Salesforce keeps no contact as a comment's author.
        "author_user": Path("CreatedById", writable=False),
    },
)
