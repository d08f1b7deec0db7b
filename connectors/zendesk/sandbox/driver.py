"""The Zendesk sandbox as the kit drives it: in `xkit dev`, the conformance suite and the writeback suite.

The connector's streams and where their records come from: tickets, end_users and agents (users by role),
organizations, ticket_comments (`<ticket id>-<comment id>`), groups, ticket_fields, user_fields and
satisfaction_ratings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from connectors.kit.credentials import Credentials
from connectors.kit.oauth import OAuthApp
from connectors.kit.registry import DriverBase, Endpoints, WriteCase, in_proportion
from connectors.kit.sandbox import serve_in_thread
from connectors.kit.ticket_write_cases import ticket_comment_write_case, ticket_write_case
from connectors.zendesk.sandbox.account import Account, render
from connectors.zendesk.sandbox.app import create_app
from connectors.zendesk.sandbox.data import USER_FIELDS, SandboxSize, ticket_field_definitions
from connectors.zendesk.sandbox.sandbox import ZendeskSandbox, base_url_for

SEED = 42
# The cursor export's page: what the connector asks for.
EXPORT_PAGE_SIZE = 1000
# Common model -> the connector's stream its writes land in.
WRITE_STREAMS = {"Ticket": "tickets", "TicketComment": "ticket_comments"}


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

    write_streams = WRITE_STREAMS

    @property
    def account(self) -> Account:
        return self.sandbox.account()

    def tokens(self) -> Credentials:
        """The connection's subdomain goes with its tokens: webhooks name it, and Zendesk has no API that tells a
        connection its account."""
        credentials = Credentials.from_token_response(self.sandbox.mint_tokens())
        return credentials.with_extra({"subdomain": self.sandbox.default_subdomain})

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

    # ---- writeback ---------------------------------------------------------------------------

    def ids(self, model: str, *, deleted: bool = False) -> set[str]:
        if model == "Ticket":
            if deleted:
                return {str(ticket["id"]) for ticket in self.account.deleted_tickets()}
            return self.expected_ids("tickets")
        if model == "TicketComment":
            # Comments are never deleted on their own: they go with their ticket.
            return set() if deleted else self.expected_ids("ticket_comments")
        raise KeyError(f"the Zendesk connector writes no {model}")

    def get(self, model: str, remote_id: str) -> dict[str, Any]:
        """The record as the API shows it (a comment with its `ticket_id`, as the connector keeps it)."""
        if model == "TicketComment":
            ticket, comment = (int(part) for part in remote_id.split("-"))
            found = next(c for c in self.account.comments(ticket) if c["id"] == comment)
            return {**render(found), "ticket_id": ticket}
        stored = self.account.any_ticket(int(remote_id))
        if stored is None:
            raise KeyError(f"the Zendesk sandbox has no ticket {remote_id}")
        return render(stored)

    def change(self, model: str, remote_id: str) -> None:
        if model != "Ticket":
            raise KeyError(f"Zendesk {model}s never change once made")
        self.account.update_ticket(int(remote_id), {"subject": "Changed in Zendesk"}, self.account.admin_id)

    def cases(self) -> dict[str, WriteCase]:
        """A ticket raised by the first seeded end user for the first organization, and a comment on the first
        open seeded ticket (a closed one takes no comments). A comment is create-only: Zendesk comments never
        change and go only with their ticket."""
        organization = min(self.expected_ids("organizations"), key=int)
        requester = min(self.expected_ids("end_users"), key=int)
        ticket = ticket_write_case(
            (organization, requester),
            ("external_id", "ENG-1042"),
            "{}",
            opened={"status": "OPEN"},
            closed={"status": "SOLVED", "priority": "URGENT"},
        )
        comment = ticket_comment_write_case(self._open_ticket(), ("public", True), "{}")
        return {"Ticket": ticket, "TicketComment": WriteCase(comment.create, comment.raw_fields, "public", None)}

    def _open_ticket(self) -> str:
        return str(min(i for i in self.account.ticket_ids if (self.account.ticket(i) or {}).get("status") == "open"))


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


def writeback_driver() -> ZendeskDriver:
    sandbox = ZendeskSandbox(seed=11, size=SandboxSize(tickets=30, users=20, agents=3, organizations=10))
    sandbox.faults.rate_limit_enabled = False
    # Read-your-writes checks that the next incremental run sees the suite's writes at once (see
    # `conformance_driver`).
    sandbox.faults.export_lag_s = 0
    return ZendeskDriver(sandbox)
