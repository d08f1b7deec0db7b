"""Deterministic seed data of one emulated Zendesk account.

Users, organizations, groups and field definitions are built whole. Tickets are not: the seed keeps a
few numbers per ticket (`SeededTicket`) and renders a ticket and its comments from those and a random
stream of the ticket's own only when asked, so an account of 100,000 tickets with their comments costs
tens of megabytes, not gigabytes. Nothing depends on the current time: seeded records are created and
changed between 2024-01-01 and 2026-01-01.
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from typing import Any

from connectors.kit.sandbox_support import (
    SEED_END_MS,
    SEED_START_MS,
    Seeder,
    domain_for,
    name_pools,
    slug,
    unique_company_names,
)

SEED_START_S = SEED_START_MS // 1000
SEED_END_S = SEED_END_MS // 1000
FIRST_USER_ID = 360_000_000_001
FIRST_ORGANIZATION_ID = 360_100_000_001
FIRST_GROUP_ID = 360_200_000_001
FIRST_TICKET_FIELD_ID = 360_300_000_001
FIRST_USER_FIELD_ID = 360_400_000_001
# Seeded comment and satisfaction-rating ids are derived from their ticket's id, so they need no table.
COMMENTS_PER_TICKET_MAX = 6
COMMENT_ID_BASE = 370_000_000_000
COMMENT_ID_STRIDE = 16
SATISFACTION_ID_BASE = 380_000_000_000
# Ids of comments, audits and records created while the sandbox runs start above every seeded one.
FIRST_LIVE_ID = 900_000_000_000

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_TYPES = ("question", "incident", "problem", "task")
ROLES = ("end-user", "agent", "admin")
CHANNELS = ("email", "web", "api", "chat", "mobile", "voice")
SATISFACTION_SCORES = ("good", "bad")
GROUP_NAMES = ("Support", "Billing", "Technical", "Escalations", "Onboarding")
PRODUCTS = ("Dashboard", "Mobile app", "API", "Billing portal", "Reports", "Integrations", "Single sign-on")
PROBLEMS = (
    "{product} is not loading",
    "Cannot log in to {product}",
    "Question about {product} pricing",
    "{product} shows the wrong numbers",
    "Feature request for {product}",
    "Error 500 when saving in {product}",
    "How do I export data from {product}?",
    "Refund for a duplicate charge",
)
REPLIES = (
    "Thanks for reaching out, we are looking into it.",
    "Could you send us a screenshot of what you see?",
    "This is fixed now; please try again.",
    "I have passed this on to our engineers.",
    "Glad it works now. Anything else we can help with?",
)
NOTES = (
    "Checked the logs: a timeout on our side.",
    "Customer is on the enterprise plan.",
    "Duplicate of an older ticket.",
)
TAGS = ("vip", "billing", "bug", "how_to", "feature_request", "mobile", "urgent_followup", "churn_risk", "api")
PLANS = ("free", "starter", "pro", "enterprise")
REGIONS = ("amer", "emea", "apac")


@dataclass(frozen=True)
class SandboxSize:
    tickets: int = 250
    users: int = 80  # end users; agents and admins come on top
    agents: int = 6
    organizations: int = 20
    # Most tickets have 1-4 comments; the mean is about 2.5.
    comments_max: int = 4


@dataclass(frozen=True)
class FieldDef:
    """A ticket or user field definition: what `/ticket_fields` and `/user_fields` list."""

    id: int
    key: str
    title: str
    type: str
    options: tuple[str, ...] = ()


TICKET_FIELDS = (
    FieldDef(FIRST_TICKET_FIELD_ID, "product", "Product", "tagger", tuple(slug(p) for p in PRODUCTS)),
    FieldDef(FIRST_TICKET_FIELD_ID + 1, "order_number", "Order number", "text"),
    FieldDef(FIRST_TICKET_FIELD_ID + 2, "refund_requested", "Refund requested", "checkbox"),
    FieldDef(FIRST_TICKET_FIELD_ID + 3, "affected_users", "Affected users", "integer"),
)
USER_FIELDS = (
    FieldDef(FIRST_USER_FIELD_ID, "plan", "Plan", "dropdown", PLANS),
    FieldDef(FIRST_USER_FIELD_ID + 1, "region", "Region", "dropdown", REGIONS),
    FieldDef(FIRST_USER_FIELD_ID + 2, "customer_since", "Customer since", "date"),
)
# The built-in ticket fields every account lists before its custom ones.
SYSTEM_TICKET_FIELDS = (
    ("subject", "Subject"),
    ("description", "Description"),
    ("status", "Status"),
    ("tickettype", "Type"),
    ("priority", "Priority"),
    ("group", "Group"),
    ("assignee", "Assignee"),
)


def ticket_field_definitions(account_id: int) -> list[tuple[FieldDef, bool]]:
    """Every ticket field of an account, the built-in ones first: (definition, whether it is built in)."""
    system = [
        (FieldDef(account_id * 100 + n, key, title, key), True) for n, (key, title) in enumerate(SYSTEM_TICKET_FIELDS)
    ]
    return [*system, *((field, False) for field in TICKET_FIELDS)]


@dataclass(frozen=True)
class SeededTicket:
    """What the seed decides about a ticket up front; the rest is drawn from its own stream when rendered."""

    id: int
    created_s: int
    updated_s: int
    status: str
    requester_id: int
    assignee_id: int | None
    group_id: int | None
    organization_id: int | None
    comment_times: tuple[int, ...]
    satisfaction: str | None  # a score when the requester rated the ticket


@dataclass
class SeedData:
    users: list[dict[str, Any]]
    organizations: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    tickets: list[SeededTicket]


def iso_seconds(epoch_s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def seed_account(seed: int, size: SandboxSize, subdomain: str) -> SeedData:
    return _AccountSeeder(seed, size, subdomain).run()


class _AccountSeeder(Seeder):
    def __init__(self, seed: int, size: SandboxSize, subdomain: str) -> None:
        super().__init__(seed)
        self.size = size
        self.subdomain = subdomain
        self.pools = name_pools(seed, min(max(size.organizations, 50), 400))

    def run(self) -> SeedData:
        groups = self.groups()
        organizations = self.organizations()
        users = self.users(organizations)
        agents = [u for u in users if u["role"] != "end-user"]
        end_users = [u for u in users if u["role"] == "end-user"] or agents
        tickets = self.tickets(end_users, agents, [g["id"] for g in groups])
        return SeedData(users=users, organizations=organizations, groups=groups, tickets=tickets)

    def timestamps(self) -> tuple[int, int]:
        created = SEED_START_S + int(self.rng.random() * (SEED_END_S - SEED_START_S - 86_400))
        return created, created + int((SEED_END_S - 1 - created) * self.rng.random() ** 3)

    def groups(self) -> list[dict[str, Any]]:
        stamp = iso_seconds(SEED_START_S - 86_400 * 30)
        return [
            {
                "id": FIRST_GROUP_ID + index,
                "name": name,
                "description": f"{name} team",
                "default": index == 0,
                "deleted": False,
                "is_public": True,
                "created_at": stamp,
                "updated_at": stamp,
            }
            for index, name in enumerate(GROUP_NAMES)
        ]

    def organizations(self) -> list[dict[str, Any]]:
        domains: set[str] = set()
        organizations = []
        for index, name in enumerate(unique_company_names(self.pools.companies, self.size.organizations)):
            created, updated = self.timestamps()
            organizations.append(
                {
                    "id": FIRST_ORGANIZATION_ID + index,
                    "name": name,
                    "external_id": None,
                    "domain_names": [domain_for(name, "com", domains)],
                    "group_id": None,
                    "details": "",
                    "notes": "",
                    "shared_tickets": False,
                    "shared_comments": False,
                    "tags": [self.pick(PLANS)],
                    "organization_fields": {"region": self.pick(REGIONS)},
                    "created_at": created,
                    "updated_at": updated,
                }
            )
        return organizations

    def users(self, organizations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = []
        emails: set[str] = set()
        roles = ["admin"] + ["agent"] * max(self.size.agents - 1, 0) + ["end-user"] * self.size.users
        for index, role in enumerate(roles):
            first, last = self.pick(self.pools.first_names), self.pick(self.pools.last_names)
            organization = self.maybe(0.8, organizations) if role == "end-user" else None
            if role == "end-user":
                domain = organization["domain_names"][0] if organization else "example.org"
            else:
                domain = f"{self.subdomain}.example.com"
            email = f"{slug(first)}.{slug(last)}@{domain}"
            if email in emails:
                email = f"{slug(first)}.{slug(last)}{index}@{domain}"
            emails.add(email)
            created, updated = self.timestamps()
            users.append(
                {
                    "id": FIRST_USER_ID + index,
                    "name": f"{first} {last}",
                    "email": email,
                    "role": role,
                    "organization_id": organization["id"] if organization else None,
                    "external_id": None,
                    "tags": [],
                    "active": True,
                    "suspended": False,
                    "verified": True,
                    "locale": "en-US",
                    "time_zone": "Eastern Time (US & Canada)",
                    "phone": None,
                    "user_fields": {
                        "plan": self.pick(PLANS) if role == "end-user" else None,
                        "region": self.pick(REGIONS),
                        "customer_since": iso_seconds(created)[:10] if role == "end-user" else None,
                    },
                    "created_at": created,
                    "updated_at": updated,
                }
            )
        return users

    def tickets(
        self, end_users: list[dict[str, Any]], agents: list[dict[str, Any]], groups: list[int]
    ) -> list[SeededTicket]:
        tickets = []
        span = SEED_END_S - SEED_START_S - 86_400 * 2
        count = self.size.tickets
        for index in range(count):
            # Ids grow with creation time, as Zendesk's do.
            created = SEED_START_S + span * index // max(count, 1) + int(self.rng.random() * 600)
            age = (SEED_END_S - created) / (SEED_END_S - SEED_START_S)
            status = self._status(age)
            updated = created + int((SEED_END_S - 1 - created) * self.rng.random() ** 3)
            requester = self.pick(end_users)
            assigned = status != "new"
            assignee = self.pick(agents)["id"] if assigned and agents else None
            comments = 1 + int(self.rng.random() * self.size.comments_max)
            times = tuple(sorted(created + int((updated - created) * self.rng.random()) for _ in range(comments - 1)))
            rated = status in ("solved", "closed") and self.rng.random() < 0.4
            tickets.append(
                SeededTicket(
                    id=index + 1,
                    created_s=created,
                    updated_s=updated,
                    status=status,
                    requester_id=requester["id"],
                    assignee_id=assignee,
                    group_id=self.pick(groups) if assigned and groups else None,
                    organization_id=requester["organization_id"],
                    comment_times=(created, *times),
                    satisfaction=self.pick(SATISFACTION_SCORES) if rated else None,
                )
            )
        return tickets

    def _status(self, age: float) -> str:
        # Old tickets are mostly closed, recent ones mostly still being worked on.
        draw = self.rng.random()
        if draw < age * 0.8:
            return "closed" if age > 0.15 else "solved"
        return STATUSES[int(self.rng.random() * 5)]


def comment_id(ticket_id: int, index: int) -> int:
    return COMMENT_ID_BASE + ticket_id * COMMENT_ID_STRIDE + index


def comment_position(comment: int) -> tuple[int, int]:
    """The (ticket id, index) of a seeded comment id."""
    return divmod(comment - COMMENT_ID_BASE, COMMENT_ID_STRIDE)


# The ticket events export visits a ticket once per comment, close together in time: a few thousand
# rendered tickets kept cost a few megabytes and spare most re-renders. Callers copy before they change one.
@functools.lru_cache(maxsize=4096)
def render_ticket(seeded: SeededTicket, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A seeded ticket (with `created_at`/`updated_at` as epoch seconds) and its comments, drawn from the
    ticket's own random stream: the same ticket renders the same way however often and in whatever order."""
    rng = random.Random(seed * 1_000_003 + seeded.id)
    product = PRODUCTS[_below(rng, len(PRODUCTS))]
    subject = PROBLEMS[_below(rng, len(PROBLEMS))].format(product=product)
    description = f"Hello, {subject[0].lower()}{subject[1:]}. It started on {iso_seconds(seeded.created_s)[:10]}."
    tags = sorted({TAGS[_below(rng, len(TAGS))] for _ in range(_below(rng, 3))} | {slug(product)})
    custom_fields = [
        {"id": TICKET_FIELDS[0].id, "value": slug(product)},
        {"id": TICKET_FIELDS[1].id, "value": _order_number(rng) if rng.random() < 0.5 else None},
        {"id": TICKET_FIELDS[2].id, "value": rng.random() < 0.1},
        {"id": TICKET_FIELDS[3].id, "value": str(1 + _below(rng, 499)) if rng.random() < 0.3 else None},
    ]
    channel = CHANNELS[_below(rng, len(CHANNELS))]
    priority = PRIORITIES[_below(rng, len(PRIORITIES))] if rng.random() < 0.8 else None
    ticket: dict[str, Any] = {
        "id": seeded.id,
        "external_id": None,
        "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": seeded.created_s,
        "updated_at": seeded.updated_s,
        "type": TICKET_TYPES[_below(rng, len(TICKET_TYPES))] if rng.random() < 0.7 else None,
        "subject": subject,
        "raw_subject": subject,
        "description": description,
        "priority": priority,
        "status": seeded.status,
        "recipient": None,
        "requester_id": seeded.requester_id,
        "submitter_id": seeded.requester_id,
        "assignee_id": seeded.assignee_id,
        "organization_id": seeded.organization_id,
        "group_id": seeded.group_id,
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "problem_id": None,
        "has_incidents": False,
        "is_public": True,
        "due_at": None,
        "tags": tags,
        "custom_fields": custom_fields,
        "satisfaction_rating": _rating(seeded),
        "sharing_agreement_ids": [],
        "from_messaging_channel": channel == "chat",
    }
    comments = []
    for index, at in enumerate(seeded.comment_times):
        first = index == 0
        private = not first and rng.random() < 0.2
        if first:
            author, body = seeded.requester_id, description
        elif private:
            author, body = seeded.assignee_id or seeded.requester_id, NOTES[_below(rng, len(NOTES))]
        elif seeded.assignee_id and rng.random() < 0.6:
            author, body = seeded.assignee_id, REPLIES[_below(rng, len(REPLIES))]
        else:
            author, body = seeded.requester_id, "Thanks, here is more detail about what happens."
        comments.append(new_comment(comment_id(seeded.id, index), author, body, not private, at, channel))
    return ticket, comments


def _order_number(rng: random.Random) -> str:
    return f"ORD-{100_000 + _below(rng, 900_000)}"


def _below(rng: random.Random, n: int) -> int:
    # random.randrange is exact but several times slower; this renders tens of thousands of tickets a second.
    return int(rng.random() * n)


def _rating(seeded: SeededTicket) -> dict[str, Any]:
    if seeded.satisfaction is None:
        return {"score": "unoffered"}
    return {"id": SATISFACTION_ID_BASE + seeded.id, "score": seeded.satisfaction, "comment": None}


def new_comment(
    comment: int, author_id: int, body: str, public: bool, created_s: int, channel: str = "api"
) -> dict[str, Any]:
    return {
        "id": comment,
        "type": "Comment",
        "author_id": author_id,
        "body": body,
        "html_body": f'<div class="zd-comment" dir="auto"><p dir="auto">{_escape(body)}</p></div>',
        "plain_body": body,
        "public": public,
        "attachments": [],
        "audit_id": comment,
        "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
        "metadata": {"system": {}, "custom": {}},
        "created_at": created_s,
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def satisfaction_rating(seeded: SeededTicket) -> dict[str, Any] | None:
    """The `/satisfaction_ratings` record of a rated seeded ticket (times as epoch seconds)."""
    if seeded.satisfaction is None:
        return None
    return {
        "id": SATISFACTION_ID_BASE + seeded.id,
        "score": seeded.satisfaction,
        "ticket_id": seeded.id,
        "requester_id": seeded.requester_id,
        "assignee_id": seeded.assignee_id,
        "group_id": seeded.group_id,
        "comment": None,
        "reason": None,
        "created_at": seeded.updated_s,
        "updated_at": seeded.updated_s,
    }
