"""The Zendesk sandbox as the kit drives it: in `xkit dev` and the conformance suite.

The connector's streams and where their records come from: tickets, end_users and agents (users by role),
organizations, ticket_comments (`<ticket id>-<comment id>`), groups, ticket_fields, user_fields and
satisfaction_ratings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from connectors.kit.oauth import OAuthApp
from connectors.kit.registry import DriverBase, Endpoints, in_proportion
from connectors.kit.sandbox import serve_in_thread
from connectors.zendesk.sandbox.account import Account
from connectors.zendesk.sandbox.app import create_app
from connectors.zendesk.sandbox.data import USER_FIELDS, SandboxSize, ticket_field_definitions
from connectors.zendesk.sandbox.sandbox import ZendeskSandbox, base_url_for

SEED = 42
# The cursor export's page: what the connector asks for.
EXPORT_PAGE_SIZE = 1000


def _users(role: Callable[[str], bool]) -> Callable[[Account], set[str]]:
    return lambda account: {str(u["id"]) for u in account.active_users() if role(u["role"])}


def _comments(account: Account) -> set[str]:
    return {f"{ticket}-{comment['id']}" for ticket in account.ticket_ids for comment in account.comments(ticket)}


STREAM_IDS: dict[str, Callable[[Account], set[str]]] = {
    "tickets": lambda account: {str(i) for i in account.ticket_ids},
    "end_users": _users(lambda role: role == "end-user"),
    "agents": _users(lambda role: role != "end-user"),
    "organizations": lambda account: {str(o["id"]) for o in account.live_organizations()},
    "ticket_comments": _comments,
    "groups": lambda account: {str(g["id"]) for g in account.groups},
    "ticket_fields": lambda account: {str(f.id) for f, _ in ticket_field_definitions(account.id)},
    "user_fields": lambda account: {str(f.id) for f in USER_FIELDS},
    "satisfaction_ratings": lambda account: {str(r["id"]) for r in account.satisfaction_ratings()},
}


class ZendeskDriver(DriverBase[ZendeskSandbox]):
    """Zendesk throttles with 429 and Retry-After; a connection's base URL is its account's (its subdomain's).
    Ticket custom field values are the `custom_fields` list of {id, value} in the raw ticket."""

    provider, throttle_knob = "zendesk", "rate_429"
    main_stream, page_size, custom_field_path = "tickets", EXPORT_PAGE_SIZE, "custom_fields"

    @property
    def account(self) -> Account:
        return self.sandbox.account()

    @contextmanager
    def serve(self, port: int | None = None) -> Iterator[Endpoints]:
        with serve_in_thread(create_app(self.sandbox), port=port or 0) as url:
            base_url = base_url_for(url, self.sandbox.default_subdomain)
            app = OAuthApp(
                self.sandbox.client_id,
                self.sandbox.client_secret,
                authorize_url=f"{base_url}/oauth/authorizations/new",
                base_url=base_url,
            )
            yield Endpoints(app, base_url, (url,))

    def expected_ids(self, stream: str) -> set[str]:
        ids = STREAM_IDS.get(stream)
        if ids is None:
            raise KeyError(f"the Zendesk sandbox has no stream {stream!r}; it has {', '.join(STREAM_IDS)}")
        return ids(self.account)

    def create(self) -> str:
        """A ticket from a seeded end user; like every Zendesk ticket it comes with its first comment."""
        n = self.serial()
        requester = min(int(i) for i in self.expected_ids("end_users"))
        fields = {"subject": f"Conformance ticket {n}", "comment": {"body": "Created by the suite"}}
        ticket, _ = self.account.create_ticket({**fields, "requester_id": requester}, self.account.admin_id)
        return str(ticket["id"])

    def update(self, remote_id: str) -> None:
        # Most old seeded tickets are closed, which the API may not change: this is Zendesk's own edit.
        self.account.update_ticket(int(remote_id), {"additional_tags": ["changed"]}, self.account.admin_id, system=True)

    def delete(self, remote_id: str) -> None:
        self.account.delete_ticket(int(remote_id), self.account.admin_id)

    def push_changes_to(self, gateway_url: str) -> None:
        """Signed webhooks of every change, to the gateway's Zendesk intake, signed with the OAuth client's
        secret (what the sandbox's demo platform knows) and naming the subdomain (see `configure_webhooks`)."""
        self.sandbox.configure_webhooks(
            f"{gateway_url}/webhooks/zendesk", self.sandbox.client_secret, name_subdomain=True
        )


def dev_driver(tickets: int) -> ZendeskDriver:
    others = in_proportion(tickets, {"users": 3, "organizations": 12})
    return ZendeskDriver(ZendeskSandbox(seed=SEED, size=SandboxSize(tickets=tickets, agents=6, **others)))


def conformance_driver() -> ZendeskDriver:
    sandbox = ZendeskSandbox(seed=7, size=SandboxSize(tickets=260, users=60, agents=5, organizations=15))
    sandbox.faults.rate_limit_enabled = False
    # Zendesk's exports leave out the last minute, the backfill's too, which the suite does not wait for (its
    # lag covers incremental runs only): here they show every change at once. tests/connectors/
    # test_zendesk_sandbox.py covers the lag.
    sandbox.faults.export_lag_s = 0
    return ZendeskDriver(sandbox)
