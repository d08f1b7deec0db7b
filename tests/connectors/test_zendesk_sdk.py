"""Zenpy, the widely used Python client of Zendesk's API, driven against the Zendesk sandbox: a client
written against the real API pages, exports, writes and reads errors the same way here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from zenpy import Zenpy  # type: ignore[import-untyped]
from zenpy.lib.api_objects import Comment, Ticket, User  # type: ignore[import-untyped]
from zenpy.lib.exception import APIException  # type: ignore[import-untyped]

from connectors.kit.sandbox import serve_in_thread
from connectors.zendesk.sandbox import SandboxSize, ZendeskSandbox, base_url_for, create_app
from connectors.zendesk.sandbox.account import Account

SUBDOMAIN = "acme"


class SandboxAdapter(HTTPAdapter):
    """Zenpy calls https://{subdomain}.zendesk.com; this adapter, mounted for that host only, stands between
    it and the account's stand-in in the sandbox as a reverse proxy would: requests go to the sandbox, and
    the sandbox's own URLs in answers (`next_page`, `url`) come back as the real host's."""

    def __init__(self, real: str, stand_in: str) -> None:
        super().__init__()
        self.real = real
        self.stand_in = stand_in

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        assert request.url is not None
        forwarded = request.copy()
        forwarded.url = self.stand_in + request.url.removeprefix(self.real)
        response = super().send(forwarded, **kwargs)
        response._content = response.content.replace(self.stand_in.encode(), self.real.encode())
        response.request, response.url = request, request.url
        return response


@dataclass
class Desk:
    sandbox: ZendeskSandbox
    client: Any

    @property
    def account(self) -> Account:
        return self.sandbox.account(SUBDOMAIN)


@pytest.fixture
def desk() -> Iterator[Desk]:
    sandbox = ZendeskSandbox(
        seed=21, size=SandboxSize(tickets=230, users=40, organizations=10), subdomains=(SUBDOMAIN,)
    )
    sandbox.faults.rate_limit_enabled = False
    with sandbox, serve_in_thread(create_app(sandbox)) as url, requests.Session() as session:
        session.mount(
            f"https://{SUBDOMAIN}.zendesk.com",
            SandboxAdapter(f"https://{SUBDOMAIN}.zendesk.com", base_url_for(url, SUBDOMAIN)),
        )
        email, token = sandbox.api_token(SUBDOMAIN)
        yield Desk(sandbox, Zenpy(subdomain=SUBDOMAIN, email=email, token=token, session=session))


def open_ticket(account: Account) -> int:
    return next(i for i in account.ticket_ids if (account.ticket(i) or {}).get("status") in ("new", "open"))


def test_zenpy_lists_every_ticket_across_pages(desk: Desk) -> None:
    assert [ticket.id for ticket in desk.client.tickets()] == desk.account.ticket_ids


def test_zenpy_reads_the_cursor_export_to_its_end(desk: Desk) -> None:
    exported = {ticket.id for ticket in desk.client.tickets.incremental(start_time=0, paginate_by_time=False)}
    assert exported == set(desk.account.ticket_ids)


def test_zenpy_creates_a_ticket_for_a_new_requester_and_comments_through_an_update(desk: Desk) -> None:
    requester = User(name="Ada Lovelace", email="ada@engines.example")
    audit = desk.client.tickets.create(
        Ticket(subject="Engine stuck", description="It will not turn", requester=requester)
    )
    ticket = audit.ticket
    assert ticket.status == "new" and desk.client.users(id=ticket.requester_id).email == "ada@engines.example"
    ticket.comment = Comment(body="Looking into it", public=False)
    desk.client.tickets.update(ticket)
    comments = [(c.body, c.public) for c in desk.client.tickets.comments(ticket=ticket.id)]
    assert comments == [("It will not turn", True), ("Looking into it", False)]


def test_zenpy_gets_zendesks_refusal_of_a_closed_ticket(desk: Desk) -> None:
    closed = next(i for i in desk.account.ticket_ids if (desk.account.ticket(i) or {}).get("status") == "closed")
    ticket = desk.client.tickets(id=closed)
    ticket.comment = Comment(body="Reopen please")
    with pytest.raises(APIException, match="closed prevents ticket update"):
        desk.client.tickets.update(ticket)


def test_zenpy_soft_deletes_a_ticket_into_deleted_tickets(desk: Desk) -> None:
    ticket_id = open_ticket(desk.account)
    desk.client.tickets.delete(desk.client.tickets(id=ticket_id))
    assert [ticket.id for ticket in desk.client.tickets.deleted()] == [ticket_id]
    assert ticket_id not in {ticket.id for ticket in desk.client.tickets()}


def test_zenpy_reads_users_organizations_and_fields(desk: Desk) -> None:
    assert {user.id for user in desk.client.users()} == {u["id"] for u in desk.account.active_users()}
    assert {org.id for org in desk.client.organizations()} == set(desk.account.organizations)
    assert {field.title for field in desk.client.ticket_fields()} >= {"Subject", "Product", "Order number"}
    assert desk.client.users.me().role == "admin"
