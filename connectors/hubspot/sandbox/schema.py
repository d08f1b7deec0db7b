"""What the emulated HubSpot portal contains: object types, their properties, association types."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from connectors.hubspot.sandbox.pipelines import (
    DEAL_PIPELINE_IDS,
    DEAL_STAGE_IDS,
    DEFAULT_PIPELINE,
    TICKET_PIPELINE_IDS,
    TICKET_STAGE_IDS,
)


@dataclass(frozen=True)
class ObjectType:
    name: str  # the plural path segment: "contacts"
    singular: str  # used in association type names and messages: "contact"
    type_id: str  # HubSpot's objectTypeId: "0-1"
    created_property: str
    modified_property: str
    default_properties: tuple[str, ...]
    required_on_create: tuple[str, ...] = ()

    @property
    def system_properties(self) -> tuple[str, ...]:
        """Returned on every read whatever `properties` asks for."""
        return (self.created_property, self.modified_property, "hs_object_id")


OBJECT_TYPES: dict[str, ObjectType] = {
    t.name: t
    for t in (
        ObjectType(
            "contacts",
            "contact",
            "0-1",
            "createdate",
            "lastmodifieddate",
            ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
        ),
        ObjectType(
            "companies",
            "company",
            "0-2",
            "createdate",
            "hs_lastmodifieddate",
            ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
        ),
        ObjectType(
            "deals",
            "deal",
            "0-3",
            "createdate",
            "hs_lastmodifieddate",
            (
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ),
        ),
        ObjectType(
            "notes",
            "note",
            "0-46",
            "hs_createdate",
            "hs_lastmodifieddate",
            ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
            required_on_create=("hs_timestamp",),
        ),
        ObjectType(
            "tasks",
            "task",
            "0-27",
            "hs_createdate",
            "hs_lastmodifieddate",
            ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
            required_on_create=("hs_timestamp",),
        ),
        ObjectType(
            "tickets",
            "ticket",
            "0-5",
            "createdate",
            "hs_lastmodifieddate",
            (
                "content",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_category",
                "hs_ticket_priority",
                "subject",
            ),
            # The pipeline, when not given, is the one the stage belongs to (see pipelines.ticket_stage_effects).
            required_on_create=("subject", "hs_pipeline_stage"),
        ),
    )
}

_ALIASES = {alias: t.name for t in OBJECT_TYPES.values() for alias in (t.name, t.singular, t.type_id)}


def resolve_object_type(raw: str) -> ObjectType | None:
    """HubSpot accepts the plural name, the singular name or the objectTypeId in paths."""
    name = _ALIASES.get(raw.lower())
    return OBJECT_TYPES[name] if name else None


@dataclass(frozen=True)
class PropertyDef:
    name: str
    label: str
    type: str  # string | number | date | datetime | enumeration | bool
    field_type: str
    group: str
    description: str = ""
    options: tuple[str, ...] = ()
    hubspot_defined: bool = True
    read_only: bool = False
    has_unique_value: bool = False

    @property
    def is_temporal(self) -> bool:
        return self.type in ("date", "datetime")


_FIELD_TYPES = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "enumeration": "select",
    "bool": "booleancheckbox",
}


def _prop(
    name: str,
    label: str,
    kind: str,
    group: str,
    *,
    options: tuple[str, ...] = (),
    custom: bool = False,
    read_only: bool = False,
    unique: bool = False,
    field_type: str | None = None,
    description: str = "",
) -> PropertyDef:
    return PropertyDef(
        name=name,
        label=label,
        type=kind,
        field_type=field_type or _FIELD_TYPES[kind],
        group=group,
        description=description,
        options=options,
        hubspot_defined=not custom,
        read_only=read_only,
        has_unique_value=unique,
    )


def _system(created: str, modified: str, group: str) -> list[PropertyDef]:
    return [
        _prop(created, "Create Date", "datetime", group, read_only=True),
        _prop(modified, "Last Modified Date", "datetime", group, read_only=True),
        _prop("hs_object_id", "Record ID", "number", group, read_only=True, unique=True),
        _prop("hubspot_owner_id", "Owner", "enumeration", group, description="The owner of the record."),
    ]


LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
INDUSTRIES = (
    "COMPUTER_SOFTWARE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "MARKETING_AND_ADVERTISING",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "EDUCATION_MANAGEMENT",
    "REAL_ESTATE",
    "CONSTRUCTION",
    "TELECOMMUNICATIONS",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "FOOD_BEVERAGES",
)
# The default pipeline's stage ids, which HubSpot gives every portal.
DEAL_STAGES = tuple(stage.id for stage in DEFAULT_PIPELINE.stages)
TASK_STATUSES = ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")
TASK_PRIORITIES = ("NONE", "LOW", "MEDIUM", "HIGH")
TASK_TYPES = ("TODO", "CALL", "EMAIL")
FAVORITE_COLORS = ("red", "orange", "yellow", "green", "blue", "purple")
LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")
# The custom `tier` a platform maps its own field to (issue 16's example).
CUSTOMER_TIERS = ("gold", "silver", "bronze")
ACCOUNT_TIERS = ("tier_1", "tier_2", "tier_3")
DEAL_SOURCES = ("inbound", "outbound", "partner", "referral", "event")
# The portal's currencies (multi-currency on): its company currency and the others a deal may be in, which
# are `deal_currency_code`'s options.
COMPANY_CURRENCY = "USD"
ADDITIONAL_CURRENCIES = ("EUR", "GBP", "JPY")
NOTE_SENTIMENTS = ("positive", "neutral", "negative")
# hs_ticket_priority's options in a portal that has not added its own; MEDIUM is HubSpot's "normal".
TICKET_PRIORITIES = ("LOW", "MEDIUM", "HIGH", "URGENT")
TICKET_CATEGORIES = ("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY")
TICKET_SOURCES = ("EMAIL", "CHAT", "PHONE", "FORM")
SUPPORT_TIERS = ("standard", "premium", "enterprise")
TASK_SOURCES = ("manual", "sequence", "workflow")

_CONTACT = "contactinformation"
_COMPANY = "companyinformation"
_DEAL = "dealinformation"
_NOTE = "noteinformation"
_TASK = "taskinformation"
_TICKET = "ticketinformation"

_PROPERTY_LISTS: dict[str, list[PropertyDef]] = {
    "contacts": [
        *_system("createdate", "lastmodifieddate", _CONTACT),
        _prop("email", "Email", "string", _CONTACT, unique=True),
        _prop("firstname", "First Name", "string", _CONTACT),
        _prop("lastname", "Last Name", "string", _CONTACT),
        _prop("phone", "Phone Number", "string", _CONTACT, field_type="phonenumber"),
        _prop("mobilephone", "Mobile Phone Number", "string", _CONTACT, field_type="phonenumber"),
        _prop("jobtitle", "Job Title", "string", _CONTACT),
        _prop("company", "Company Name", "string", _CONTACT),
        _prop("city", "City", "string", _CONTACT),
        _prop("country", "Country/Region", "string", _CONTACT),
        _prop("lifecyclestage", "Lifecycle Stage", "enumeration", _CONTACT, options=LIFECYCLE_STAGES),
        _prop("favorite_color", "Favorite color", "enumeration", _CONTACT, options=FAVORITE_COLORS, custom=True),
        _prop("loyalty_tier", "Loyalty tier", "enumeration", _CONTACT, options=LOYALTY_TIERS, custom=True),
        _prop("nps_score", "NPS score", "number", _CONTACT, custom=True),
        _prop("tier", "Tier", "enumeration", _CONTACT, options=CUSTOMER_TIERS, custom=True),
    ],
    "companies": [
        *_system("createdate", "hs_lastmodifieddate", _COMPANY),
        _prop("name", "Company name", "string", _COMPANY),
        _prop("domain", "Company Domain Name", "string", _COMPANY),
        _prop("industry", "Industry", "enumeration", _COMPANY, options=INDUSTRIES),
        _prop("phone", "Phone Number", "string", _COMPANY, field_type="phonenumber"),
        _prop("city", "City", "string", _COMPANY),
        _prop("country", "Country/Region", "string", _COMPANY),
        _prop("numberofemployees", "Number of Employees", "number", _COMPANY),
        _prop("annualrevenue", "Annual Revenue", "number", _COMPANY),
        _prop("account_tier", "Account tier", "enumeration", _COMPANY, options=ACCOUNT_TIERS, custom=True),
        _prop("renewal_date", "Renewal date", "date", _COMPANY, custom=True),
    ],
    "deals": [
        *_system("createdate", "hs_lastmodifieddate", _DEAL),
        _prop("dealname", "Deal Name", "string", _DEAL),
        _prop("amount", "Amount", "number", _DEAL),
        _prop(
            "deal_currency_code",
            "Currency",
            "enumeration",
            _DEAL,
            options=(COMPANY_CURRENCY, *ADDITIONAL_CURRENCIES),
        ),
        _prop("dealstage", "Deal Stage", "enumeration", _DEAL, options=DEAL_STAGE_IDS),
        _prop("pipeline", "Pipeline", "enumeration", _DEAL, options=DEAL_PIPELINE_IDS),
        _prop("closedate", "Close Date", "datetime", _DEAL),
        _prop("deal_source", "Deal source", "enumeration", _DEAL, options=DEAL_SOURCES, custom=True),
        _prop("contract_length_months", "Contract length (months)", "number", _DEAL, custom=True),
    ],
    "notes": [
        *_system("hs_createdate", "hs_lastmodifieddate", _NOTE),
        _prop("hs_timestamp", "Activity date", "datetime", _NOTE),
        _prop("hs_note_body", "Note body", "string", _NOTE, field_type="html"),
        _prop("hs_attachment_ids", "Attached file IDs", "enumeration", _NOTE, field_type="checkbox"),
        _prop("note_sentiment", "Sentiment", "enumeration", _NOTE, options=NOTE_SENTIMENTS, custom=True),
        _prop("follow_up_required", "Follow-up required", "bool", _NOTE, custom=True),
    ],
    "tasks": [
        *_system("hs_createdate", "hs_lastmodifieddate", _TASK),
        _prop("hs_timestamp", "Due date", "datetime", _TASK),
        _prop("hs_task_subject", "Task Title", "string", _TASK),
        _prop("hs_task_body", "Notes", "string", _TASK, field_type="html"),
        _prop("hs_task_status", "Task Status", "enumeration", _TASK, options=TASK_STATUSES),
        _prop("hs_task_priority", "Priority", "enumeration", _TASK, options=TASK_PRIORITIES),
        _prop("hs_task_type", "Task Type", "enumeration", _TASK, options=TASK_TYPES),
        _prop("task_source", "Task source", "enumeration", _TASK, options=TASK_SOURCES, custom=True),
        _prop("effort_hours", "Effort (hours)", "number", _TASK, custom=True),
    ],
    "tickets": [
        *_system("createdate", "hs_lastmodifieddate", _TICKET),
        _prop("subject", "Ticket name", "string", _TICKET),
        _prop("content", "Ticket description", "string", _TICKET, field_type="textarea"),
        _prop("hs_pipeline", "Pipeline", "enumeration", _TICKET, options=TICKET_PIPELINE_IDS),
        _prop("hs_pipeline_stage", "Ticket status", "enumeration", _TICKET, options=TICKET_STAGE_IDS),
        _prop("hs_ticket_priority", "Priority", "enumeration", _TICKET, options=TICKET_PRIORITIES),
        _prop("hs_ticket_category", "Category", "enumeration", _TICKET, options=TICKET_CATEGORIES),
        _prop("source_type", "Source", "enumeration", _TICKET, options=TICKET_SOURCES),
        _prop("closed_date", "Close date", "datetime", _TICKET),
        _prop("support_tier", "Support tier", "enumeration", _TICKET, options=SUPPORT_TIERS, custom=True),
    ],
}

PROPERTIES: dict[str, dict[str, PropertyDef]] = {
    object_type: {p.name: p for p in props} for object_type, props in _PROPERTY_LISTS.items()
}

# Properties whose options are not a fixed list (the owner list changes) skip option validation.
OPEN_ENUMERATIONS = frozenset({"hubspot_owner_id", "hs_attachment_ids"})


@dataclass(frozen=True)
class AssociationType:
    type_id: int
    from_type: str
    to_type: str
    primary: bool  # the labelled "Primary" type; the unlabeled one always exists beside it

    @property
    def label(self) -> str | None:
        return "Primary" if self.primary else None


# HUBSPOT_DEFINED association type ids, as HubSpot's own UI bundle and several clients list them.
# Pairs that have a primary label (contact/deal to company) carry both ids on a primary link.
_ASSOCIATION_TYPE_ROWS = (
    (279, "contacts", "companies", False),
    (1, "contacts", "companies", True),
    (280, "companies", "contacts", False),
    (2, "companies", "contacts", True),
    (4, "contacts", "deals", False),
    (3, "deals", "contacts", False),
    (341, "deals", "companies", False),
    (5, "deals", "companies", True),
    (342, "companies", "deals", False),
    (6, "companies", "deals", True),
    (201, "contacts", "notes", False),
    (202, "notes", "contacts", False),
    (189, "companies", "notes", False),
    (190, "notes", "companies", False),
    (213, "deals", "notes", False),
    (214, "notes", "deals", False),
    (203, "contacts", "tasks", False),
    (204, "tasks", "contacts", False),
    (191, "companies", "tasks", False),
    (192, "tasks", "companies", False),
    (215, "deals", "tasks", False),
    (216, "tasks", "deals", False),
    (15, "contacts", "tickets", False),
    (16, "tickets", "contacts", False),
    (339, "tickets", "companies", False),
    (26, "tickets", "companies", True),
    (340, "companies", "tickets", False),
    (25, "companies", "tickets", True),
)

ASSOCIATION_TYPES: dict[int, AssociationType] = {row[0]: AssociationType(*row) for row in _ASSOCIATION_TYPE_ROWS}


def association_types_between(from_type: str, to_type: str) -> list[AssociationType]:
    return [t for t in ASSOCIATION_TYPES.values() if t.from_type == from_type and t.to_type == to_type]


_UNLABELED: dict[tuple[str, str], AssociationType] = {
    (t.from_type, t.to_type): t for t in ASSOCIATION_TYPES.values() if not t.primary
}
_INVERSE: dict[int, AssociationType] = {
    t.type_id: next(
        u
        for u in ASSOCIATION_TYPES.values()
        if (u.from_type, u.to_type, u.primary) == (t.to_type, t.from_type, t.primary)
    )
    for t in ASSOCIATION_TYPES.values()
}


def unlabeled_type(from_type: str, to_type: str) -> AssociationType | None:
    return _UNLABELED.get((from_type, to_type))


def inverse_type(association_type: AssociationType) -> AssociationType:
    return _INVERSE[association_type.type_id]


@functools.cache
def v3_association_name(association_type: AssociationType) -> str:
    """The `type` string of the v3 `associations` read: primary links keep the plain name and
    unlabeled ones get an `_unlabeled` suffix on pairs that have a primary label."""
    base = f"{OBJECT_TYPES[association_type.from_type].singular}_to_{OBJECT_TYPES[association_type.to_type].singular}"
    has_primary = any(
        t.primary for t in association_types_between(association_type.from_type, association_type.to_type)
    )
    if has_primary and not association_type.primary:
        return f"{base}_unlabeled"
    return base


# ---- realistic width ------------------------------------------------------------------------
# A real portal's contacts carry hundreds of properties: HubSpot's own analytics, email and sales
# families (hs_analytics_*, hs_email_*, hs_sales_email_*, ...) and the custom ones that integrations
# and admins add, grouped by source. The names below follow those patterns; integrators report
# accounts of 600 to 1,000+ properties (airbytehq/airbyte#33976, airweave-ai/airweave#1064).
WIDE_CONTACT_PROPERTIES = 600

TRAFFIC_SOURCES = (
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
    "PAID_SOCIAL",
)
_SUBSCRIPTION_STATES = ("trialing", "active", "past_due", "paused", "canceled")
_HEALTH = ("healthy", "at_risk", "critical")

# (group name, name prefix, defined by HubSpot, stems as (suffix, type))
_WIDE_FAMILIES: tuple[tuple[str, str, bool, tuple[tuple[str, str], ...]], ...] = (
    (
        "analyticsinformation",
        "hs_analytics",
        True,
        (
            ("first_timestamp", "datetime"),
            ("last_timestamp", "datetime"),
            ("first_visit_timestamp", "datetime"),
            ("last_visit_timestamp", "datetime"),
            ("num_page_views", "number"),
            ("num_visits", "number"),
            ("num_event_completions", "number"),
            ("average_page_views", "number"),
            ("source", "enumeration"),
            ("source_data_1", "string"),
            ("source_data_2", "string"),
            ("first_referrer", "string"),
            ("last_referrer", "string"),
            ("first_url", "string"),
            ("last_url", "string"),
            ("revenue", "number"),
        ),
    ),
    (
        "emailinformation",
        "hs_email",
        True,
        (
            ("first_send_date", "datetime"),
            ("last_send_date", "datetime"),
            ("first_open_date", "datetime"),
            ("last_open_date", "datetime"),
            ("first_click_date", "datetime"),
            ("last_click_date", "datetime"),
            ("delivered", "number"),
            ("open", "number"),
            ("click", "number"),
            ("bounce", "number"),
            ("optout", "bool"),
            ("last_email_name", "string"),
            ("quarantined", "bool"),
            ("sends_since_last_engagement", "number"),
        ),
    ),
    (
        "sales_properties",
        "hs_sales_email",
        True,
        (
            ("last_replied", "datetime"),
            ("last_opened", "datetime"),
            ("last_clicked", "datetime"),
            ("num_replies", "number"),
            ("sequence_enrolled", "bool"),
            ("sequence_name", "string"),
        ),
    ),
    (
        "socialmediainformation",
        "hs_social",
        True,
        (
            ("facebook_clicks", "number"),
            ("linkedin_clicks", "number"),
            ("twitter_clicks", "number"),
            ("num_broadcast_clicks", "number"),
            ("last_engagement", "datetime"),
            ("linkedin_profile_url", "string"),
        ),
    ),
    (
        "conversioninformation",
        "hs_conversion",
        True,
        (
            ("first_event_name", "string"),
            ("recent_event_name", "string"),
            ("first_date", "datetime"),
            ("recent_date", "datetime"),
            ("num_forms_submitted", "number"),
            ("num_unique_forms", "number"),
        ),
    ),
)
# Integrations that each add a family of custom properties, named as their sync apps name them.
_INTEGRATIONS = (
    "salesforce",
    "zoominfo",
    "clearbit",
    "segment",
    "intercom",
    "stripe",
    "zendesk",
    "gong",
    "marketo",
    "outreach",
    "apollo",
    "mixpanel",
    "chargebee",
    "pendo",
    "gainsight",
    "drift",
    "calendly",
    "hotjar",
    "linkedin_ads",
    "google_ads",
    "docusign",
    "pandadoc",
    "slack",
    "zoom",
    "aircall",
    "ringcentral",
    "qualified",
    "sixsense",
    "bombora",
    "lusha",
    "vitally",
    "typeform",
    "freshdesk",
    "pipedrive",
)
_INTEGRATION_STEMS: tuple[tuple[str, str], ...] = (
    ("record_id", "string"),
    ("last_sync_date", "datetime"),
    ("owner_email", "string"),
    ("status", "enumeration"),
    ("score", "number"),
    ("plan_name", "string"),
    ("monthly_revenue", "number"),
    ("created_date", "date"),
    ("is_active", "bool"),
    ("health", "enumeration"),
    ("segment_name", "string"),
    ("seat_count", "number"),
    ("renewal_date", "date"),
    ("source_campaign", "string"),
    ("last_activity_date", "datetime"),
    ("external_url", "string"),
    ("employee_range", "string"),
    ("intent_topic", "string"),
    ("opt_in", "bool"),
    ("tier", "enumeration"),
    ("region", "string"),
    ("lifetime_value", "number"),
    ("first_seen_date", "datetime"),
    ("churn_risk", "enumeration"),
    ("notes_count", "number"),
    ("primary_contact_role", "string"),
    ("lead_source_detail", "string"),
    ("trial_end_date", "date"),
)


def _wide_options(name: str) -> tuple[str, ...]:
    if name.endswith("_source"):
        return TRAFFIC_SOURCES
    if name.endswith(("_health", "_churn_risk")):
        return _HEALTH
    if name.endswith("_tier"):
        return ("tier_1", "tier_2", "tier_3")
    return _SUBSCRIPTION_STATES


def _wide_candidates() -> list[PropertyDef]:
    found: list[PropertyDef] = []
    for group, prefix, hubspot_defined, stems in _WIDE_FAMILIES:
        for suffix, kind in stems:
            name = f"{prefix}_{suffix}"
            found.append(_wide_prop(name, group, kind, custom=not hubspot_defined))
    for stem, kind in _INTEGRATION_STEMS:
        for integration in _INTEGRATIONS:
            name = f"{integration}_{stem}"
            found.append(_wide_prop(name, f"{integration}_information", kind, custom=True))
    return found


def _wide_prop(name: str, group: str, kind: str, *, custom: bool) -> PropertyDef:
    label = name.removeprefix("hs_").replace("_", " ").capitalize()
    options = _wide_options(name) if kind == "enumeration" else ()
    return _prop(name, label, kind, group, options=options, custom=custom, read_only=not custom)


def widened(properties: dict[str, dict[str, PropertyDef]], contact_width: int) -> dict[str, dict[str, PropertyDef]]:
    """The portal's property definitions with contacts padded to `contact_width` properties (0 leaves
    them as they are). The same width always gives the same names, types and groups."""
    contacts = dict(properties["contacts"])
    candidates = iter(_wide_candidates())
    while len(contacts) < contact_width:
        definition = next(candidates, None)
        if definition is None:
            raise ValueError(f"at most {len(properties['contacts']) + len(_wide_candidates())} contact properties")
        contacts.setdefault(definition.name, definition)
    return {**properties, "contacts": contacts}
