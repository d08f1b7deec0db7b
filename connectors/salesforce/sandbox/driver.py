"""The Salesforce sandbox as the kit drives it: in `xkit dev`, the conformance suite and the writeback suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from connectors.kit.oauth import OAuthApp
from connectors.kit.registry import DriverBase, Endpoints, SandboxEntry, WriteCase
from connectors.kit.write_cases import crm_write_cases
from connectors.salesforce.connector import SALESFORCE
from connectors.salesforce.sandbox.app import serve_sandbox
from connectors.salesforce.sandbox.data import SalesforceSize
from connectors.salesforce.sandbox.sandbox import SalesforceSandbox

SEED = 42
# The connector's stream -> its sObject.
SOBJECTS = {
    "contacts": "Contact",
    "leads": "Lead",
    "accounts": "Account",
    "opportunities": "Opportunity",
    "users": "User",
    "tasks": "Task",
    "notes": "Note",
}
# Common model -> the stream its writes land in.
WRITE_STREAMS = {
    "Contact": "contacts",
    "Company": "accounts",
    "Deal": "opportunities",
    "Note": "notes",
    "Task": "tasks",
}

# A custom field per model that the sandbox's org defines (or one outside the common model), and a value.
CUSTOM_FIELDS = {
    "Contact": ("Loyalty_Tier__c", "Gold"),
    "Company": ("Region__c", "EMEA"),
    "Deal": ("Deal_Source__c", "Partner"),
    "Note": ("IsPrivate", True),
    "Task": ("Effort_Hours__c", 1.5),
}


@dataclass
class SalesforceDriver(DriverBase[SalesforceSandbox]):
    sandbox: SalesforceSandbox
    provider: str = "salesforce"
    main_stream: str = "contacts"
    page_size: int = 2000
    custom_field_path: str = "Loyalty_Tier__c"
    search_lag_seconds: float = 0.0
    ports: int = 2  # the login host and the org's instance
    throttle_knob: str = "rate_403"
    write_streams: dict[str, str] = field(default_factory=lambda: dict(WRITE_STREAMS))
    _serial: count[int] = field(default_factory=count)

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
        n = next(self._serial)
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
        fields = {"Contact": {"Title": "Changed in Salesforce"}, "Company": {"BillingCity": "Changed"}}
        self.sandbox.update(self._sobject(model), remote_id, fields.get(model, {"Description": "Changed"}))

    def cases(self) -> dict[str, WriteCase]:
        related = tuple(min(self.ids(model)) for model in ("Company", "Contact", "Deal"))
        return crm_write_cases(
            (related[0], related[1], related[2]),
            CUSTOM_FIELDS,
            "{}",
            deal_stage="Prospecting",
            task_open="Not Started",
            task_done="Completed",
            task_priority="High",
            # ActivityDate is a date: a due time comes back as midnight.
            task_due_at="2027-01-10T00:00:00+00:00",
        )


def dev_driver(contacts: int) -> SalesforceDriver:
    size = SalesforceSize(
        contacts=contacts,
        leads=max(10, contacts // 4),
        accounts=max(10, contacts // 8),
        opportunities=max(10, contacts // 4),
        users=8,
        tasks=max(10, contacts // 3),
        notes=max(10, contacts // 4),
    )
    return SalesforceDriver(SalesforceSandbox(seed=SEED, size=size))


def conformance_driver() -> SalesforceDriver:
    # Contact as wide as a long-lived org's: 500 fields, whose SELECT does not fit in a URL.
    size = SalesforceSize(
        contacts=250, leads=60, accounts=50, opportunities=70, users=6, tasks=80, notes=50, contact_fields=500
    )
    return SalesforceDriver(SalesforceSandbox(seed=9, size=size))


def writeback_driver() -> SalesforceDriver:
    size = SalesforceSize(contacts=30, leads=5, accounts=6, opportunities=6, users=2, tasks=6, notes=6)
    org = SalesforceSandbox(seed=11, size=size)
    org.faults.daily_limit_enabled = False
    return SalesforceDriver(org)


SANDBOX = SandboxEntry(SALESFORCE, dev=dev_driver, conformance=conformance_driver, writeback=writeback_driver)
