"""The HubSpot sandbox as the kit drives it: in `xkit dev`, the conformance suite and the writeback suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connectors.hubspot.connector import HUBSPOT
from connectors.hubspot.sandbox.app import create_app
from connectors.hubspot.sandbox.data import SandboxSize
from connectors.hubspot.sandbox.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox.schema import WIDE_CONTACT_PROPERTIES
from connectors.kit.oauth import OAuthApp
from connectors.kit.registry import DriverBase, Endpoints, SandboxEntry, WriteCase, in_proportion
from connectors.kit.sandbox import serve_in_thread
from connectors.kit.ticket_write_cases import ticket_write_case
from connectors.kit.write_cases import crm_write_cases

# Real search lags writes by seconds up to a minute; short enough here to keep the suite fast, long enough
# that a run right after a write does not see it.
SEARCH_LAG_SECONDS = 1.5
SEED = 42
# Common model -> CRM object type, which is also the connector's stream.
OBJECTS = {
    "Contact": "contacts",
    "Company": "companies",
    "Deal": "deals",
    "Note": "notes",
    "Task": "tasks",
    "Ticket": "tickets",
}

# A custom property per model that the sandbox seeds, and a value for it.
CUSTOM_PROPERTIES = {
    "Contact": ("favorite_color", "blue"),
    "Company": ("account_tier", "tier_1"),
    "Deal": ("deal_source", "partner"),
    "Note": ("note_sentiment", "positive"),
    "Task": ("task_source", "manual"),
    "Ticket": ("support_tier", "premium"),
}


class HubSpotDriver(DriverBase[HubSpotSandbox]):
    provider, throttle_knob = "hubspot", "rate_429"
    # A list page holds 100; favorite_color is a custom contact property the sandbox seeds.
    main_stream, page_size, custom_field_path = "contacts", 100, "properties.favorite_color"
    write_streams = OBJECTS

    @contextmanager
    def serve(self, port: int | None = None) -> Iterator[Endpoints]:
        with serve_in_thread(create_app(self.sandbox), port=port or 0) as url:
            app = OAuthApp(self.sandbox.client_id, self.sandbox.client_secret, f"{url}/oauth/authorize", url)
            yield Endpoints(app, url, (url,))

    def expected_ids(self, stream: str) -> set[str]:
        if stream == "owners":
            return {owner.id for owner in self.sandbox.crm.owners}
        return self.sandbox.all_ids(stream)

    def create(self) -> str:
        n = self.serial()
        record = self.sandbox.create("contacts", {"email": f"conformance.{n}@example.org", "firstname": "Con"})
        return str(record["id"])

    def update(self, remote_id: str) -> None:
        self.sandbox.update("contacts", remote_id, {"lastname": "Changed"})

    def delete(self, remote_id: str) -> None:
        self.sandbox.archive("contacts", remote_id)

    def push_changes_to(self, gateway_url: str) -> None:
        """Signed webhooks, as HubSpot sends them: edits in the sandbox show up in the gateway at once."""
        self.sandbox.configure_webhooks(f"{gateway_url}/webhooks/hubspot")

    # ---- writeback ---------------------------------------------------------------------------

    def ids(self, model: str, *, deleted: bool = False) -> set[str]:
        return self.sandbox.all_ids(OBJECTS[model], archived=deleted)

    def get(self, model: str, remote_id: str) -> dict[str, Any]:
        return self.sandbox.get(OBJECTS[model], remote_id)

    def change(self, model: str, remote_id: str) -> None:
        properties = {"Contact": {"jobtitle": "Changed in HubSpot"}, "Company": {"city": "Changed"}}
        self.sandbox.update(OBJECTS[model], remote_id, properties.get(model, {"hubspot_owner_id": ""}))

    def cases(self) -> dict[str, WriteCase]:
        company, contact, deal = (min(self.ids(model), key=int) for model in ("Company", "Contact", "Deal"))
        related = (company, contact, deal)
        words = {"deal_stage": "Qualified To Buy", "task_open": "NOT_STARTED", "task_done": "COMPLETED"}
        due = "2027-01-10T09:00:00+00:00"
        cases = crm_write_cases(
            related, CUSTOM_PROPERTIES, "properties.{}", task_priority="HIGH", task_due_at=due, **words
        )
        # Stages are written by id: "New" is the first stage of both seeded pipelines, so NEW names two.
        cases["Ticket"] = ticket_write_case(
            (company, contact),
            CUSTOM_PROPERTIES["Ticket"],
            "properties.{}",
            opened={"remoteStatus": "1", "channel": "EMAIL"},
            closed={"remoteStatus": "4", "priority": "URGENT"},
        )
        return cases


def dev_driver(contacts: int) -> HubSpotDriver:
    others = in_proportion(contacts, {"companies": 8, "deals": 4, "notes": 2, "tasks": 3, "tickets": 4})
    size = SandboxSize(contacts=contacts, owners=8, **others)
    return HubSpotDriver(HubSpotSandbox(seed=SEED, size=size))


def conformance_driver() -> HubSpotDriver:
    # A realistic width: 600 contact properties, more than fit in one list URL.
    size = SandboxSize(
        contacts=230, companies=40, deals=60, owners=6, notes=80, tasks=50, contact_properties=WIDE_CONTACT_PROPERTIES
    )
    sandbox = HubSpotSandbox(seed=5, size=size)
    sandbox.faults.rate_limit_enabled = False
    sandbox.faults.search_lag_ms = int(SEARCH_LAG_SECONDS * 1000)
    driver = HubSpotDriver(sandbox)
    driver.search_lag_seconds = SEARCH_LAG_SECONDS
    return driver


def writeback_driver() -> HubSpotDriver:
    size = SandboxSize(contacts=40, companies=10, deals=10, owners=3, notes=10, tasks=10, tickets=10)
    sandbox = HubSpotSandbox(seed=11, size=size)
    sandbox.faults.rate_limit_enabled = False
    return HubSpotDriver(sandbox)


SANDBOX = SandboxEntry(HUBSPOT, dev=dev_driver, conformance=conformance_driver, writeback=writeback_driver)
