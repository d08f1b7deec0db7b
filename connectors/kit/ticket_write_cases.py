"""The writeback suite's cases for the ticketing models, alike on every provider that has tickets: a connector's
sandbox driver names the seeded records to relate to, where its custom fields land and its own ways of saying a
status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.kit.registry import WriteCase


def ticket_write_case(
    related: tuple[str, str],
    custom: tuple[str, Any],
    raw_path: str,
    opened: Mapping[str, Any],
    closed: Mapping[str, Any],
) -> WriteCase:
    """A ticket raised by the seeded (company, contact), opened with `opened` and closed with `closed`: the
    provider's own ways of saying a status (a stage id, or the common enum where it names one value)."""
    company, contact = related
    create = {
        "subject": "Engine will not start",
        "description": "The difference engine stops at column three.",
        "priority": "HIGH",
        "requesterRemoteId": contact,
        "companyRemoteId": company,
        **opened,
    }
    return WriteCase(create, dict([custom]), raw_path.format(custom[0]), dict(closed))


def ticket_comment_write_case(ticket: str, custom: tuple[str, Any], raw_path: str) -> WriteCase:
    """A comment on the seeded `ticket`, then edited into an internal note."""
    create = {"body": "A technician is on the way.", "ticketRemoteId": ticket}
    update = {"body": "A technician is on the way (booked for Thursday).", "isPublic": False}
    return WriteCase(create, dict([custom]), raw_path.format(custom[0]), update)
