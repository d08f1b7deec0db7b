"""The Salesforce sandbox as the kit drives it: in `xkit dev`, the conformance suite and the writeback suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connectors.kit.oauth import OAuthApp
from connectors.kit.registry import DriverBase, Endpoints, SandboxEntry, WriteCase, in_proportion
from connectors.kit.ticket_write_cases import ticket_comment_write_case, ticket_write_case
from connectors.kit.write_cases import crm_write_cases
from connectors.salesforce.connector import SALESFORCE
from connectors.salesforce.sandbox.app import serve_sandbox
from connectors.salesforce.sandbox.data import SalesforceSize
from connectors.salesforce.sandbox.sandbox import SalesforceSandbox

SEED = 42
# The writeback suite's and `xkit dev`'s org keeps amounts in several currencies (the conformance suite's, as a
# new org does, in one).
CURRENCIES = ("USD", "EUR", "GBP", "JPY")
# The connector's stream -> its sObject.
SOBJECTS = {
    "contacts": "Contact",
    "leads": "Lead",
    "accounts": "Account",
    "opportunities": "Opportunity",
    "users": "User",
    "tasks": "Task",
    "notes": "Note",
    "cases": "Case",
    "case_comments": "CaseComment",
}
# Common model -> the stream its writes land in.
WRITE_STREAMS = {
    "Contact": "contacts",
    "Company": "accounts",
    "Deal": "opportunities",
    "Note": "notes",
    "Task": "tasks",
    "Ticket": "cases",
    "TicketComment": "case_comments",
}

# A custom field per model that the sandbox's org defines (or one outside the common model), and a value.
CUSTOM_FIELDS = {
    "Contact": ("Loyalty_Tier__c", "Gold"),
    "Company": ("Region__c", "EMEA"),
    "Deal": ("Deal_Source__c", "Partner"),
    "Note": ("IsPrivate", True),
    "Task": ("Effort_Hours__c", 1.5),
    "Ticket": ("SLA_Tier__c", "Premium"),
    # CaseComment has no custom fields; its publication flag is outside what the create below sets.
    "TicketComment": ("IsPublished", True),
}


class SalesforceDriver(DriverBase[SalesforceSandbox]):
    """Salesforce throttles with 403 REQUEST_LIMIT_EXCEEDED, serves a login host and the org's instance, and
    answers queries 2000 records a batch; Loyalty_Tier__c is a custom Contact field the sandbox's org has."""

    provider, throttle_knob, ports = "salesforce", "rate_403", 2
    main_stream, page_size, custom_field_path = "contacts", 2000, "Loyalty_Tier__c"
    write_streams = WRITE_STREAMS

    @contextmanager
    def serve(self, port: int | None = None) -> Iterator[Endpoints]:
        ports = (port, port + 1) if port else (0, 0)
        with serve_sandbox(self.sandbox, login_port=ports[0], instance_port=ports[1]) as (login_url, instance_url):
            app = OAuthApp(
                self.sandbox.client_id,
                self.sandbox.client_secret,
                authorize_url=f"{login_url}/services/oauth2/authorize",
            )
            # No base URL: the token response names the org's instance.
            yield Endpoints(app, None, (login_url, instance_url))

    def expected_ids(self, stream: str) -> set[str]:
        return self.sandbox.all_ids(SOBJECTS[stream])

    def create(self) -> str:
        n = self.serial()
        return self.sandbox.create("Contact", {"LastName": f"Conformance {n}", "Email": f"c{n}@example.org"})

    def update(self, remote_id: str) -> None:
        self.sandbox.update("Contact", remote_id, {"Title": "Changed"})

    def delete(self, remote_id: str) -> None:
        self.sandbox.delete("Contact", remote_id)

    # ---- writeback ---------------------------------------------------------------------------

    def _sobject(self, model: str) -> str:
        return SOBJECTS[WRITE_STREAMS[model]]

    def ids(self, model: str, *, deleted: bool = False) -> set[str]:
        return self.sandbox.all_ids(self._sobject(model), deleted=deleted)

    def get(self, model: str, remote_id: str) -> dict[str, Any]:
        return self.sandbox.get(self._sobject(model), remote_id)

    def change(self, model: str, remote_id: str) -> None:
        fields = {
            "Contact": {"Title": "Changed in Salesforce"},
            "Company": {"BillingCity": "Changed"},
            "TicketComment": {"CommentBody": "Changed in Salesforce"},
        }
        self.sandbox.update(self._sobject(model), remote_id, fields.get(model, {"Description": "Changed"}))

    def cases(self) -> dict[str, WriteCase]:
        # ActivityDate is a date: a due time comes back as midnight.
        stored = {"task_priority": "High", "task_due_at": "2027-01-10T00:00:00+00:00"}
        related = (min(self.ids("Company")), min(self.ids("Contact")), min(self.ids("Deal")))
        words = {"deal_stage": "Prospecting", "task_open": "Not Started", "task_done": "Completed"}
        cases = crm_write_cases(related, CUSTOM_FIELDS, "{}", **words, **stored)
        company, contact, _ = related
        opened, closed = {"status": "NEW", "channel": "Web"}, {"status": "CLOSED", "priority": "LOW"}
        cases["Ticket"] = ticket_write_case((company, contact), CUSTOM_FIELDS["Ticket"], "{}", opened, closed)
        ticket = min(self.ids("Ticket"))
        cases["TicketComment"] = ticket_comment_write_case(ticket, CUSTOM_FIELDS["TicketComment"], "{}")
        return cases


def dev_driver(contacts: int) -> SalesforceDriver:
    proportions = {"leads": 4, "accounts": 8, "opportunities": 4, "tasks": 3, "notes": 4}
    proportions |= {"cases": 4, "case_comments": 2}
    others = in_proportion(contacts, proportions)
    size = SalesforceSize(contacts=contacts, users=8, currencies=CURRENCIES, **others)
    return SalesforceDriver(SalesforceSandbox(seed=SEED, size=size))


def conformance_driver() -> SalesforceDriver:
    # Contact as wide as a long-lived org's: 500 fields, whose SELECT does not fit in a URL.
    size = SalesforceSize(
        contacts=250, leads=60, accounts=50, opportunities=70, users=6, tasks=80, notes=50, contact_fields=500
    )
    return SalesforceDriver(SalesforceSandbox(seed=9, size=size))


def writeback_driver() -> SalesforceDriver:
    size = SalesforceSize(
        contacts=30,
        leads=5,
        accounts=6,
        opportunities=6,
        users=2,
        tasks=6,
        notes=6,
        cases=6,
        case_comments=8,
        currencies=CURRENCIES,
    )
    org = SalesforceSandbox(seed=11, size=size)
    org.faults.daily_limit_enabled = False
    return SalesforceDriver(org)


SANDBOX = SandboxEntry(SALESFORCE, dev=dev_driver, conformance=conformance_driver, writeback=writeback_driver)
