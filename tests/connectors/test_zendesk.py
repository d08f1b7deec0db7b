"""The Zendesk connector against its sandbox, over HTTP, through the real syncer and gateway: what is
special about Zendesk beside the conformance suite — the exports for backfill and polls, users split by
role, comments from the ticket events export, API-token connections, webhooks addressed by subdomain,
ticket and comment writes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import pytest_asyncio
from sqlalchemy import select

from connectors.kit.declaration import Draft, StreamContext
from connectors.kit.errors import BadInput, Conflict, ProviderError
from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp
from connectors.kit.ratelimit import PathLimit
from connectors.kit.sandbox import serve_in_thread
from connectors.zendesk import ZENDESK
from connectors.zendesk.export import ExportIncremental
from connectors.zendesk.sandbox import SandboxSize, ZendeskSandbox, base_url_for, create_app
from connectors.zendesk.sandbox.data import TICKET_FIELDS
from resolvers.ids import parse_connection_id, to_global_id
from sync.storage.store import Store
from sync.storage.tables import changes, stream_states
from sync.tenancy.connections import connection_access, get_connection_row
from sync.tenancy.platforms import set_provider_app
from tests.support import (
    Gateway,
    Tenant,
    cached_ids,
    cached_records,
    data,
    gateway,
    make_streams_due,
    new_tenant,
    run_everything_due,
    stream_errors,
)

SUBDOMAIN = "acme-support"
CREATE = """mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }"""


@pytest.fixture
def zendesk() -> Iterator[ZendeskSandbox]:
    with ZendeskSandbox(
        seed=11, size=SandboxSize(tickets=40, users=15, agents=3, organizations=5), subdomains=(SUBDOMAIN,)
    ) as sandbox:
        sandbox.faults.export_rate_per_min = 10_000
        # Exports leave out the last minute at Zendesk; here the polls see every change at once.
        sandbox.faults.export_lag_s = 0
        yield sandbox


@pytest.fixture
def zendesk_url(zendesk: ZendeskSandbox) -> Iterator[str]:
    with serve_in_thread(create_app(zendesk)) as url:
        yield url


@dataclass
class Synced:
    store: Store
    kit: HttpKit
    api: Gateway
    tenant: Tenant
    sandbox: ZendeskSandbox
    connection_id: uuid.UUID

    @property
    def account(self) -> Any:
        return self.sandbox.account(SUBDOMAIN)

    def open_ticket(self, index: int) -> int:
        """The index-th ticket that is not closed (a closed ticket refuses every update)."""
        return [t for t in self.account.ticket_ids if self.account.ticket(t)["status"] != "closed"][index]

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.api.graphql(query, self.tenant.api_key, **variables)

    def sandbox_ticket_field(self) -> int:
        """A custom text field the account defines for tickets (the order number)."""
        return next(f.id for f in TICKET_FIELDS if f.key == "order_number")

    async def again(self) -> None:
        await make_streams_due(self.store, self.connection_id)
        await run_everything_due(self.store, self.kit)

    async def common(self, stream: str, remote_id: str) -> dict[str, Any]:
        rows = [r for r in await cached_records(self.store, self.connection_id, stream) if r.remote_id == remote_id]
        assert len(rows) == 1, (stream, remote_id)
        return dict(rows[0].common)

    async def context(self, stream: str) -> StreamContext:
        row = await get_connection_row(self.store, self.connection_id)
        session = self.kit.session(await connection_access(self.store, row))
        return StreamContext(session, ZENDESK.stream(stream))


@pytest_asyncio.fixture
async def synced(
    store: Store, kit: HttpKit, secret_key: str, zendesk: ZendeskSandbox, zendesk_url: str
) -> AsyncIterator[Synced]:
    """An API-token connection (the admin's `{email}/token`) made through createConnection, backfilled."""
    async with gateway(store, kit, secret_key) as api:
        tenant = await new_tenant(store)
        await set_provider_app(store, tenant.platform_id, "zendesk", OAuthApp(zendesk.client_id, zendesk.client_secret))
        email, token = zendesk.api_token(SUBDOMAIN)
        given = {
            "provider": "zendesk",
            "externalUserId": "alice",
            "credentials": {"apiKey": token, "email": email},
            "inputs": {"subdomain": SUBDOMAIN},
            "baseUrl": base_url_for(zendesk_url, SUBDOMAIN),
        }
        created = data(await api.graphql(CREATE, tenant.api_key, input=given))["createConnection"]
        synced = Synced(store, kit, api, tenant, zendesk, parse_connection_id(created["id"]))
        await run_everything_due(store, kit)
        yield synced


def _comment_ids(account: Any, ticket_ids: list[int]) -> set[str]:
    return {f"{t}-{c['id']}" for t in ticket_ids for c in account.comments(t)}


async def test_backfill_reads_every_stream(synced: Synced) -> None:
    account = synced.account
    errors = await stream_errors(synced.store, synced.connection_id)
    assert errors == dict.fromkeys(ZENDESK.stream_names), errors
    tickets = list(account.ticket_ids)
    assert await cached_ids(synced.store, synced.connection_id, "tickets") == {str(t) for t in tickets}
    active = account.active_users()
    end_users = {str(u["id"]) for u in active if u["role"] == "end-user"}
    agents = {str(u["id"]) for u in active if u["role"] != "end-user"}
    assert await cached_ids(synced.store, synced.connection_id, "end_users") == end_users
    assert await cached_ids(synced.store, synced.connection_id, "agents") == agents
    organizations = {str(o["id"]) for o in account.live_organizations()}
    assert await cached_ids(synced.store, synced.connection_id, "organizations") == organizations
    assert await cached_ids(synced.store, synced.connection_id, "ticket_comments") == _comment_ids(account, tickets)
    for listing in ("groups", "ticket_fields", "user_fields"):
        assert await cached_ids(synced.store, synced.connection_id, listing), listing


async def test_statuses_and_priorities_map_to_the_enums_keeping_zendesks_words(synced: Synced) -> None:
    ticket_id = synced.open_ticket(0)
    synced.account.update_ticket(ticket_id, {"status": "hold", "priority": "urgent"}, synced.account.admin_id)
    await synced.again()
    common = await synced.common("tickets", str(ticket_id))
    assert (common["status"], common["remote_status"]) == ("ON_HOLD", "hold")
    assert (common["priority"], common["remote_priority"]) == ("URGENT", "urgent")
    assert common["requester"] is None or common["requester"].isdigit()


async def test_polls_pick_up_changes_comments_and_deletions(synced: Synced) -> None:
    account = synced.account
    changed, deleted = synced.open_ticket(1), synced.open_ticket(2)
    account.update_ticket(
        changed, {"subject": "Printer on fire", "comment": {"body": "Still burning", "public": False}}, account.admin_id
    )
    account.delete_ticket(deleted, account.admin_id)
    end_user = next(u for u in account.active_users() if u["role"] == "end-user")
    account.delete_user(end_user["id"])
    await synced.again()
    assert (await synced.common("tickets", str(changed)))["subject"] == "Printer on fire"
    assert str(deleted) in await cached_ids(synced.store, synced.connection_id, "tickets", deleted=True)
    assert str(end_user["id"]) in await cached_ids(synced.store, synced.connection_id, "end_users", deleted=True)
    newest = account.comments(changed)[-1]
    comment = await synced.common("ticket_comments", f"{changed}-{newest['id']}")
    assert comment["body"] == "Still burning" and comment["is_public"] is False
    assert comment["ticket"] == str(changed)


async def test_written_tickets_and_comments_read_back_as_the_export_shows_them(synced: Synced) -> None:
    tickets = await synced.context("tickets")
    comments = await synced.context("ticket_comments")
    assert ZENDESK.stream("tickets").writer is not None
    requester = next(u for u in synced.account.active_users() if u["role"] == "end-user")
    draft = Draft(
        {
            "subject": "Cannot log in",
            "description": "Since this morning",
            "priority": "HIGH",
            "requester": str(requester["id"]),
        },
        {"tags": ["login"]},
    )
    ticket_id = await ZENDESK.stream("tickets").writer.create(tickets, draft)
    comment_writer = ZENDESK.stream("ticket_comments").writer
    assert comment_writer is not None
    comment_id = await comment_writer.create(
        comments, Draft({"ticket": ticket_id, "body": "Looking into it", "is_public": False})
    )
    lookup = ZENDESK.stream("ticket_comments").lookup
    assert lookup is not None
    [written] = await lookup.fetch(comments, [comment_id])
    await synced.again()
    [synced_copy] = [
        r
        for r in await cached_records(synced.store, synced.connection_id, "ticket_comments")
        if r.remote_id == comment_id
    ]
    assert orjson.loads(synced_copy.raw) == written.raw  # the export's copy hashes alike: no echo
    ticket = await synced.common("tickets", ticket_id)
    assert (ticket["subject"], ticket["description"], ticket["priority"], ticket["tags"]) == (
        "Cannot log in",
        "Since this morning",
        "HIGH",
        ["login"],
    )


async def test_a_comment_on_a_closed_ticket_is_zendesks_conflict(synced: Synced) -> None:
    account = synced.account
    ticket_id = synced.open_ticket(3)
    account.update_ticket(ticket_id, {"status": "closed"}, account.admin_id)
    ctx = await synced.context("ticket_comments")
    writer = ZENDESK.stream("ticket_comments").writer
    assert writer is not None
    with pytest.raises(ProviderError) as refused:
        await writer.create(ctx, Draft({"ticket": str(ticket_id), "body": "Reopen please"}))
    mapping = ZENDESK.stream("ticket_comments").mapping
    assert mapping is not None
    error = ZENDESK.write_error(refused.value, mapping)
    assert isinstance(error, Conflict)
    assert "closed" in error.message


async def test_an_unknown_status_is_refused_naming_the_allowed_values(synced: Synced) -> None:
    ctx = await synced.context("tickets")
    writer = ZENDESK.stream("tickets").writer
    assert writer is not None
    with pytest.raises(BadInput) as refused:
        await writer.create(ctx, Draft({"subject": "x", "description": "y", "status": "DONE"}))
    assert refused.value.extensions["field"] == "status"
    assert "NEW, OPEN, PENDING, ON_HOLD, SOLVED, CLOSED" in refused.value.message


def _signed(secret: str, body: bytes, at: datetime) -> dict[str, str]:
    timestamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


async def test_a_signed_webhook_from_the_sandbox_fetches_the_ticket(synced: Synced) -> None:
    endpoint = f"{synced.api.url}/webhooks/zendesk?subdomain={SUBDOMAIN}"
    synced.sandbox.configure_webhooks(endpoint, synced.sandbox.client_secret, SUBDOMAIN)
    ticket_id = next(t for t in synced.account.ticket_ids if synced.account.ticket(t)["status"] in ("new", "open"))
    assert (await synced.common("tickets", str(ticket_id)))["status"] != "PENDING"
    synced.account.update_ticket(ticket_id, {"status": "pending"}, synced.account.admin_id)
    # The sender waits on the gateway, which answers on this event loop: wait for it off the loop.
    assert await asyncio.to_thread(synced.sandbox.flush_webhooks, 20)
    assert synced.sandbox.webhook_stats.snapshot()["delivered"] >= 1
    assert (await synced.common("tickets", str(ticket_id)))["status"] == "PENDING"


@pytest.mark.parametrize(
    ("secret", "age", "subdomain"),
    [
        ("wrong-secret", timedelta(0), SUBDOMAIN),
        (None, timedelta(minutes=10), SUBDOMAIN),
        (None, timedelta(0), "other"),
    ],
    ids=["bad-signature", "stale", "unknown-account"],
)
async def test_unsigned_stale_or_misaddressed_webhooks_change_nothing(
    synced: Synced, secret: str | None, age: timedelta, subdomain: str
) -> None:
    ticket_id = synced.open_ticket(5)
    body = orjson.dumps(
        {
            "type": "zen:event-type:ticket.soft_deleted",
            "account_id": 1,
            "subject": f"zen:ticket:{ticket_id}",
            "detail": {"id": str(ticket_id)},
        }
    )
    headers = _signed(secret or synced.sandbox.client_secret, body, datetime.now(UTC) - age)
    answer = await synced.api.client.post(
        f"{synced.api.url}/webhooks/zendesk?subdomain={subdomain}", content=body, headers=headers
    )
    assert answer.status_code == 401
    assert str(ticket_id) in await cached_ids(synced.store, synced.connection_id, "tickets")


async def test_a_replayed_webhook_is_processed_once(synced: Synced) -> None:
    ticket_id = synced.open_ticket(6)
    body = orjson.dumps({"type": "zen:event-type:ticket.soft_deleted", "subject": f"zen:ticket:{ticket_id}"})
    headers = _signed(synced.sandbox.client_secret, body, datetime.now(UTC))
    url = f"{synced.api.url}/webhooks/zendesk?subdomain={SUBDOMAIN}"
    first = await synced.api.client.post(url, content=body, headers=headers)
    again = await synced.api.client.post(url, content=body, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json().get("replay") is not True and again.json().get("replay") is True
    assert str(ticket_id) in await cached_ids(synced.store, synced.connection_id, "tickets", deleted=True)


CREATE_TICKET = """mutation($c: ID!, $input: TicketInput!, $raw: JSON) {
    createTicket(connectionId: $c, input: $input, rawFields: $raw) {
        ticket { remoteId subject status priority tags requester { remoteId email } } } }"""
COMMENT = """mutation($c: ID!, $input: TicketCommentInput!) {
    createTicketComment(connectionId: $c, input: $input) {
        ticketComment { remoteId body isPublic ticket { remoteId } authorUser { remoteId } } } }"""
UPDATE_TICKET = """mutation($c: ID!, $r: String!, $input: TicketInput, $raw: JSON) {
    updateTicket(connectionId: $c, remoteId: $r, input: $input, rawFields: $raw) {
        ticket { status remoteStatus assignee { remoteId } tags raw } } }"""
DELETE_TICKET = (
    """mutation($c: ID!, $r: String!) { deleteTicket(connectionId: $c, remoteId: $r) { ticket { deletedAt } } }"""
)


async def _next_second() -> None:
    """Wait for the wall clock's next second (the provider's timestamps have no finer grain)."""
    await asyncio.sleep(1 - time.time() % 1 + 0.01)


async def _changes(store: Store, connection_id: uuid.UUID) -> list[tuple[str, str, str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(changes.c.stream, changes.c.remote_id, changes.c.op)
            .where(changes.c.connection_id == connection_id)
            .order_by(changes.c.seq)
        )
        return [tuple(row) for row in rows]


async def test_tickets_written_through_graphql_show_up_once_with_no_echo(synced: Synced) -> None:
    connection = to_global_id("Connection", synced.connection_id)
    before = len(await _changes(synced.store, synced.connection_id))
    requester = {"email": f"ada.{uuid.uuid4().hex[:6]}@engines.example", "name": "Ada Lovelace"}
    created = data(
        await synced.graphql(
            CREATE_TICKET,
            c=connection,
            input={
                "subject": "Engine jammed",
                "description": "It stopped at step 3",
                "priority": "HIGH",
                "tags": ["engine"],
            },
            raw={"requester": requester},
        )
    )["createTicket"]["ticket"]
    assert (created["subject"], created["status"], created["priority"], created["tags"]) == (
        "Engine jammed",
        "NEW",
        "HIGH",
        ["engine"],
    )
    ticket_id = created["remoteId"]
    agent = next(u for u in synced.account.active_users() if u["role"] == "agent")
    updated = data(
        await synced.graphql(
            UPDATE_TICKET,
            c=connection,
            r=ticket_id,
            input={"status": "ON_HOLD", "assigneeRemoteId": str(agent["id"]), "tags": ["engine", "urgent"]},
            raw={"custom_fields": [{"id": synced.sandbox_ticket_field(), "value": "A-1042"}]},
        )
    )["updateTicket"]["ticket"]
    assert (updated["status"], updated["remoteStatus"], updated["assignee"]) == (
        "ON_HOLD",
        "hold",
        {"remoteId": str(agent["id"])},
    )
    assert {"id": synced.sandbox_ticket_field(), "value": "A-1042"} in updated["raw"]["custom_fields"]
    # Zendesk stamps seconds: the comment, a second after the update, moves its ticket's updated_at.
    await _next_second()
    comment = data(
        await synced.graphql(
            COMMENT,
            c=connection,
            input={
                "ticketRemoteId": ticket_id,
                "body": "Looking into it",
                "isPublic": False,
                "authorUserRemoteId": str(agent["id"]),
            },
        )
    )["createTicketComment"]["ticketComment"]
    assert (comment["body"], comment["isPublic"], comment["ticket"]) == (
        "Looking into it",
        False,
        {"remoteId": ticket_id},
    )
    written = (await _changes(synced.store, synced.connection_id))[before:]
    await synced.again()
    # The sync reads back what the writes stored: nothing more is logged for them (the requester the
    # create made, the ticket's first comment and the description are new to the sync, and come once).
    after_sync = (await _changes(synced.store, synced.connection_id))[before + len(written) :]
    assert [c for c in after_sync if c[1] in (ticket_id, comment["remoteId"])] == []
    assert ("tickets", ticket_id, "CREATED") in written and (
        "ticket_comments",
        comment["remoteId"],
        "CREATED",
    ) in written
    # The comment updated its ticket at Zendesk: read back with the comment, logged then, not by the sync.
    assert written[-2:] == [("ticket_comments", comment["remoteId"], "CREATED"), ("tickets", ticket_id, "UPDATED")]
    deleted = data(await synced.graphql(DELETE_TICKET, c=connection, r=ticket_id))["deleteTicket"]["ticket"]
    assert deleted["deletedAt"] is not None
    assert ticket_id in await cached_ids(synced.store, synced.connection_id, "tickets", deleted=True)


async def test_an_end_user_made_agent_moves_from_contacts_to_users_on_its_webhook(synced: Synced) -> None:
    endpoint = f"{synced.api.url}/webhooks/zendesk?subdomain={SUBDOMAIN}"
    synced.sandbox.configure_webhooks(endpoint, synced.sandbox.client_secret, SUBDOMAIN)
    person = next(u for u in synced.account.active_users() if u["role"] == "end-user")
    remote_id = str(person["id"])
    assert remote_id in await cached_ids(synced.store, synced.connection_id, "end_users")
    synced.account.update_user(person["id"], {"role": "agent"})
    assert await asyncio.to_thread(synced.sandbox.flush_webhooks, 20)
    assert remote_id in await cached_ids(synced.store, synced.connection_id, "end_users", deleted=True)
    assert remote_id in await cached_ids(synced.store, synced.connection_id, "agents")


def test_zendesk_keeps_its_exports_within_ten_requests_a_minute() -> None:
    limit = ZENDESK.rate_limit
    assert limit is not None and limit.narrower == (PathLimit("/incremental/", 10, 60),)
    # Five export streams polled once a minute each stay within the exports' window.
    export_streams = [stream for stream in ZENDESK.streams if isinstance(stream.incremental, ExportIncremental)]
    assert len(export_streams) * 60 / ZENDESK.min_sync_interval_seconds <= 10


async def test_streams_poll_no_more_often_than_the_exports_allow(synced: Synced) -> None:
    """The connection polls every 15 s by default; Zendesk's streams wait at least a minute after a run."""
    async with synced.store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(stream_states.c.stream, stream_states.c.next_run_at, stream_states.c.last_success_at).where(
                    stream_states.c.connection_id == synced.connection_id
                )
            )
        ).all()
    assert rows
    for row in rows:
        assert row.next_run_at - row.last_success_at >= timedelta(minutes=1), row
