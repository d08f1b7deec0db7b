"""Deterministic seed data for the emulated org.

Faker builds small pools of names, companies, cities and titles once per seed; `random.Random(seed)`
combines them, which keeps 100,000 contacts to a few seconds. Nothing depends on the current time:
records are created and modified between 2024-01-01 and 2026-01-01, and a few percent of them sit
in the Recycle Bin (IsDeleted) with a delete-log entry.
"""

from __future__ import annotations

import functools
import gc
import random
from dataclasses import dataclass
from typing import Any

from connectors.kit.models import currency_exponent
from connectors.kit.sandbox_support import (
    DAY_MS,
    SEED_END_MS,
    SEED_START_MS,
    Seeder,
    domain_for,
    ms_of,
    name_pools,
    slug,
    unique_company_names,
)
from connectors.salesforce.sandbox.derived import derive
from connectors.salesforce.sandbox.schema import (
    ACCOUNT,
    ACCOUNT_TYPES,
    CASE,
    CASE_COMMENT,
    CASE_ORIGINS,
    CASE_PRIORITIES,
    CASE_REASONS,
    CASE_STATUSES,
    CASE_TYPES,
    CONTACT,
    CURRENCY_TYPE,
    CUSTOMER_TIERS,
    DEAL_SOURCES,
    INDUSTRIES,
    LEAD,
    LEAD_SOURCES,
    LEAD_STATUSES,
    LOYALTY_TIERS,
    NOTE,
    OPPORTUNITY,
    OPPORTUNITY_TYPES,
    ORGANIZATION,
    RATINGS,
    REGIONS,
    SALUTATIONS,
    SLA_TIERS,
    STAGE_PROBABILITY,
    STAGES,
    TASK,
    TASK_PRIORITIES,
    TASK_STATUSES,
    TASK_TYPES,
    TIME_ZONES,
    USER,
    Schema,
    SObjectType,
    with_currency,
)
from connectors.salesforce.sandbox.store import Row, SObjectTable
from connectors.salesforce.sandbox.timestamps import format_date, format_datetime
from connectors.salesforce.sandbox.wide import wide_contact, wide_values

USERS_CREATED_MS = ms_of(2023, 6, 1)
DELETED_SHARE = 0.03
PRIMARY_CONTACT_SHARE = 0.7  # of the opportunities whose account has live contacts

COUNTRIES = ("United States",) * 12 + ("United Kingdom", "Canada", "Germany", "France", "Australia", "Japan")
DEPARTMENTS = ("Sales", "Marketing", "Finance", "Operations", "Engineering", "Procurement", "IT", "Legal")
FREE_MAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me")
TOP_LEVEL_DOMAINS = ("com", "com", "com", "io", "co", "net")
PRODUCTS = ("Annual subscription", "Platform expansion", "Onboarding", "Enterprise upgrade", "Renewal", "Pilot")
NEXT_STEPS = ("Send proposal", "Schedule demo", "Legal review", "Security questionnaire", "Executive sponsor call")
TOPICS = (
    "pricing for the next renewal",
    "the rollout timeline",
    "integration requirements",
    "a security questionnaire",
    "budget approval",
    "feedback on the pilot",
    "contract terms",
)
ACCOUNT_NOTES = tuple(f"Interested in {topic}." for topic in TOPICS)
TASK_DESCRIPTIONS = tuple(f"Discuss {topic}." for topic in TOPICS)
CASE_SUBJECTS = (
    "Generator will not start",
    "Invoice shows the wrong amount",
    "Replacement part arrived damaged",
    "Installation scheduled twice",
    "Performance drops under load",
    "How do I add a second admin?",
)
CASE_REPLIES = (
    "Thanks for reporting this, we are looking into it.",
    "Could you send the serial number of the unit?",
    "A technician is booked for Thursday.",
    "Escalated to the engineering team.",
    "Internal: customer is on the premium plan, prioritise.",
    "The fix is deployed; please confirm it works for you.",
)
TASK_SUBJECTS = ("Follow up with {}", "Send proposal to {}", "Schedule demo for {}", "Call {} about next steps")


@functools.cache
def _defaults(sobject: SObjectType) -> tuple[tuple[str, Any], ...]:
    return tuple((f.name, f.default) for f in sobject.fields)


@dataclass(frozen=True)
class SalesforceSize:
    contacts: int = 250
    leads: int = 80
    accounts: int = 60
    opportunities: int = 80
    users: int = 8
    tasks: int = 90
    notes: int = 60
    cases: int = 40
    case_comments: int = 80
    # Fields on Contact: 0 keeps the standard Contact; e.g. 500 makes it as wide as a long-lived org's,
    # with both compound addresses and custom fields (see wide.py).
    contact_fields: int = 0
    # The org's currencies, the corporate one first. One: a single-currency org, as a new org is (records
    # have no CurrencyIsoCode). More: a multi-currency org (CurrencyIsoCode on accounts and opportunities,
    # CurrencyType lists the currencies).
    currencies: tuple[str, ...] = ("USD",)

    @property
    def multi_currency(self) -> bool:
        return len(self.currencies) > 1


# Conversion rates to the corporate currency a multi-currency org keeps (any will do: nothing converts).
CONVERSION_RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.0, "CHF": 0.88, "KWD": 0.31}


def schema_for(size: SalesforceSize) -> Schema:
    replacements = [wide_contact(size.contact_fields)] if size.contact_fields else []
    additions = [ORGANIZATION]
    if size.multi_currency:
        replacements += [with_currency(ACCOUNT, size.currencies), with_currency(OPPORTUNITY, size.currencies)]
        additions.append(CURRENCY_TYPE)
    return Schema(tuple(replacements), tuple(additions))


def organization_row(org_id: str, size: SalesforceSize) -> Row:
    """The org's one Organization record: its currency locale is its corporate currency."""
    values = {
        "Id": org_id,
        "Name": "xkit Sandbox",
        "OrganizationType": "Developer Edition",
        "IsSandbox": False,
        "DefaultCurrencyIsoCode": size.currencies[0],
    }
    return _configuration_row(ORGANIZATION, values)


def _configuration_row(sobject: SObjectType, values: dict[str, Any]) -> Row:
    """A record of the org's setup, made when the org was (no random draw: seeded records stay as they were)."""
    created = format_datetime(USERS_CREATED_MS)
    values |= {"CreatedDate": created, "LastModifiedDate": created, "SystemModstamp": created}
    return [values.get(name, default) for name, default in _defaults(sobject)]


def seed_org(seed: int, size: SalesforceSize) -> dict[str, SObjectTable]:
    # A large org is millions of small containers that live as long as the sandbox. Cyclic
    # collection passes would only rescan them (pausing a request for 100+ ms), so collection
    # waits until the seed is built, which is then frozen out of later passes.
    collecting = gc.isenabled()
    gc.disable()
    try:
        tables = _Seeder(seed, size).run()
    finally:
        if collecting:
            gc.enable()
    gc.freeze()
    return tables


class _Seeder(Seeder):
    def __init__(self, seed: int, size: SalesforceSize) -> None:
        super().__init__(seed)
        # Opportunity.ContactId came after the rest, so it draws from its own stream and leaves
        # every other seeded value as it was.
        self.contact_rng = random.Random(f"salesforce-sandbox:{seed}:opportunity-contacts")
        self.size = size
        self.schema = schema_for(size)
        self.contact = self.schema.sobjects[CONTACT.name]
        # The wide Contact's extra fields draw from their own stream, so the rest seeds as in a narrow org.
        self.wide_rng = random.Random(f"salesforce-sandbox:{seed}:wide-contact")
        # So do the currencies of a multi-currency org's records.
        self.currency_rng = random.Random(f"salesforce-sandbox:{seed}:currencies")
        # And the contacts' customer_tier__c, added later still.
        self.tier_rng = random.Random(f"salesforce-sandbox:{seed}:contact-tiers")
        self.pools = name_pools(seed, 400)
        self.tables = {t.name: SObjectTable(t) for t in self.schema.sobjects.values()}
        self.deletions: dict[str, list[tuple[str, str]]] = {name: [] for name in self.tables}
        self.owner_ids: list[str] = []
        self.used_emails: dict[str, int] = {}

    def run(self) -> dict[str, SObjectTable]:
        users = self.users()
        accounts = self.accounts()
        contacts = self.contacts(accounts)
        leads = self.leads()
        opportunities = self.opportunities(accounts, contacts)
        tasks = self.tasks(contacts, leads, opportunities)
        notes = self.notes(contacts, accounts, opportunities)
        # Cases and their comments came later and are seeded last, so every other seeded value stayed as it was.
        cases = self.cases(contacts)
        case_comments = self.case_comments(cases)
        seeded = {
            USER: users,
            ACCOUNT: accounts,
            CONTACT: contacts,
            LEAD: leads,
            OPPORTUNITY: opportunities,
            TASK: tasks,
            NOTE: notes,
            CASE: cases,
            CASE_COMMENT: case_comments,
        }
        if self.size.multi_currency:
            self.currencies(accounts, ACCOUNT, "AnnualRevenue")
            self.currencies(opportunities, OPPORTUNITY, "Amount")
            seeded[CURRENCY_TYPE] = self.currency_types()
        for sobject, rows in seeded.items():
            self.tables[sobject.name].load(rows, self.deletions[sobject.name])
        return self.tables

    # ---- building blocks -------------------------------------------------------------------

    def row(self, sobject: SObjectType, values: dict[str, Any], *, created_ms: int | None = None) -> Row:
        """A complete row: `values` plus ids, audit fields and booleans; a few land in the Recycle Bin."""
        table = self.tables[sobject.name]
        rng = self.rng
        # Seeded times are whole seconds, as Salesforce stores them.
        if created_ms is None:
            created_ms = SEED_START_MS + int(rng.random() * (SEED_END_MS - DAY_MS - SEED_START_MS)) // 1000 * 1000
        # Most records change soon after creation; a long tail is touched months later.
        modified_ms = created_ms + int((SEED_END_MS - 1000 - created_ms) * rng.random() ** 3) // 1000 * 1000
        modstamp_ms = modified_ms
        if rng.random() < 0.1:  # a system update (a recalculation, a sharing change) moved only the modstamp
            modstamp_ms = min(modified_ms + rng.randrange(1, 3600) * 1000, SEED_END_MS - 1000)
        values["Id"] = record_id = table.allocate_id(gap=1 + int(rng.random() * 3))
        creator = self.pick(self.owner_ids) if self.owner_ids else None
        is_deleted = sobject.deleted_at is not None and rng.random() < DELETED_SHARE
        if is_deleted:
            deleted_ms = modstamp_ms + int((SEED_END_MS - 1000 - modstamp_ms) * rng.random()) // 1000 * 1000
            modified_ms = modstamp_ms = deleted_ms
            self.deletions[sobject.name].append((format_datetime(deleted_ms), record_id))
        if sobject.deleted_at is not None:
            values["IsDeleted"] = is_deleted
        if "ownerid" in sobject.positions:
            values.setdefault("OwnerId", creator)
        values["CreatedDate"] = format_datetime(created_ms)
        values["LastModifiedDate"] = format_datetime(modified_ms)
        values["SystemModstamp"] = format_datetime(modstamp_ms)
        values["CreatedById"] = creator
        values["LastModifiedById"] = self.pick(self.owner_ids) if self.owner_ids else creator
        row = [values.get(name, default) for name, default in _defaults(self.schema.sobjects[sobject.name])]
        derive(sobject, row)
        return row

    def currencies(self, rows: list[Row], sobject: SObjectType, amount_field: str) -> None:
        """A multi-currency org's records: most in the corporate currency (the field's default), some in
        another; amounts in a currency with cents sometimes have them."""
        currency = self.schema.sobjects[sobject.name].position("CurrencyIsoCode")
        amount = sobject.position(amount_field)
        rng = self.currency_rng
        for row in rows:
            if rng.random() < 0.4:
                row[currency] = rng.choice(self.size.currencies[1:])
            if row[amount] is not None and currency_exponent(row[currency]) and rng.random() < 0.3:
                row[amount] = float(f"{int(row[amount])}.{rng.randrange(1, 100):02d}")

    def currency_types(self) -> list[Row]:
        corporate = self.size.currencies[0]
        return [
            _configuration_row(
                CURRENCY_TYPE,
                {
                    "Id": self.tables[CURRENCY_TYPE.name].allocate_id(),
                    "IsoCode": code,
                    "ConversionRate": CONVERSION_RATES.get(code, 1.0) / CONVERSION_RATES.get(corporate, 1.0),
                    "DecimalPlaces": currency_exponent(code),
                    "IsActive": True,
                    "IsCorporate": code == corporate,
                },
            )
            for code in self.size.currencies
        ]

    def person(self) -> tuple[str, str]:
        return self.pick(self.pools.first_names), self.pick(self.pools.last_names)

    def email(self, first: str, last: str, domain: str) -> str:
        local = f"{slug(first)}.{slug(last)}"
        key = f"{local}@{domain}"
        count = self.used_emails.get(key, 0) + 1
        self.used_emails[key] = count
        return key if count == 1 else f"{local}{count}@{domain}"

    def phone(self) -> str:
        random = self.rng.random
        return f"({201 + int(random() * 789)}) 555-{int(random() * 10_000):04d}"

    # ---- objects ---------------------------------------------------------------------------

    def users(self) -> list[Row]:
        rows = []
        for index in range(self.size.users):
            first, last = self.person()
            email = f"{slug(first)}.{slug(last)}@sandbox-org.example.com"
            values: dict[str, Any] = {
                "Username": email,
                "FirstName": first,
                "LastName": last,
                "Alias": (first[:1] + last[:4]).lower(),
                "Email": email,
                "Title": self.pick(("Account Executive", "Sales Manager", "SDR", "Customer Success Manager")),
                "Department": "Sales",
                "IsActive": index == 0 or self.rng.random() < 0.9,
                "TimeZoneSidKey": self.pick(TIME_ZONES),
                "LocaleSidKey": "en_US",
                "EmailEncodingKey": "UTF-8",
                "LanguageLocaleKey": "en_US",
            }
            created_ms = USERS_CREATED_MS + index * 7 * DAY_MS
            row = self.row(USER, values, created_ms=created_ms)
            rows.append(row)
            self.owner_ids.append(row[0])
        # The first user is the org's admin: it created and last edited every user.
        for row in rows:
            row[USER.position("CreatedById")] = row[USER.position("LastModifiedById")] = rows[0][0]
        return rows

    def accounts(self) -> list[Row]:
        rows = []
        taken_domains: set[str] = set()
        for name in unique_company_names(self.pools.companies, self.size.accounts):
            domain = domain_for(name, self.pick(TOP_LEVEL_DOMAINS), taken_domains)
            values: dict[str, Any] = {
                "Name": name,
                "Type": self.pick(ACCOUNT_TYPES),
                "Industry": self.pick(INDUSTRIES),
                "Website": f"https://www.{domain}",
                "Phone": self.phone(),
                "BillingCity": self.pick(self.pools.cities),
                "BillingCountry": self.pick(COUNTRIES),
                "AnnualRevenue": float(self.rng.randrange(200, 500_000) * 1000),
                "NumberOfEmployees": self.pick((5, 12, 25, 50, 120, 250, 800, 2500, 10000)),
                "Description": self.maybe(0.3, ACCOUNT_NOTES),
                "Region__c": self.pick(REGIONS) if self.rng.random() < 0.8 else None,
            }
            row = self.row(ACCOUNT, values)
            if self.rng.random() < 0.4:
                since_ms = SEED_START_MS - self.rng.randrange(30, 2000) * DAY_MS
                row[ACCOUNT.position("Customer_Since__c")] = format_date(since_ms)
            rows.append(row)
        return rows

    def contacts(self, accounts: list[Row]) -> list[Row]:
        rows = []
        rng = self.rng
        account_name, website = ACCOUNT.position("Name"), ACCOUNT.position("Website")
        for _ in range(self.size.contacts):
            first, last = self.person()
            account = self.pick(accounts) if accounts and rng.random() < 0.85 else None
            domain = account[website].removeprefix("https://www.") if account else self.pick(FREE_MAIL_DOMAINS)
            values: dict[str, Any] = {
                "AccountId": account[0] if account else None,
                "FirstName": first,
                "LastName": last,
                "Salutation": self.maybe(0.5, SALUTATIONS),
                "Email": self.email(first, last, domain),
                "Phone": self.phone() if rng.random() < 0.8 else None,
                "MobilePhone": self.phone() if rng.random() < 0.4 else None,
                "Title": self.maybe(0.7, self.pools.job_titles),
                "Department": self.maybe(0.5, DEPARTMENTS),
                "LeadSource": self.maybe(0.6, LEAD_SOURCES),
                "MailingCity": self.maybe(0.6, self.pools.cities),
                "MailingCountry": self.maybe(0.6, COUNTRIES),
                "HasOptedOutOfEmail": rng.random() < 0.05,
                "Loyalty_Tier__c": self.maybe(0.3, LOYALTY_TIERS),
                "NPS_Score__c": float(rng.randint(0, 10)) if rng.random() < 0.25 else None,
                "customer_tier__c": self.tier_rng.choice(CUSTOMER_TIERS) if self.tier_rng.random() < 0.6 else None,
            }
            if rng.random() < 0.3:
                values["Birthdate"] = format_date(ms_of(1960, 1, 1) + rng.randrange(0, 14_000) * DAY_MS)
            if account is not None and rng.random() < 0.2:
                values["Description"] = f"Works at {account[account_name]}."
            row = self.row(self.contact, values)
            if self.contact is not CONTACT:
                wide_values(self.wide_rng, self.contact, row)
                derive(self.contact, row)
            rows.append(row)
        return rows

    def leads(self) -> list[Row]:
        rows = []
        rng = self.rng
        for _ in range(self.size.leads):
            first, last = self.person()
            company = self.pick(self.pools.companies)
            domain = domain_for(company, "com", set())
            status = self.pick(LEAD_STATUSES)
            values: dict[str, Any] = {
                "FirstName": first,
                "LastName": last,
                "Title": self.maybe(0.7, self.pools.job_titles),
                "Company": company,
                "Email": self.email(first, last, domain),
                "Phone": self.phone() if rng.random() < 0.7 else None,
                "Status": status,
                "LeadSource": self.pick(LEAD_SOURCES),
                "Industry": self.maybe(0.6, INDUSTRIES),
                "Rating": self.maybe(0.5, RATINGS),
                "City": self.maybe(0.6, self.pools.cities),
                "Country": self.maybe(0.6, COUNTRIES),
                "IsConverted": status == "Closed - Converted",
                "Lead_Score__c": float(rng.randint(0, 100)) if rng.random() < 0.5 else None,
            }
            rows.append(self.row(LEAD, values))
        return rows

    def opportunities(self, accounts: list[Row], contacts: list[Row]) -> list[Row]:
        rows = []
        rng = self.rng
        account_name = ACCOUNT.position("Name")
        contacts_of: dict[str, list[str]] = {}
        contact_account, contact_deleted = CONTACT.position("AccountId"), CONTACT.deleted_at
        for contact in contacts:
            if contact[contact_account] and not (contact_deleted is not None and contact[contact_deleted]):
                contacts_of.setdefault(contact[contact_account], []).append(contact[0])
        close_date = OPPORTUNITY.position("CloseDate")
        created_date = OPPORTUNITY.position("CreatedDate")
        for _ in range(self.size.opportunities):
            account = self.pick(accounts) if accounts else None
            label = account[account_name] if account else self.pick(self.pools.companies)
            stage = self.pick(STAGES)[0]
            values: dict[str, Any] = {
                "AccountId": account[0] if account else None,
                "Name": f"{label} - {self.pick(PRODUCTS)}",
                "StageName": stage,
                "Amount": float(rng.randrange(10, 5000) * 50),
                "Probability": STAGE_PROBABILITY[stage],
                "Type": self.maybe(0.8, OPPORTUNITY_TYPES),
                "NextStep": self.maybe(0.4, NEXT_STEPS),
                "LeadSource": self.maybe(0.6, LEAD_SOURCES),
                "Deal_Source__c": self.maybe(0.6, DEAL_SOURCES),
                "Contract_Length_Months__c": self.maybe(0.4, (12.0, 24.0, 36.0)),
            }
            candidates = contacts_of.get(account[0], []) if account else []
            if candidates and self.contact_rng.random() < PRIMARY_CONTACT_SHARE:
                values["ContactId"] = candidates[int(self.contact_rng.random() * len(candidates))]
            row = self.row(OPPORTUNITY, values)
            created = _date_ms(row[created_date])
            row[close_date] = format_date(created + rng.randrange(10, 180) * DAY_MS)
            rows.append(row)
        return rows

    def tasks(self, contacts: list[Row], leads: list[Row], opportunities: list[Row]) -> list[Row]:
        rows = []
        rng = self.rng
        contact_name, contact_account = CONTACT.position("Name"), CONTACT.position("AccountId")
        lead_name = LEAD.position("Name")
        activity_date, created_date = TASK.position("ActivityDate"), TASK.position("CreatedDate")
        for _ in range(self.size.tasks):
            what_id = None
            if leads and (not contacts or rng.random() < 0.2):
                lead = self.pick(leads)
                who_id, name = lead[0], lead[lead_name]
            elif contacts:
                contact = self.pick(contacts)
                who_id, name = contact[0], contact[contact_name]
                if opportunities and rng.random() < 0.2:
                    what_id = self.pick(opportunities)[0]
                elif rng.random() < 0.5:
                    what_id = contact[contact_account]
            else:
                who_id, name = None, "a prospect"
            values: dict[str, Any] = {
                "WhoId": who_id,
                "WhatId": what_id,
                "Subject": self.pick(TASK_SUBJECTS).format(name),
                "Status": self.pick(TASK_STATUSES),
                "Priority": self.pick(TASK_PRIORITIES),
                "Type": self.maybe(0.7, TASK_TYPES),
                "Description": self.maybe(0.5, TASK_DESCRIPTIONS),
                "Effort_Hours__c": self.maybe(0.3, (0.5, 1.0, 2.0, 4.0, 8.0)),
            }
            row = self.row(TASK, values)
            row[activity_date] = format_date(_date_ms(row[created_date]) + rng.randrange(1, 30) * DAY_MS)
            rows.append(row)
        return rows

    def notes(self, contacts: list[Row], accounts: list[Row], opportunities: list[Row]) -> list[Row]:
        rows = []
        parents = [group for group in (contacts, accounts, opportunities) if group]
        for _ in range(self.size.notes if parents else 0):
            roll = self.rng.random()
            group = parents[0] if roll < 0.5 or len(parents) == 1 else parents[1 if roll < 0.8 else -1]
            topic = self.pick(TOPICS)
            values: dict[str, Any] = {
                "ParentId": self.pick(group)[0],
                "Title": f"Call notes: {topic}",
                "IsPrivate": self.rng.random() < 0.1,
                "Body": f"Discussed {topic}. Next step: {self.pick(NEXT_STEPS).lower()}.",
            }
            rows.append(self.row(NOTE, values))
        return rows

    def cases(self, contacts: list[Row]) -> list[Row]:
        rows = []
        rng = self.rng
        contact_account = CONTACT.position("AccountId")
        for _ in range(self.size.cases):
            contact = self.pick(contacts) if contacts and rng.random() < 0.9 else None
            status = self.pick(CASE_STATUSES)
            values: dict[str, Any] = {
                "ContactId": contact[0] if contact else None,
                "AccountId": contact[contact_account] if contact else None,
                "Subject": self.pick(CASE_SUBJECTS),
                "Description": f"Customer wrote in about {self.pick(TOPICS)}.",
                "Status": status,
                "Priority": self.pick(CASE_PRIORITIES),
                "Origin": self.pick(CASE_ORIGINS),
                "Type": self.maybe(0.7, CASE_TYPES),
                "Reason": self.maybe(0.5, CASE_REASONS),
                "IsEscalated": status == "Escalated",
                "SLA_Tier__c": self.maybe(0.4, SLA_TIERS),
            }
            rows.append(self.row(CASE, values))
        return rows

    def case_comments(self, cases: list[Row]) -> list[Row]:
        rows = []
        case_created = CASE.position("CreatedDate")
        for _ in range(self.size.case_comments if cases else 0):
            case = self.pick(cases)
            values: dict[str, Any] = {
                "ParentId": case[0],
                "CommentBody": self.pick(CASE_REPLIES),
                "IsPublished": self.rng.random() < 0.7,
            }
            created_ms = _date_ms(case[case_created]) + self.rng.randrange(1, 20) * DAY_MS
            rows.append(self.row(CASE_COMMENT, values, created_ms=min(created_ms, SEED_END_MS - 2 * DAY_MS)))
        return rows


def _date_ms(rendered_datetime: str) -> int:
    year, month, day = (int(part) for part in rendered_datetime[:10].split("-"))
    return ms_of(year, month, day)
