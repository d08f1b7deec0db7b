"""What the emulated org contains: its sObjects, their fields in describe order, key prefixes,
picklists and custom (`__c`) fields. A record is stored as a list of values in field order."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FieldType(StrEnum):
    ID = "id"
    STRING = "string"
    REFERENCE = "reference"
    DATETIME = "datetime"
    DATE = "date"
    BOOLEAN = "boolean"
    DOUBLE = "double"
    CURRENCY = "currency"
    PERCENT = "percent"
    INT = "int"
    PICKLIST = "picklist"
    TEXTAREA = "textarea"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    ADDRESS = "address"  # compound, read-only: built from its component fields


TEXT_TYPES = frozenset(
    {
        FieldType.ID,
        FieldType.STRING,
        FieldType.REFERENCE,
        FieldType.PICKLIST,
        FieldType.TEXTAREA,
        FieldType.EMAIL,
        FieldType.PHONE,
        FieldType.URL,
    }
)
NUMBER_TYPES = frozenset({FieldType.DOUBLE, FieldType.CURRENCY, FieldType.PERCENT, FieldType.INT})
LONG_TEXT_LENGTH = 32_000


@dataclass(frozen=True)
class FieldDef:
    name: str
    label: str
    type: FieldType
    length: int = 0
    createable: bool = True
    updateable: bool = True
    required: bool = False  # must be given on create: not nillable and no default
    default: Any = None  # the value a create gets when the field is not given
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    precision: int = 0
    scale: int = 0
    name_field: bool = False
    system: bool = False  # set by the platform on every write, never null
    session_default: bool = False  # defaults to the user making the call (OwnerId)
    cascade_delete: bool = True  # for a reference: deleting the record it points at deletes this one
    compound_of: str | None = None  # a component of this compound field (MailingCity of MailingAddress)

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    @property
    def nillable(self) -> bool:
        return not (
            self.required
            or self.system
            or self.session_default
            or self.type is FieldType.BOOLEAN
            or self.default is not None
        )

    @property
    def defaulted_on_create(self) -> bool:
        return self.system or self.session_default or self.default is not None

    @property
    def filterable(self) -> bool:
        # Long text areas and compound fields can be neither filtered nor sorted in SOQL.
        return not (self.type is FieldType.TEXTAREA and self.length > 255) and self.type is not FieldType.ADDRESS

    @property
    def is_text(self) -> bool:
        return self.type in TEXT_TYPES

    @property
    def is_number(self) -> bool:
        return self.type in NUMBER_TYPES


@dataclass(eq=False)  # told apart by identity, as dictionary keys
class SObjectType:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[FieldDef, ...]
    deletable: bool = dataclasses.field(default=True, kw_only=True)

    def __post_init__(self) -> None:
        fields = self.fields
        self.positions = {f.name.lower(): i for i, f in enumerate(fields)}
        self.field_names = tuple(f.name for f in fields)
        self.modstamp_at = self.positions["systemmodstamp"]
        self.deleted_at = self.positions.get("isdeleted")
        # Each compound field's position and its components' (key in the compound value, position).
        self.compounds: tuple[tuple[int, tuple[tuple[str, int], ...]], ...] = tuple(
            (
                i,
                tuple(
                    (_compound_key(f.name, component.name), j)
                    for j, component in enumerate(fields)
                    if component.compound_of == f.name
                ),
            )
            for i, f in enumerate(fields)
            if f.type is FieldType.ADDRESS
        )

    def field(self, name: str) -> FieldDef | None:
        position = self.positions.get(name.lower())
        return None if position is None else self.fields[position]

    def position(self, name: str) -> int:
        return self.positions[name.lower()]


def _compound_key(compound: str, component: str) -> str:
    """MailingPostalCode in MailingAddress is `postalCode`."""
    suffix = component.removeprefix(compound.removesuffix("Address"))
    return suffix[:1].lower() + suffix[1:]


def _field(name: str, label: str, kind: FieldType, length: int = 0, **options: Any) -> FieldDef:
    if kind in (FieldType.ID, FieldType.REFERENCE):
        length = 18
    return FieldDef(name, label, kind, length, **options)


def _text(name: str, label: str, length: int = 80, **options: Any) -> FieldDef:
    return _field(name, label, FieldType.STRING, length, **options)


def _picklist(name: str, label: str, values: tuple[str, ...], **options: Any) -> FieldDef:
    return _field(name, label, FieldType.PICKLIST, 255, picklist=values, **options)


def _reference(name: str, label: str, to: tuple[str, ...], relationship: str, **options: Any) -> FieldDef:
    return _field(name, label, FieldType.REFERENCE, reference_to=to, relationship_name=relationship, **options)


def _number(name: str, label: str, kind: FieldType = FieldType.DOUBLE, precision: int = 18, scale: int = 2) -> FieldDef:
    return _field(name, label, kind, precision=precision, scale=scale)


def _read_only(name: str, label: str, kind: FieldType, **options: Any) -> FieldDef:
    return _field(name, label, kind, createable=False, updateable=False, **options)


def _long_text(name: str, label: str) -> FieldDef:
    return _field(name, label, FieldType.TEXTAREA, LONG_TEXT_LENGTH)


def _head(deletable: bool = True) -> tuple[FieldDef, ...]:
    record_id = _read_only("Id", "Record ID", FieldType.ID, system=True)
    if not deletable:
        return (record_id,)
    return (record_id, _read_only("IsDeleted", "Deleted", FieldType.BOOLEAN, system=True))


def _audit(owned: bool = True) -> tuple[FieldDef, ...]:
    user = ("User",)
    owner = (_reference("OwnerId", "Owner ID", user, "Owner", session_default=True),) if owned else ()
    return (
        *owner,
        _read_only("CreatedDate", "Created Date", FieldType.DATETIME, system=True),
        _reference("CreatedById", "Created By ID", user, "CreatedBy", createable=False, updateable=False, system=True),
        _read_only("LastModifiedDate", "Last Modified Date", FieldType.DATETIME, system=True),
        _reference(
            "LastModifiedById",
            "Last Modified By ID",
            user,
            "LastModifiedBy",
            createable=False,
            updateable=False,
            system=True,
        ),
        _read_only("SystemModstamp", "System Modstamp", FieldType.DATETIME, system=True),
    )


def _person_name() -> FieldDef:
    return _read_only("Name", "Full Name", FieldType.STRING, length=121, name_field=True)


SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
INDUSTRIES = (
    "Agriculture",
    "Banking",
    "Biotechnology",
    "Communications",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Finance",
    "Healthcare",
    "Insurance",
    "Manufacturing",
    "Media",
    "Retail",
    "Technology",
    "Transportation",
)
ACCOUNT_TYPES = ("Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller", "Other")
REGIONS = ("North America", "EMEA", "APAC", "LATAM")
LOYALTY_TIERS = ("Bronze", "Silver", "Gold", "Platinum")
# The `customer_tier__c` a platform maps its own field to (issue 16's example), its API values in lower case.
CUSTOMER_TIERS = ("gold", "silver", "bronze")
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
RATINGS = ("Hot", "Warm", "Cold")
# Stage and its default probability, as a new org ships them.
STAGES = (
    ("Prospecting", 10.0),
    ("Qualification", 10.0),
    ("Needs Analysis", 20.0),
    ("Value Proposition", 50.0),
    ("Id. Decision Makers", 60.0),
    ("Perception Analysis", 70.0),
    ("Proposal/Price Quote", 75.0),
    ("Negotiation/Review", 90.0),
    ("Closed Won", 100.0),
    ("Closed Lost", 0.0),
)
STAGE_PROBABILITY = dict(STAGES)
CLOSED_STAGES = frozenset({"Closed Won", "Closed Lost"})
OPPORTUNITY_TYPES = ("New Customer", "Existing Customer - Upgrade", "Existing Customer - Replacement")
DEAL_SOURCES = ("Inbound", "Outbound", "Partner", "Referral", "Event")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_PRIORITIES = ("High", "Normal", "Low")
TASK_TYPES = ("Call", "Email", "Meeting", "Other")
# Case picklists as a new org ships them (Service Cloud's defaults).
CASE_STATUSES = ("New", "Working", "Escalated", "Closed")
CLOSED_CASE_STATUSES = frozenset({"Closed"})
CASE_PRIORITIES = ("High", "Medium", "Low")
CASE_ORIGINS = ("Phone", "Email", "Web")
CASE_TYPES = ("Mechanical", "Electrical", "Electronic", "Structural", "Other")
CASE_REASONS = ("Installation", "Equipment Complexity", "Performance", "Breakdown", "Equipment Design", "Other")
SLA_TIERS = ("Standard", "Premium", "Platinum")
TIME_ZONES = ("America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Berlin", "Asia/Tokyo")

USER = SObjectType(
    "User",
    "User",
    "Users",
    "005",
    (
        *_head(deletable=False),
        _text("Username", "Username", required=True),
        _text("LastName", "Last Name", required=True),
        _text("FirstName", "First Name", 40),
        _person_name(),
        _text("Alias", "Alias", 8, required=True),
        _field("Email", "Email", FieldType.EMAIL, 128, required=True),
        _text("Title", "Title"),
        _text("Department", "Department"),
        _field("IsActive", "Active", FieldType.BOOLEAN, default=True),
        _picklist("TimeZoneSidKey", "Time Zone", TIME_ZONES, required=True),
        _picklist("LocaleSidKey", "Locale", ("en_US", "en_GB", "de_DE"), required=True),
        _picklist("EmailEncodingKey", "Email Encoding", ("UTF-8", "ISO-8859-1"), required=True),
        _picklist("LanguageLocaleKey", "Language", ("en_US", "de", "fr"), required=True),
        _read_only("UserType", "User Type", FieldType.PICKLIST, picklist=("Standard",), default="Standard"),
        *_audit(owned=False),
    ),
    deletable=False,
)

ACCOUNT = SObjectType(
    "Account",
    "Account",
    "Accounts",
    "001",
    (
        *_head(),
        _text("Name", "Account Name", 255, required=True, name_field=True),
        _picklist("Type", "Account Type", ACCOUNT_TYPES),
        _picklist("Industry", "Industry", INDUSTRIES),
        _field("Website", "Website", FieldType.URL, 255),
        _field("Phone", "Account Phone", FieldType.PHONE, 40),
        _text("BillingCity", "Billing City", 40),
        _text("BillingCountry", "Billing Country"),
        _number("AnnualRevenue", "Annual Revenue", FieldType.CURRENCY),
        _field("NumberOfEmployees", "Employees", FieldType.INT, precision=8),
        _long_text("Description", "Account Description"),
        *_audit(),
        _picklist("Region__c", "Region", REGIONS, restricted=True),
        _field("Customer_Since__c", "Customer Since", FieldType.DATE),
    ),
)

CONTACT = SObjectType(
    "Contact",
    "Contact",
    "Contacts",
    "003",
    (
        *_head(),
        _reference("AccountId", "Account ID", ("Account",), "Account"),
        _text("LastName", "Last Name", required=True),
        _text("FirstName", "First Name", 40),
        _picklist("Salutation", "Salutation", SALUTATIONS),
        _person_name(),
        _field("Email", "Email", FieldType.EMAIL, 80),
        _field("Phone", "Business Phone", FieldType.PHONE, 40),
        _field("MobilePhone", "Mobile Phone", FieldType.PHONE, 40),
        _text("Title", "Title", 128),
        _text("Department", "Department"),
        _picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        _text("MailingCity", "Mailing City", 40),
        _text("MailingCountry", "Mailing Country"),
        _field("Birthdate", "Birthdate", FieldType.DATE),
        _long_text("Description", "Contact Description"),
        _field("HasOptedOutOfEmail", "Email Opt Out", FieldType.BOOLEAN, default=False),
        *_audit(),
        _picklist("Loyalty_Tier__c", "Loyalty Tier", LOYALTY_TIERS, restricted=True),
        _number("NPS_Score__c", "NPS Score", precision=3, scale=1),
        _picklist("customer_tier__c", "Customer Tier", CUSTOMER_TIERS, restricted=True),
    ),
)

LEAD = SObjectType(
    "Lead",
    "Lead",
    "Leads",
    "00Q",
    (
        *_head(),
        _text("LastName", "Last Name", required=True),
        _text("FirstName", "First Name", 40),
        _person_name(),
        _text("Title", "Title", 128),
        _text("Company", "Company", 255, required=True),
        _field("Email", "Email", FieldType.EMAIL, 80),
        _field("Phone", "Phone", FieldType.PHONE, 40),
        _picklist("Status", "Lead Status", LEAD_STATUSES, default=LEAD_STATUSES[0]),
        _picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        _picklist("Industry", "Industry", INDUSTRIES),
        _picklist("Rating", "Rating", RATINGS),
        _text("City", "City", 40),
        _text("Country", "Country"),
        _read_only("IsConverted", "Converted", FieldType.BOOLEAN, default=False),
        *_audit(),
        _number("Lead_Score__c", "Lead Score", precision=5, scale=0),
    ),
)

OPPORTUNITY = SObjectType(
    "Opportunity",
    "Opportunity",
    "Opportunities",
    "006",
    (
        *_head(),
        _reference("AccountId", "Account ID", ("Account",), "Account"),
        # The primary contact (API v46+): set on create only, and deleting the contact keeps the deal.
        _reference("ContactId", "Contact ID", ("Contact",), "Contact", updateable=False, cascade_delete=False),
        _text("Name", "Name", 120, required=True, name_field=True),
        _long_text("Description", "Description"),
        _picklist("StageName", "Stage", tuple(stage for stage, _ in STAGES), required=True),
        _number("Amount", "Amount", FieldType.CURRENCY),
        _number("Probability", "Probability (%)", FieldType.PERCENT, precision=3, scale=0),
        _field("CloseDate", "Close Date", FieldType.DATE, required=True),
        _picklist("Type", "Opportunity Type", OPPORTUNITY_TYPES),
        _text("NextStep", "Next Step", 255),
        _picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        _read_only("IsClosed", "Closed", FieldType.BOOLEAN, default=False),
        _read_only("IsWon", "Won", FieldType.BOOLEAN, default=False),
        *_audit(),
        _picklist("Deal_Source__c", "Deal Source", DEAL_SOURCES, restricted=True),
        _number("Contract_Length_Months__c", "Contract Length (Months)", precision=3, scale=0),
    ),
)

TASK = SObjectType(
    "Task",
    "Task",
    "Tasks",
    "00T",
    (
        *_head(),
        _reference("WhoId", "Name ID", ("Contact", "Lead"), "Who"),
        _reference("WhatId", "Related To ID", ("Account", "Opportunity"), "What"),
        _text("Subject", "Subject", 255),
        _field("ActivityDate", "Due Date Only", FieldType.DATE),
        _picklist("Status", "Status", TASK_STATUSES, default=TASK_STATUSES[0]),
        _picklist("Priority", "Priority", TASK_PRIORITIES, default="Normal"),
        _picklist("Type", "Type", TASK_TYPES),
        _long_text("Description", "Description"),
        _read_only("IsClosed", "Closed", FieldType.BOOLEAN, default=False),
        *_audit(),
        _number("Effort_Hours__c", "Effort (Hours)", precision=4, scale=1),
    ),
)

NOTE = SObjectType(
    "Note",
    "Note",
    "Notes",
    "002",
    (
        *_head(),
        _reference("ParentId", "Parent ID", ("Account", "Contact", "Opportunity"), "Parent", required=True),
        _text("Title", "Title", required=True, name_field=True),
        _field("IsPrivate", "Private", FieldType.BOOLEAN, default=False),
        _long_text("Body", "Body"),
        *_audit(),
    ),
)

CASE = SObjectType(
    "Case",
    "Case",
    "Cases",
    "500",
    (
        *_head(),
        # Deleting the contact or account a case names leaves the case, with the lookup cleared.
        _reference("ContactId", "Contact ID", ("Contact",), "Contact", cascade_delete=False),
        _reference("AccountId", "Account ID", ("Account",), "Account", cascade_delete=False),
        _text("Subject", "Subject", 255),
        _long_text("Description", "Description"),
        _picklist("Status", "Status", CASE_STATUSES, default="New"),
        _picklist("Priority", "Priority", CASE_PRIORITIES, default="Medium"),
        _picklist("Origin", "Case Origin", CASE_ORIGINS),
        _picklist("Type", "Case Type", CASE_TYPES),
        _picklist("Reason", "Case Reason", CASE_REASONS),
        _field("IsEscalated", "Escalated", FieldType.BOOLEAN, default=False),
        _read_only("IsClosed", "Closed", FieldType.BOOLEAN, default=False),
        _read_only("ClosedDate", "Closed Date", FieldType.DATETIME),
        *_audit(),
        _picklist("SLA_Tier__c", "SLA Tier", SLA_TIERS, restricted=True),
    ),
)

CASE_COMMENT = SObjectType(
    "CaseComment",
    "Case Comment",
    "Case Comments",
    "00a",
    (
        *_head(),
        # A comment stays on the case it was written on.
        _reference("ParentId", "Parent Case ID", ("Case",), "Parent", required=True, updateable=False),
        _field("IsPublished", "Published", FieldType.BOOLEAN, default=False),
        _field("CommentBody", "Body", FieldType.TEXTAREA, 4000),
        *_audit(owned=False),
    ),
)

# The org's configuration, queried with SOQL as one row (`SELECT DefaultCurrencyIsoCode FROM Organization`).
ORGANIZATION = SObjectType(
    "Organization",
    "Organization",
    "Organizations",
    "00D",
    (
        *_head(deletable=False),
        _read_only("Name", "Name", FieldType.STRING, length=80, name_field=True),
        _read_only("OrganizationType", "Edition", FieldType.PICKLIST, picklist=("Developer Edition",)),
        _read_only("IsSandbox", "Is Sandbox", FieldType.BOOLEAN),
        # The org's currency locale: its one currency, or in a multi-currency org the corporate one.
        _read_only("DefaultCurrencyIsoCode", "Currency ISO Code", FieldType.PICKLIST, length=255),
        *_audit(owned=False),
    ),
    deletable=False,
)

# The currencies of a multi-currency org (Salesforce has no such object in a single-currency one).
CURRENCY_TYPE = SObjectType(
    "CurrencyType",
    "Currency Type",
    "Currency Types",
    "01L",
    (
        *_head(deletable=False),
        _picklist("IsoCode", "Currency ISO Code", (), required=True),
        _number("ConversionRate", "Conversion Rate", precision=18, scale=6),
        _field("DecimalPlaces", "Decimal Places", FieldType.INT, precision=9),
        _field("IsActive", "Active", FieldType.BOOLEAN, default=False),
        _field("IsCorporate", "Corporate Currency", FieldType.BOOLEAN, default=False),
        *_audit(owned=False),
    ),
    deletable=False,
)


def with_currency(sobject: SObjectType, currencies: tuple[str, ...]) -> SObjectType:
    """The sObject in a multi-currency org: every record names its currency in CurrencyIsoCode, one of the
    org's active currencies, the corporate one (first) unless set. Added last, so no other field moves."""
    currency = _picklist("CurrencyIsoCode", "Currency ISO Code", currencies, restricted=True, default=currencies[0])
    return dataclasses.replace(sobject, fields=(*sobject.fields, currency))


SOBJECTS: dict[str, SObjectType] = {
    t.name: t for t in (ACCOUNT, CONTACT, LEAD, OPPORTUNITY, TASK, NOTE, USER, CASE, CASE_COMMENT)
}
_BY_LOWER_NAME = {name.lower(): t for name, t in SOBJECTS.items()}
BY_KEY_PREFIX = {t.key_prefix: t for t in SOBJECTS.values()}


def resolve_sobject(name: str) -> SObjectType | None:
    """sObject names are case-insensitive in URLs and SOQL."""
    return _BY_LOWER_NAME.get(name.lower())


class Schema:
    """One org's sObjects: the standard ones, with Contact replaced by a wider one in a wide org and Account
    and Opportunity by ones with a currency in a multi-currency org."""

    def __init__(self, replacements: tuple[SObjectType, ...] = (), additions: tuple[SObjectType, ...] = ()) -> None:
        """`additions`: the org's sObjects beyond the standard record types (Organization, CurrencyType)."""
        chosen = {**SOBJECTS, **{t.name: t for t in replacements}}
        self.sobjects: dict[str, SObjectType] = {name: chosen[name] for name in SOBJECTS}
        self.sobjects |= {t.name: t for t in additions}
        self._by_lower_name = {name.lower(): t for name, t in self.sobjects.items()}

    def resolve(self, name: str) -> SObjectType | None:
        """sObject names are case-insensitive in URLs and SOQL."""
        return self._by_lower_name.get(name.lower())


STANDARD_SCHEMA = Schema()


def sobject_of_id(record_id: str) -> SObjectType | None:
    return BY_KEY_PREFIX.get(record_id[:3])
