"""The Salesforce connector, declared. Facts: shared/providers/salesforce.md."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.kit.after_token import BaseUrlFrom
from connectors.kit.declaration import Connector, Stream
from connectors.kit.egress import HostPatterns, ProviderHosts
from connectors.kit.errors import Conflict, NotFound
from connectors.kit.mapping import ModelMapping
from connectors.kit.oauth import OAuth2
from connectors.kit.ratelimit import RateLimit
from connectors.kit.writers import BodyRule, RestWriter
from connectors.salesforce.catalog import DESCRIBE_CATALOGS
from connectors.salesforce.currencies import ORG, OrgCurrencies
from connectors.salesforce.errors import parse_error, pause_near_daily_limit
from connectors.salesforce.mapping import (
    COMPANY_MAPPING,
    CONTACT_MAPPING,
    DEAL_MAPPING,
    LEAD_MAPPING,
    NOTE_MAPPING,
    TASK_MAPPING,
    TICKET_COMMENT_MAPPING,
    TICKET_MAPPING,
    USER_MAPPING,
)
from connectors.salesforce.query import API, DescribeFields, SoqlBackfill, SoqlIncremental
from connectors.salesforce.writes import CreateOnly, OneOf, SoqlLookup, note_title


def sobject(
    name: str,
    sobject_type: str,
    mapping: ModelMapping,
    *rules: BodyRule,
    writable: bool = True,
    create_defaults: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> Stream:
    path = f"{API}/sobjects/{sobject_type}"
    return Stream(
        name=name,
        path=path,
        primary_key="Id",
        pagination=SoqlBackfill(sobject_type),
        incremental=SoqlIncremental(sobject_type),
        discovery=DescribeFields(sobject_type),
        mapping=mapping,
        created_at="CreatedDate",
        updated_at="LastModifiedDate",
        deleted_at="SystemModstamp",
        lookup=SoqlLookup(sobject_type),
        writer=RestWriter(mapping, path, f"{path}/{{id}}", rules=rules, create_defaults=create_defaults)
        if writable
        else None,
        # Amounts read the org's currencies (only the objects with amounts ask for them).
        labels={ORG: OrgCurrencies()} if ORG in mapping.label_tables else {},
    )


LOGIN = "https://login.salesforce.com"

SALESFORCE = Connector(
    name="salesforce",
    display_name="Salesforce",
    base_url=LOGIN,
    hosts=ProviderHosts(
        # An org's instance: its My Domain (acme.my.salesforce.com, sandboxes below it) or a legacy pod.
        api=HostPatterns(("*.my.salesforce.com", "*.salesforce.com")),
        # Production and sandbox login hosts, or the org's My Domain.
        oauth=HostPatterns(("login.salesforce.com", "test.salesforce.com", "*.my.salesforce.com", "*.salesforce.com")),
    ),
    auth=OAuth2(
        authorize_url=f"{LOGIN}/services/oauth2/authorize",
        token_url=f"{LOGIN}/services/oauth2/token",
        scopes=("api", "refresh_token"),
        token_on_authorize_host=True,
        after_token=BaseUrlFrom("instance_url"),
    ),
    # No per-second limit, but a daily org-wide allowance: pace politely, slow down near the allowance.
    rate_limit=RateLimit(requests=25, per_seconds=1, pause_when=pause_near_daily_limit),
    parse_error=parse_error,
    write_error_codes={
        "DUPLICATES_DETECTED": Conflict,
        "DUPLICATE_VALUE": Conflict,
        "ENTITY_IS_DELETED": NotFound,
        "NOT_FOUND": NotFound,
    },
    field_catalogs=DESCRIBE_CATALOGS,
    streams=(
        sobject("contacts", "Contact", CONTACT_MAPPING),
        sobject("leads", "Lead", LEAD_MAPPING),
        sobject("accounts", "Account", COMPANY_MAPPING),
        sobject(
            "opportunities", "Opportunity", DEAL_MAPPING, CreateOnly("Opportunity", OneOf("ContactId", ("contacts",)))
        ),
        sobject("users", "User", USER_MAPPING, writable=False),
        sobject("tasks", "Task", TASK_MAPPING, OneOf("WhoId", ("contacts",)), OneOf("WhatId", ("deals", "companies"))),
        sobject(
            "notes",
            "Note",
            NOTE_MAPPING,
            OneOf("ParentId", ("contacts", "companies", "deals"), required=True),
            create_defaults=note_title,
        ),
        sobject("cases", "Case", TICKET_MAPPING),
        # Comments are added, never edited through the common model (ParentId is fixed once written).
        sobject("case_comments", "CaseComment", TICKET_COMMENT_MAPPING),
    ),
)
