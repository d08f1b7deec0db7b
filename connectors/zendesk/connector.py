"""The Zendesk connector, declared. Facts: shared/providers/zendesk.md.

Every stream is read through the incremental exports, for the backfill (from the epoch) as for polls.
Comments come from the ticket events export with `include=comment_events`: one request per 1,000 ticket
events (comments, and the other events of the same audits) whatever the number of tickets changed, where
listing each changed ticket's comments would cost a request per ticket per poll.
End users and agents share the users export, so each of the two streams reads it (twice the requests of one).
"""

from __future__ import annotations

from typing import Any

from connectors.kit.connect_inputs import ConnectInput, ConnectInputs
from connectors.kit.declaration import Connector, Stream
from connectors.kit.egress import HostPatterns, ProviderHosts
from connectors.kit.errors import Conflict
from connectors.kit.keys import Basic
from connectors.kit.mapping import ModelMapping
from connectors.kit.oauth import OAuth2
from connectors.kit.pagination import CursorPagination
from connectors.kit.ratelimit import PathLimit, RateLimit, when_header_exhausted
from connectors.kit.strategies import FullRefresh
from connectors.zendesk.catalog import ZENDESK_CATALOGS
from connectors.zendesk.errors import parse_error
from connectors.zendesk.export import Export, ExportBackfill, ExportIncremental, comments_of
from connectors.zendesk.mapping import (
    COMPANY_MAPPING,
    CONTACT_MAPPING,
    TICKET_COMMENT_MAPPING,
    TICKET_MAPPING,
    USER_MAPPING,
    is_agent,
    is_end_user,
)
from connectors.zendesk.reads import DeletedTickets, ShowMany, TicketComments
from connectors.zendesk.webhooks import SIGNATURE, ZendeskEvents
from connectors.zendesk.writes import TICKET_WRITER, CommentWriter

ZENDESK_HOSTS = HostPatterns(("*.zendesk.com",))
# Zendesk's subdomains: lower-case letters, digits and inner hyphens, one DNS label.
SUBDOMAIN = ConnectInput(
    "subdomain",
    pattern=r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?",
    hint="the account's Zendesk subdomain, e.g. acme for https://acme.zendesk.com "
    "(lower-case letters, digits and hyphens only)",
)


def _gone(raw: dict[str, Any]) -> bool:
    return raw.get("active") is False


def export_stream(name: str, path: str, export: Export, mapping: ModelMapping, **more: Any) -> Stream:
    return Stream(
        name=name,
        path=path,
        pagination=ExportBackfill(export),
        incremental=ExportIncremental(export),
        mapping=mapping,
        created_at="created_at",
        updated_at="updated_at",
        **more,
    )


def listed(name: str, path: str) -> Stream:
    """A small configuration listing kept as raw records, read whole each run."""
    pages = CursorPagination(
        records=name,
        next_cursor="meta.after_cursor",
        cursor_param="page[after]",
        size_param="page[size]",
        has_more="meta.has_more",
    )
    return Stream(name=name, path=path, pagination=pages, incremental=FullRefresh(pages), updated_at="updated_at")


TICKETS = Export(
    "/api/v2/incremental/tickets/cursor", "tickets", deleted_when=lambda raw: raw.get("status") == "deleted"
)
USERS = "/api/v2/incremental/users/cursor"
ORGANIZATIONS = Export(
    "/api/v2/incremental/organizations",
    "organizations",
    cursor_based=False,
    deleted_when=lambda raw: raw.get("deleted_at") is not None,
)
COMMENTS = Export(
    "/api/v2/incremental/ticket_events",
    "ticket_events",
    cursor_based=False,
    params={"include": "comment_events"},
    items=comments_of,
)

ZENDESK = Connector(
    name="zendesk",
    display_name="Zendesk",
    # Each account has its own host, named by its subdomain: the connection's base URL.
    base_url="https://{subdomain}.zendesk.com",
    hosts=ProviderHosts(api=ZENDESK_HOSTS, oauth=ZENDESK_HOSTS),
    connect_inputs=ConnectInputs((SUBDOMAIN,), base_url="https://{subdomain}.zendesk.com"),
    auth=OAuth2(
        authorize_url="https://{subdomain}.zendesk.com/oauth/authorizations/new",
        token_url="/oauth/tokens",
        token_body="json",
        scopes=("read", "write"),
    ),
    key_auth=Basic("{email}/token", "{key}"),
    # The smallest plan's account-wide limit; the headers say when a larger plan's is spent.
    rate_limit=RateLimit(
        requests=200,
        per_seconds=60,
        pause_when=when_header_exhausted("X-Rate-Limit-Remaining", 60),
        # The incremental exports allow 10 requests a minute (30 with the High Volume add-on), inside the
        # account's limit; a 429 from one holds the exports only, never writes and lookups.
        narrower=(PathLimit("/incremental/", requests=10, per_seconds=60),),
    ),
    # Five export streams poll at most once a minute each: within the exports' 10 a minute, with room for
    # a backfill's pages; webhooks bring changes in seconds meanwhile.
    min_sync_interval_seconds=60,
    parse_error=parse_error,
    write_error_codes={"ClosedPreventsUpdate": Conflict, "ClosedTicket": Conflict},
    webhook=SIGNATURE,
    webhook_events=ZendeskEvents(),
    webhook_account_key="subdomain",
    webhook_account_param="subdomain",
    field_catalogs=ZENDESK_CATALOGS,
    streams=(
        export_stream(
            "tickets",
            "/api/v2/tickets",
            TICKETS,
            TICKET_MAPPING,
            deletions=DeletedTickets(),
            lookup=ShowMany("tickets"),
            writer=TICKET_WRITER,
        ),
        export_stream(
            "end_users",
            "/api/v2/users",
            Export(USERS, "users", keep=is_end_user, deleted_when=_gone),
            CONTACT_MAPPING,
            lookup=ShowMany("users", keep=is_end_user),
        ),
        export_stream(
            "agents",
            "/api/v2/users",
            Export(USERS, "users", keep=is_agent, deleted_when=_gone),
            USER_MAPPING,
            lookup=ShowMany("users", keep=is_agent),
        ),
        export_stream(
            "organizations",
            "/api/v2/organizations",
            ORGANIZATIONS,
            COMPANY_MAPPING,
            deleted_at="deleted_at",
            lookup=ShowMany("organizations"),
        ),
        Stream(
            name="ticket_comments",
            path="/api/v2/tickets",
            pagination=ExportBackfill(COMMENTS),
            incremental=ExportIncremental(COMMENTS),
            primary_key="ticket_comment_id",
            mapping=TICKET_COMMENT_MAPPING,
            created_at="created_at",
            updated_at="created_at",
            lookup=TicketComments(),
            writer=CommentWriter(TICKET_COMMENT_MAPPING),
            writes_touch=(("tickets", "ticket"),),
        ),
        listed("groups", "/api/v2/groups"),
        listed("ticket_fields", "/api/v2/ticket_fields"),
        listed("user_fields", "/api/v2/user_fields"),
        listed("satisfaction_ratings", "/api/v2/satisfaction_ratings"),
    ),
)
