"""The HubSpot connector, declared. Facts: shared/providers/hubspot.md."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.hubspot.account import ACCOUNT, AccountCurrencies
from connectors.hubspot.catalog import PROPERTY_CATALOGS
from connectors.hubspot.errors import parse_error
from connectors.hubspot.mapping import (
    COMPANY_MAPPING,
    CONTACT_MAPPING,
    DEAL_MAPPING,
    DEAL_STAGES,
    NOTE_MAPPING,
    TASK_MAPPING,
    TICKET_MAPPING,
    TICKET_STATUSES,
    USER_MAPPING,
)
from connectors.hubspot.pipelines import PipelineStageLabels, TicketStageStatuses
from connectors.hubspot.reads import PropertiesListing
from connectors.hubspot.search import ARCHIVED_LISTING, AllProperties, SearchIncremental
from connectors.hubspot.webhooks import SIGNATURE_V3, HubSpotEvents
from connectors.hubspot.writes import BatchRead, CrmObjectWriter, now_iso
from connectors.kit.after_token import TokenIntrospection
from connectors.kit.declaration import Connector, Labels, Stream
from connectors.kit.egress import HostPatterns, ProviderHosts
from connectors.kit.mapping import ModelMapping
from connectors.kit.oauth import OAuth2
from connectors.kit.pagination import CursorPagination
from connectors.kit.ratelimit import RateLimit, when_header_exhausted
from connectors.kit.strategies import FullRefresh

LIST_PAGE = CursorPagination(records="results", next_cursor="paging.next.after", page_size=100)


def crm_object(
    object_type: str,
    mapping: ModelMapping,
    *,
    modified: str,
    associations: tuple[str, ...] = (),
    create_defaults: dict[str, Callable[[], Any]] | None = None,
    labels: Mapping[str, Labels] | None = None,
) -> Stream:
    return Stream(
        name=object_type,
        path=f"/crm/v3/objects/{object_type}",
        # Every property the account defines, in URLs of bounded length (see connectors/hubspot/reads.py).
        pagination=PropertiesListing(object_type, page_size=100),
        mapping=mapping,
        incremental=SearchIncremental(object_type, modified_property=modified),
        deletions=ARCHIVED_LISTING,
        discovery=AllProperties(object_type),
        params={"associations": ",".join(associations)} if associations else {},
        created_at="createdAt",
        updated_at="updatedAt",
        deleted_at="archivedAt",
        lookup=BatchRead(object_type),
        writer=CrmObjectWriter.of(object_type, mapping, create_defaults),
        labels=labels or {},
    )


HUBSPOT = Connector(
    name="hubspot",
    display_name="HubSpot",
    base_url="https://api.hubapi.com",
    hosts=ProviderHosts(
        api=HostPatterns(("api.hubapi.com", "*.hubapi.com")),
        # The browser authorizes on app.hubspot.com (app-eu1... in other regions); tokens come from the API host.
        oauth=HostPatterns(("app.hubspot.com", "*.hubspot.com", "api.hubapi.com", "*.hubapi.com")),
    ),
    auth=OAuth2(
        authorize_url="https://app.hubspot.com/oauth/authorize",
        # The current (date-versioned) token path; HubSpot serves the legacy /oauth/v1/token until 2027-02-16.
        token_url="/oauth/2026-03/token",
        # Connections imported with tokens only learn their portal (`hub_id`, what webhooks name) here.
        after_token=TokenIntrospection("/oauth/2026-03/token/introspect", keeps=("hub_id", "user_id", "app_id")),
        scopes=(
            "oauth",
            "crm.objects.contacts.read",
            "crm.objects.contacts.write",
            "crm.objects.companies.read",
            "crm.objects.companies.write",
            "crm.objects.deals.read",
            "crm.objects.deals.write",
            "crm.objects.owners.read",
            "crm.schemas.contacts.read",
            "crm.schemas.companies.read",
            "crm.schemas.deals.read",
            # HubSpot's scope for reading and writing tickets is the bare word.
            "tickets",
        ),
    ),
    rate_limit=RateLimit(
        requests=100, per_seconds=10, pause_when=when_header_exhausted("X-HubSpot-RateLimit-Remaining", 10)
    ),
    parse_error=parse_error,
    webhook=SIGNATURE_V3,
    webhook_events=HubSpotEvents(),
    webhook_account_key="hub_id",
    field_catalogs=PROPERTY_CATALOGS,
    streams=(
        crm_object("contacts", CONTACT_MAPPING, modified="lastmodifieddate", associations=("companies",)),
        crm_object("companies", COMPANY_MAPPING, modified="hs_lastmodifieddate", labels={ACCOUNT: AccountCurrencies()}),
        crm_object(
            "deals",
            DEAL_MAPPING,
            modified="hs_lastmodifieddate",
            associations=("companies", "contacts"),
            labels={DEAL_STAGES: PipelineStageLabels("deals"), ACCOUNT: AccountCurrencies()},
        ),
        crm_object(
            "notes",
            NOTE_MAPPING,
            modified="hs_lastmodifieddate",
            associations=("contacts", "companies", "deals"),
            # A note is logged now unless the caller says when.
            create_defaults={"hs_timestamp": now_iso},
        ),
        crm_object(
            "tasks",
            TASK_MAPPING,
            modified="hs_lastmodifieddate",
            associations=("contacts", "companies", "deals"),
        ),
        crm_object(
            "tickets",
            TICKET_MAPPING,
            modified="hs_lastmodifieddate",
            associations=("contacts", "companies"),
            labels={TICKET_STATUSES: TicketStageStatuses()},
        ),
        Stream(
            name="owners",
            path="/crm/v3/owners",
            pagination=LIST_PAGE,
            mapping=USER_MAPPING,
            incremental=FullRefresh(LIST_PAGE),
            deletions=ARCHIVED_LISTING,
            created_at="createdAt",
            updated_at="updatedAt",
        ),
    ),
)
