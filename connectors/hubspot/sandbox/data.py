"""Deterministic seed data for the emulated portal.

Faker builds small pools of names, companies, cities and job titles once; `random.Random(seed)`
combines them, which keeps 100,000 contacts to a couple of seconds. Nothing depends on the
current time: records are created and modified between 2024-01-01 and 2026-01-01.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

from connectors.hubspot.sandbox.pipelines import ESCALATIONS_PIPELINE, RENEWALS_PIPELINE, SUPPORT_PIPELINE
from connectors.hubspot.sandbox.schema import (
    ACCOUNT_TIERS,
    ADDITIONAL_CURRENCIES,
    ASSOCIATION_TYPES,
    COMPANY_CURRENCY,
    CUSTOMER_TIERS,
    DEAL_SOURCES,
    DEAL_STAGES,
    FAVORITE_COLORS,
    INDUSTRIES,
    LIFECYCLE_STAGES,
    LOYALTY_TIERS,
    NOTE_SENTIMENTS,
    SUPPORT_TIERS,
    TASK_PRIORITIES,
    TASK_SOURCES,
    TASK_STATUSES,
    TASK_TYPES,
    TICKET_CATEGORIES,
    TICKET_PRIORITIES,
    TICKET_SOURCES,
    AssociationType,
    PropertyDef,
    widened,
)
from connectors.hubspot.sandbox.schema import PROPERTIES as NARROW_PROPERTIES
from connectors.hubspot.sandbox.store import Record
from connectors.hubspot.sandbox.timestamps import iso_date, iso_ms
from connectors.kit.sandbox_support import (
    DAY_MS,
    SEED_END_MS,
    SEED_START_MS,
    Seeder,
    domain_for,
    name_pools,
    slug,
    unique_company_names,
)

FIRST_IDS = {
    "contacts": 30_000_000_001,
    "companies": 5_000_000_001,
    "deals": 4_000_000_001,
    "notes": 60_000_000_001,
    "tasks": 70_000_000_001,
    "tickets": 1_500_000_001,
}
FIRST_OWNER_ID = 150_000_001
FIRST_USER_ID = 7_000_001

FREE_MAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "hotmail.com", "proton.me")
COUNTRIES = (
    ("United States", 60),
    ("United Kingdom", 9),
    ("Canada", 7),
    ("Germany", 6),
    ("France", 4),
    ("Australia", 4),
    ("Netherlands", 3),
    ("Spain", 3),
    ("Brazil", 2),
    ("India", 2),
)
TOP_LEVEL_DOMAINS = ("com", "com", "com", "io", "co", "net")
DEAL_PRODUCTS = (
    "Annual subscription",
    "Platform expansion",
    "Onboarding package",
    "Enterprise upgrade",
    "Renewal",
    "Pilot",
    "Professional services",
    "Seat expansion",
)
NOTE_TOPICS = (
    "pricing for the next renewal",
    "the rollout timeline",
    "integration requirements",
    "a security questionnaire",
    "budget approval",
    "feedback on the pilot",
    "expanding to a second team",
    "contract terms",
)
TASK_SUBJECTS = (
    "Follow up with {name}",
    "Send proposal to {name}",
    "Schedule demo for {name}",
    "Check in on onboarding with {name}",
    "Prepare renewal quote for {name}",
    "Call {name} about next steps",
)
TEAMS = (("4101", "Sales"), ("4102", "Customer Success"))
TICKET_PROBLEMS = (
    "Cannot log in after the password reset",
    "Invoice shows the wrong amount",
    "Export to CSV times out",
    "Request: dark mode for the dashboard",
    "Webhook deliveries are delayed",
    "How do I add a second admin?",
    "Sync stopped on Monday",
    "Charged twice this month",
)


@dataclass(frozen=True)
class SandboxSize:
    contacts: int = 250
    companies: int = 60
    deals: int = 80
    owners: int = 8
    notes: int = 120
    tasks: int = 90
    tickets: int = 40
    # How many properties contacts have; 0 keeps the narrow schema. WIDE_CONTACT_PROPERTIES (600) is
    # a realistic portal's width: the properties API lists them all and many records carry values.
    contact_properties: int = 0


# Of the properties a wide portal adds, the share a contact has a value for.
WIDE_FILL_RATE = 0.3


@dataclass(frozen=True)
class Owner:
    id: str
    email: str
    first_name: str
    last_name: str
    user_id: int
    team_id: str
    team_name: str
    created_ms: int
    updated_ms: int


@dataclass
class SeedData:
    owners: list[Owner]
    records: dict[str, list[Record]]
    links: list[tuple[int, int, tuple[AssociationType, ...]]] = field(default_factory=list)
    # The portal's property definitions, per object type.
    properties: dict[str, dict[str, PropertyDef]] = field(default_factory=lambda: NARROW_PROPERTIES)


class _Seeder(Seeder):
    def __init__(self, seed: int, size: SandboxSize) -> None:
        super().__init__(seed)
        # Values of the wide properties come from their own stream, so a narrow portal's seed is unchanged.
        self.wide_rng = random.Random(f"hubspot-wide:{seed}")
        # So do tickets, which came later: adding them changed no other seeded value.
        self.ticket_rng = random.Random(f"hubspot-tickets:{seed}")
        # And deal currencies, which came later still.
        self.currency_rng = random.Random(f"hubspot-deal-currencies:{seed}")
        # And the contacts' `tier`, added later still.
        self.tier_rng = random.Random(f"hubspot-contact-tiers:{seed}")
        self.size = size
        self.properties = widened(NARROW_PROPERTIES, size.contact_properties)
        self.wide_contact_properties = [
            p for name, p in self.properties["contacts"].items() if name not in NARROW_PROPERTIES["contacts"]
        ]
        self.pools = name_pools(seed, min(max(size.companies, 50), 400))
        self.next_ids = dict(FIRST_IDS)
        self.links: list[tuple[int, int, tuple[AssociationType, ...]]] = []
        self.owner_ids: list[str] = []
        self.company_contacts: dict[int, list[int]] = {}
        self.contact_company: dict[int, int] = {}
        country_weights = list(accumulate(weight for _, weight in COUNTRIES))
        self._country_cumulative = country_weights
        self._country_total = country_weights[-1]

    def run(self) -> SeedData:
        owners = self.owners()
        companies = self.companies()
        contacts = self.contacts(companies)
        deals = self.deals(companies, contacts)
        notes = self.activities("notes", contacts, deals, self.note_properties, (202, 190, 214))
        tasks = self.activities("tasks", contacts, deals, self.task_properties, (204, 192, 216))
        tickets = self.tickets(contacts)
        records = {
            "companies": companies,
            "contacts": contacts,
            "deals": deals,
            "notes": notes,
            "tasks": tasks,
            "tickets": tickets,
        }
        return SeedData(owners=owners, records=records, links=self.links, properties=self.properties)

    def new_id(self, object_type: str) -> int:
        record_id = self.next_ids[object_type]
        self.next_ids[object_type] += self.rng.randint(1, 3)
        return record_id

    def timestamps(self) -> tuple[int, int]:
        created = SEED_START_MS + int(self.rng.random() * (SEED_END_MS - DAY_MS - SEED_START_MS))
        # Most records change soon after creation; a long tail is touched months later.
        updated = created + int((SEED_END_MS - 1 - created) * self.rng.random() ** 3)
        return created, updated

    def country(self) -> str:
        pick = self.rng.randrange(self._country_total)
        return COUNTRIES[bisect_left(self._country_cumulative, pick + 1)][0]

    def maybe_owner(self, props: dict[str, str], chance: float = 0.9) -> None:
        if self.owner_ids and self.rng.random() < chance:
            props["hubspot_owner_id"] = self.pick(self.owner_ids)

    def owners(self) -> list[Owner]:
        owners = []
        for index in range(self.size.owners):
            first = self.pick(self.pools.first_names)
            last = self.pick(self.pools.last_names)
            created = SEED_START_MS - self.rng.randrange(30, 365) * DAY_MS
            team_id, team_name = TEAMS[index % len(TEAMS)]
            owners.append(
                Owner(
                    id=str(FIRST_OWNER_ID + index * 7),
                    email=f"{slug(first)}.{slug(last)}@sandbox-portal.example",
                    first_name=first,
                    last_name=last,
                    user_id=FIRST_USER_ID + index * 13,
                    team_id=team_id,
                    team_name=team_name,
                    created_ms=created,
                    updated_ms=created + self.rng.randrange(0, 200) * DAY_MS,
                )
            )
        self.owner_ids = [owner.id for owner in owners]
        return owners

    def companies(self) -> list[Record]:
        names = unique_company_names(self.pools.companies, self.size.companies)
        domains: set[str] = set()
        records = []
        for name in names:
            domain = domain_for(name, self.pick(TOP_LEVEL_DOMAINS), domains)
            props = {
                "name": name,
                "domain": domain,
                "industry": self.pick(INDUSTRIES),
                "phone": self.phone(),
                "city": self.pick(self.pools.cities),
                "country": self.country(),
                "numberofemployees": str(self.pick((5, 12, 25, 50, 120, 250, 800, 2500, 10000))),
                "annualrevenue": str(self.rng.randrange(200, 500_000) * 1000),
            }
            self.maybe_owner(props)
            if self.rng.random() < 0.5:
                props["account_tier"] = self.pick(ACCOUNT_TIERS)
            created, updated = self.timestamps()
            if self.rng.random() < 0.4:
                props["renewal_date"] = iso_date(SEED_END_MS + self.rng.randrange(0, 365) * DAY_MS)
            records.append(Record(self.new_id("companies"), props, created, updated))
        return records

    def contacts(self, companies: list[Record]) -> list[Record]:
        used_emails: dict[str, int] = {}
        records = []
        primary = (ASSOCIATION_TYPES[1],)
        for _ in range(self.size.contacts):
            first = self.pick(self.pools.first_names)
            last = self.pick(self.pools.last_names)
            company = self.pick(companies) if companies and self.rng.random() < 0.85 else None
            domain = company.properties["domain"] if company else self.pick(FREE_MAIL_DOMAINS)
            props = {"firstname": first, "lastname": last, "email": _unique_email(first, last, domain, used_emails)}
            if self.rng.random() < 0.8:
                props["phone"] = self.phone()
            if self.rng.random() < 0.7:
                props["jobtitle"] = self.pick(self.pools.job_titles)
            if company:
                props["company"] = company.properties["name"]
                props["city"] = company.properties["city"]
                props["country"] = company.properties["country"]
            elif self.rng.random() < 0.6:
                props["city"] = self.pick(self.pools.cities)
                props["country"] = self.country()
            props["lifecyclestage"] = self.pick(LIFECYCLE_STAGES[:6])
            self.maybe_owner(props)
            if self.rng.random() < 0.4:
                props["favorite_color"] = self.pick(FAVORITE_COLORS)
            if self.rng.random() < 0.3:
                props["loyalty_tier"] = self.pick(LOYALTY_TIERS)
            if self.rng.random() < 0.25:
                props["nps_score"] = str(self.rng.randint(0, 10))
            if self.tier_rng.random() < 0.6:
                props["tier"] = self.tier_rng.choice(CUSTOMER_TIERS)
            created, updated = self.timestamps()
            self.wide_values(props, created, updated)
            record = Record(self.new_id("contacts"), props, created, updated)
            records.append(record)
            if company:
                self.links.append((record.id, company.id, primary))
                self.company_contacts.setdefault(company.id, []).append(record.id)
                self.contact_company[record.id] = company.id
        return records

    def deal_currency(self, props: dict[str, str]) -> None:
        """Most deals name their currency (the company currency or another); some, as deals made before
        the portal turned multi-currency on, name none and are in the company currency. A JPY deal's amount
        has no decimals; others sometimes have cents."""
        draw = self.currency_rng.random()
        if draw < 0.3:
            return
        currency = COMPANY_CURRENCY if draw < 0.6 else self.currency_rng.choice(ADDITIONAL_CURRENCIES)
        props["deal_currency_code"] = currency
        if currency != "JPY" and self.currency_rng.random() < 0.3:
            props["amount"] = f"{props['amount']}.{self.currency_rng.randrange(1, 100):02d}"

    def deals(self, companies: list[Record], contacts: list[Record]) -> list[Record]:
        records = []
        to_company = (ASSOCIATION_TYPES[5],)
        to_contact = (ASSOCIATION_TYPES[3],)
        for _ in range(self.size.deals):
            company = self.pick(companies) if companies else None
            created, updated = self.timestamps()
            label = company.properties["name"] if company else self.pick(self.pools.last_names)
            props = {
                "dealname": f"{label} - {self.pick(DEAL_PRODUCTS)}",
                "amount": str(self.rng.randrange(10, 5000) * 50),
                "dealstage": self.pick(DEAL_STAGES),
                "pipeline": "default",
                "closedate": iso_ms(created + self.rng.randrange(10, 180) * DAY_MS),
            }
            self.maybe_owner(props)
            if self.rng.random() < 0.6:
                props["deal_source"] = self.pick(DEAL_SOURCES)
            if self.rng.random() < 0.4:
                props["contract_length_months"] = str(self.pick((12, 24, 36)))
            self.deal_currency(props)
            record = Record(self.new_id("deals"), props, created, updated)
            if int(record.id) % RENEWAL_EVERY == 0:
                # Every fifth deal renews in the custom pipeline (decided by id: no random draw, so every
                # other seeded value stays as it was).
                stages = RENEWALS_PIPELINE.stages
                props["pipeline"] = RENEWALS_PIPELINE.id
                props["dealstage"] = stages[DEAL_STAGES.index(props["dealstage"]) % len(stages)].id
            records.append(record)
            if company:
                self.links.append((record.id, company.id, to_company))
            people = self.company_contacts.get(company.id, []) if company else []
            pool = people or [contact.id for contact in self.rng.sample(contacts, min(3, len(contacts)))]
            for contact_id in self.rng.sample(pool, min(len(pool), self.rng.randint(1, 3))):
                self.links.append((record.id, contact_id, to_contact))
        return records

    def activities(
        self,
        object_type: str,
        contacts: list[Record],
        deals: list[Record],
        properties: Callable[[str, int], dict[str, str]],
        type_ids: tuple[int, int, int],
    ) -> list[Record]:
        to_contact, to_company, to_deal = (ASSOCIATION_TYPES[t] for t in type_ids)
        count = self.size.notes if object_type == "notes" else self.size.tasks
        records = []
        for _ in range(count):
            contact = self.pick(contacts) if contacts else None
            created, updated = self.timestamps()
            name = f"{contact.properties['firstname']} {contact.properties['lastname']}" if contact else "a prospect"
            record = Record(self.new_id(object_type), properties(name, created), created, updated)
            records.append(record)
            if contact is None:
                continue
            self.links.append((record.id, contact.id, (to_contact,)))
            company_id = self.contact_company.get(contact.id)
            if company_id is not None and self.rng.random() < 0.6:
                self.links.append((record.id, company_id, (to_company,)))
            if deals and self.rng.random() < 0.3:
                self.links.append((record.id, self.pick(deals).id, (to_deal,)))
        return records

    def tickets(self, contacts: list[Record]) -> list[Record]:
        """Tickets raised by contacts, associated with them and their companies (HubSpot's primary link)."""
        rng = self.ticket_rng
        to_contact, to_company = (ASSOCIATION_TYPES[16],), (ASSOCIATION_TYPES[26],)
        records = []
        for _ in range(self.size.tickets):
            pipeline = ESCALATIONS_PIPELINE if rng.random() < 0.2 else SUPPORT_PIPELINE
            stage = pipeline.stages[int(rng.random() * len(pipeline.stages))]
            created = SEED_START_MS + int(rng.random() * (SEED_END_MS - DAY_MS - SEED_START_MS))
            updated = created + int((SEED_END_MS - 1 - created) * rng.random() ** 3)
            props = {
                "subject": TICKET_PROBLEMS[int(rng.random() * len(TICKET_PROBLEMS))],
                "content": f"Reported through the help widget. {NOTE_TOPICS[int(rng.random() * len(NOTE_TOPICS))]}",
                "hs_pipeline": pipeline.id,
                "hs_pipeline_stage": stage.id,
                "hs_ticket_priority": TICKET_PRIORITIES[int(rng.random() * len(TICKET_PRIORITIES))],
                "hs_ticket_category": TICKET_CATEGORIES[int(rng.random() * len(TICKET_CATEGORIES))],
                "source_type": TICKET_SOURCES[int(rng.random() * len(TICKET_SOURCES))],
            }
            if stage.closed:
                props["closed_date"] = iso_ms(updated)
            if self.owner_ids and rng.random() < 0.8:
                props["hubspot_owner_id"] = self.owner_ids[int(rng.random() * len(self.owner_ids))]
            if rng.random() < 0.4:
                props["support_tier"] = SUPPORT_TIERS[int(rng.random() * len(SUPPORT_TIERS))]
            record = Record(self.next_ids["tickets"], props, created, updated)
            self.next_ids["tickets"] += 1 + int(rng.random() * 3)
            records.append(record)
            if contacts and rng.random() < 0.9:
                contact = contacts[int(rng.random() * len(contacts))]
                self.links.append((record.id, contact.id, to_contact))
                company_id = self.contact_company.get(contact.id)
                if company_id is not None:
                    self.links.append((record.id, company_id, to_company))
        return records

    def note_properties(self, name: str, created: int) -> dict[str, str]:
        props = {
            "hs_timestamp": iso_ms(created),
            "hs_note_body": f"<p>Spoke with {name} about {self.pick(NOTE_TOPICS)}.</p>",
        }
        self.maybe_owner(props)
        if self.rng.random() < 0.5:
            props["note_sentiment"] = self.pick(NOTE_SENTIMENTS)
        if self.rng.random() < 0.3:
            props["follow_up_required"] = self.pick(("true", "false"))
        return props

    def task_properties(self, name: str, created: int) -> dict[str, str]:
        status = self.pick(TASK_STATUSES)
        props = {
            "hs_timestamp": iso_ms(created + self.rng.randrange(1, 30) * DAY_MS),
            "hs_task_subject": self.pick(TASK_SUBJECTS).format(name=name),
            "hs_task_body": f"Discuss {self.pick(NOTE_TOPICS)}.",
            "hs_task_status": status,
            "hs_task_priority": self.pick(TASK_PRIORITIES),
            "hs_task_type": self.pick(TASK_TYPES),
        }
        self.maybe_owner(props)
        if self.rng.random() < 0.5:
            props["task_source"] = self.pick(TASK_SOURCES)
        if self.rng.random() < 0.3:
            props["effort_hours"] = str(self.pick((0.5, 1, 2, 4, 8)))
        return props

    def wide_values(self, props: dict[str, str], created: int, updated: int) -> None:
        rng = self.wide_rng
        for definition in self.wide_contact_properties:
            if rng.random() >= WIDE_FILL_RATE:
                continue
            kind = definition.type
            if kind == "number":
                props[definition.name] = str(rng.randrange(0, 5000))
            elif kind == "bool":
                props[definition.name] = "true" if rng.random() < 0.5 else "false"
            elif kind == "enumeration":
                props[definition.name] = definition.options[int(rng.random() * len(definition.options))]
            elif kind in ("date", "datetime"):
                instant = created + int((updated - created) * rng.random())
                props[definition.name] = iso_date(instant) if kind == "date" else iso_ms(instant)
            else:
                props[definition.name] = _wide_text(definition.name, rng)

    def phone(self) -> str:
        return f"+1 {self.rng.randint(201, 989)}-555-{self.rng.randint(0, 9999):04d}"


def seed_portal(seed: int, size: SandboxSize) -> SeedData:
    return _Seeder(seed, size).run()


def _wide_text(name: str, rng: random.Random) -> str:
    if name.endswith("_email"):
        return f"user{rng.randrange(10_000)}@example.com"
    if name.endswith(("_url", "_referrer")):
        return f"https://www.example.com/{('pricing', 'blog/launch', 'docs', 'signup')[rng.randrange(4)]}"
    if name.endswith("_id"):
        return f"{rng.getrandbits(48):012x}"
    words = ("enterprise", "growth", "spring promo", "webinar", "north america", "emea", "admin", "champion")
    return words[rng.randrange(len(words))]


RENEWAL_EVERY = 5


def _unique_email(first: str, last: str, domain: str, used: dict[str, int]) -> str:
    local = f"{slug(first)}.{slug(last)}"
    key = f"{local}@{domain}"
    count = used.get(key, 0) + 1
    used[key] = count
    return key if count == 1 else f"{local}{count}@{domain}"
