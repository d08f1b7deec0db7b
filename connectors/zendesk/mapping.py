"""Zendesk records -> common models. End users are Contacts and agents Users, both from `/users`; a
comment's author is one or the other, so both relations hold its id and the one that exists resolves."""

from __future__ import annotations

from typing import Any

from connectors.kit.errors import BadInput
from connectors.kit.mapping import Computed, Constant, ModelMapping, Path, Source
from connectors.kit.models import COMPANY, CONTACT, TICKET, TICKET_COMMENT, USER

TICKET_STATUSES = {
    "new": "NEW",
    "open": "OPEN",
    "pending": "PENDING",
    "hold": "ON_HOLD",
    "solved": "SOLVED",
    "closed": "CLOSED",
}
TICKET_PRIORITIES = {"low": "LOW", "normal": "NORMAL", "high": "HIGH", "urgent": "URGENT"}
END_USER = "end-user"


def _enum(words: dict[str, str], path: str, name: str) -> Computed:
    remote = {member: word for word, member in words.items()}

    def write(member: Any) -> dict[str, Any]:
        if member is None:
            return {path: None}
        if member not in remote:
            raise BadInput(f"{name} must be one of {', '.join(remote)}", field=name)
        return {path: remote[member]}

    return Computed(lambda raw: words.get(str(raw.get(path))), write=write)


def remote_id(path: str) -> Computed:
    """A relation: Zendesk's numeric id, kept as text like every remote id, and written back as a number."""

    def write(value: Any) -> dict[str, Any]:
        if value is None:
            return {path: None}
        if not str(value).isdigit():
            raise BadInput(f"{value!r} is not a Zendesk id (digits only)")
        return {path: int(value)}

    return Computed(lambda raw: None if raw.get(path) is None else str(raw[path]), write=write)


def _first_name(raw: dict[str, Any]) -> str | None:
    name = str(raw.get("name") or "").strip()
    return name.split(" ", 1)[0] if name else None


def _last_name(raw: dict[str, Any]) -> str | None:
    parts = str(raw.get("name") or "").strip().split(" ", 1)
    return parts[1] if len(parts) == 2 else None


def is_end_user(raw: dict[str, Any]) -> bool:
    return raw.get("role") == END_USER


def is_agent(raw: dict[str, Any]) -> bool:
    return raw.get("role") not in (None, END_USER)


def _first_domain(raw: dict[str, Any]) -> str | None:
    domains = raw.get("domain_names")
    return str(domains[0]) if isinstance(domains, list) and domains else None


PERSON: dict[str, Source] = {
    "email": Path("email"),
    "first_name": Computed(_first_name),
    "last_name": Computed(_last_name),
}

CONTACT_MAPPING = ModelMapping(
    CONTACT,
    {
        **PERSON,
        "phone": Path("phone"),
        "is_lead": Constant(False),
        "company": remote_id("organization_id"),
    },
)

USER_MAPPING = ModelMapping(USER, {**PERSON, "active": Path("active")})

COMPANY_MAPPING = ModelMapping(COMPANY, {"name": Path("name"), "domain": Computed(_first_domain)})

TICKET_MAPPING = ModelMapping(
    TICKET,
    {
        "subject": Path("subject"),
        # The first comment: written through the create's `comment`, never changed after.
        "description": Path("description", writable=False),
        "status": _enum(TICKET_STATUSES, "status", "status"),
        "remote_status": Path("status"),
        "priority": _enum(TICKET_PRIORITIES, "priority", "priority"),
        "remote_priority": Path("priority"),
        "ticket_type": Path("type"),
        "channel": Path("via.channel", writable=False),
        "tags": Path("tags"),
        "due_at": Path("due_at"),
        "requester": remote_id("requester_id"),
        "assignee": remote_id("assignee_id"),
        "company": remote_id("organization_id"),
    },
)

TICKET_COMMENT_MAPPING = ModelMapping(
    TICKET_COMMENT,
    {
        "body": Path("body"),
        "html_body": Path("html_body"),
        "is_public": Path("public"),
        "ticket": remote_id("ticket_id"),
        "author_user": remote_id("author_id"),
        "author_contact": remote_id("author_id"),
    },
)
