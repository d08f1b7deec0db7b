"""One Zendesk account (one subdomain): its records, the rules Zendesk applies to writes, and the
timelines its incremental exports read. Times are epoch seconds inside; `render` makes them ISO 8601."""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

from connectors.zendesk.sandbox.data import (
    FIRST_LIVE_ID,
    PRIORITIES,
    ROLES,
    STATUSES,
    TICKET_FIELDS,
    TICKET_TYPES,
    SandboxSize,
    SeededTicket,
    comment_id,
    comment_position,
    iso_seconds,
    new_comment,
    render_ticket,
    satisfaction_rating,
    seed_account,
)
from connectors.zendesk.sandbox.errors import ZendeskError, blank, closed_ticket, invalid_field, not_found
from connectors.zendesk.sandbox.timeline import Timeline

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TIME_KEYS = ("created_at", "updated_at", "deleted_at")


@dataclass(frozen=True)
class Change:
    """A change the account's webhooks report: `kind` is ticket, user or organization."""

    kind: str
    event: str  # the event type's last part, e.g. "status_changed"
    record: dict[str, Any]
    previous: Any = None
    current: Any = None


class Account:
    """A deterministic account: the same seed, size and subdomain always give the same records."""

    def __init__(self, account_id: int, subdomain: str, seed: int, size: SandboxSize) -> None:
        self.id = account_id
        self.subdomain = subdomain
        self.seed = seed
        self.size = size
        seeded = seed_account(seed, size, subdomain)
        self.lock = threading.RLock()
        self.on_change: Callable[[Change], None] | None = None
        self._ids = count(FIRST_LIVE_ID)
        self.users = {user["id"]: user for user in seeded.users}
        self.organizations = {org["id"]: org for org in seeded.organizations}
        self.groups = seeded.groups
        self.seeded_tickets = seeded.tickets
        # Tickets written since seeding, with their comments: the rest render from `seeded_tickets`.
        self.live_tickets: dict[int, dict[str, Any]] = {}
        self.live_comments: dict[int, list[dict[str, Any]]] = {}
        self.ticket_ids = [ticket.id for ticket in seeded.tickets]  # not deleted, ascending
        self.next_ticket_id = len(seeded.tickets) + 1
        self.tickets_timeline = Timeline((t.updated_s, t.id) for t in seeded.tickets)
        self.users_timeline = Timeline((u["updated_at"], u["id"]) for u in seeded.users)
        self.organizations_timeline = Timeline((o["updated_at"], o["id"]) for o in seeded.organizations)
        # Ticket audits by time: a seeded audit's id is its comment's; audits written later are kept whole.
        self.events_timeline = Timeline(
            (at, comment_id(t.id, k)) for t in seeded.tickets for k, at in enumerate(t.comment_times)
        )
        self.live_events: dict[int, dict[str, Any]] = {}
        self.admin_id = next(u["id"] for u in seeded.users if u["role"] == "admin")

    # ---- reads ------------------------------------------------------------------------------------

    def ticket(self, ticket_id: int, *, deleted: bool = False) -> dict[str, Any] | None:
        """The ticket as stored (times in seconds), or None when it is missing or its deletion state differs."""
        ticket = self.live_tickets.get(ticket_id)
        if ticket is None:
            seeded = self._seeded(ticket_id)
            if seeded is None:
                return None
            ticket = render_ticket(seeded, self.seed)[0]
        if (ticket["status"] == "deleted") != deleted:
            return None
        return ticket

    def any_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        return self.ticket(ticket_id) or self.ticket(ticket_id, deleted=True)

    def comments(self, ticket_id: int) -> list[dict[str, Any]]:
        live = self.live_comments.get(ticket_id)
        if live is not None:
            return live
        seeded = self._seeded(ticket_id)
        return render_ticket(seeded, self.seed)[1] if seeded else []

    def _seeded(self, ticket_id: int) -> SeededTicket | None:
        if 1 <= ticket_id <= len(self.seeded_tickets):
            return self.seeded_tickets[ticket_id - 1]
        return None

    def user(self, user_id: int) -> dict[str, Any] | None:
        return self.users.get(user_id)

    def active_users(self) -> list[dict[str, Any]]:
        return [u for u in self.users.values() if u["active"]]

    def deleted_users(self) -> list[dict[str, Any]]:
        return [u for u in self.users.values() if not u["active"]]

    def live_organizations(self) -> list[dict[str, Any]]:
        return [o for o in self.organizations.values() if o.get("deleted_at") is None]

    def deleted_tickets(self) -> list[dict[str, Any]]:
        deleted = [t for t in self.live_tickets.values() if t["status"] == "deleted"]
        return sorted(deleted, key=lambda t: t["id"])

    def satisfaction_ratings(self) -> list[dict[str, Any]]:
        ratings = []
        for seeded in self.seeded_tickets:
            if seeded.satisfaction is not None and seeded.id not in self.live_tickets:
                rating = satisfaction_rating(seeded)
                if rating is not None:
                    ratings.append(rating)
        return ratings

    def event(self, event_id: int) -> dict[str, Any] | None:
        """A ticket audit by id (times in seconds) with all its child events, Comment events included."""
        live = self.live_events.get(event_id)
        if live is not None:
            return live
        ticket_id, index = comment_position(event_id)
        seeded = self._seeded(ticket_id)
        if seeded is None:
            return None
        comment = render_ticket(seeded, self.seed)[1][index]
        return _audit(event_id, ticket_id, comment["created_at"], comment["author_id"], [_comment_event(comment)])

    # ---- ticket writes ----------------------------------------------------------------------------

    def create_ticket(self, fields: dict[str, Any], actor_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        with self.lock:
            comment = fields.get("comment")
            if comment is None and fields.get("description"):
                # Clients (Zenpy's examples among them) create with a description, which Zendesk takes as the
                # first comment.
                comment = {"body": fields["description"]}
            body = _comment_body(comment)
            if body is None:
                raise ZendeskError(
                    422,
                    {
                        "error": "RecordInvalid",
                        "description": "Record validation errors",
                        "details": {"base": [{"description": "Description: cannot be blank", "error": "BlankValue"}]},
                    },
                )
            requester_id = self._requester(fields, actor_id)
            now = self._now()
            ticket_id = self.next_ticket_id
            ticket: dict[str, Any] = {
                "id": ticket_id,
                "external_id": fields.get("external_id"),
                "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                "created_at": now,
                "updated_at": now,
                "type": None,
                "subject": "",
                "raw_subject": "",
                "description": body,
                "priority": None,
                "status": "new",
                "recipient": None,
                "requester_id": requester_id,
                "submitter_id": actor_id,
                "assignee_id": None,
                "organization_id": self.users[requester_id]["organization_id"],
                "group_id": None,
                "collaborator_ids": [],
                "follower_ids": [],
                "email_cc_ids": [],
                "problem_id": None,
                "has_incidents": False,
                "is_public": True,
                "due_at": None,
                "tags": [],
                "custom_fields": [{"id": f.id, "value": None} for f in TICKET_FIELDS],
                "satisfaction_rating": {"score": "unoffered"},
                "sharing_agreement_ids": [],
                "from_messaging_channel": False,
            }
            changed = self._apply_ticket_fields(ticket, fields, creating=True)
            if not ticket["subject"]:
                ticket["subject"] = ticket["raw_subject"] = body.splitlines()[0][:100]
            if ticket["assignee_id"] is not None and ticket["status"] == "new":
                ticket["status"] = "open"
            assert isinstance(comment, dict)
            author = self._author(comment, requester_id)
            first = new_comment(next(self._ids), author, body, comment.get("public") is not False, now)
            self.next_ticket_id += 1
            self.live_tickets[ticket_id] = ticket
            self.live_comments[ticket_id] = [first]
            self.ticket_ids.append(ticket_id)
            audit = self._audit(ticket, actor_id, now, [first], [("Create", name, None) for name in changed])
            self.tickets_timeline.move(ticket_id, now)
            self._notify(Change("ticket", "created", ticket))
            return ticket, audit

    def update_ticket(
        self, ticket_id: int, fields: dict[str, Any], actor_id: int, *, system: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """An update as the API makes it; `system` stands for Zendesk's own edits (a redaction, a tag set by
        an automation on archive), which reach closed tickets too."""
        with self.lock:
            current = self.ticket(ticket_id)
            if current is None:
                raise not_found()
            if current["status"] == "closed" and not system:
                raise closed_ticket()
            ticket = _copy(current)
            before = _copy(current)
            comment = fields.get("comment")
            body = _comment_body(comment) if comment is not None else None
            if comment is not None and body is None:
                raise blank("comment", "Comment")
            changed = self._apply_ticket_fields(ticket, fields, creating=False)
            if ticket["assignee_id"] is not None and ticket["status"] == "new":
                ticket["status"] = "open"
                changed.append("status")
            now = self._now()
            comments = list(self.comments(ticket_id))
            added: list[dict[str, Any]] = []
            if body is not None and isinstance(comment, dict):
                author = self._author(comment, actor_id)
                added.append(new_comment(next(self._ids), author, body, comment.get("public") is not False, now))
            if not changed and not added:
                return current, self._audit(current, actor_id, now, [], [])
            ticket["updated_at"] = now
            self.live_tickets[ticket_id] = ticket
            self.live_comments[ticket_id] = comments + added
            changes = [("Change", name, before.get(name)) for name in dict.fromkeys(changed)]
            audit = self._audit(ticket, actor_id, now, added, changes)
            self.tickets_timeline.move(ticket_id, now)
            for name in dict.fromkeys(changed):
                self._notify(
                    Change(
                        "ticket",
                        _TICKET_EVENTS.get(name, f"{name}_changed"),
                        ticket,
                        before.get(name),
                        ticket.get(name),
                    )
                )
            for comment_added in added:
                self._notify(Change("ticket", "comment_added", ticket, None, comment_added))
            return ticket, audit

    def delete_ticket(self, ticket_id: int, actor_id: int) -> None:
        """Zendesk's soft delete: the ticket leaves every list but `/deleted_tickets` and shows in the
        incremental export with status "deleted"."""
        with self.lock:
            current = self.ticket(ticket_id)
            if current is None:
                raise not_found()
            ticket = _copy(current)
            now = self._now()
            actor = self.users[actor_id]
            ticket.update(
                status="deleted",
                previous_state=current["status"],
                deleted_at=now,
                updated_at=now,
                actor={"id": actor_id, "name": actor["name"]},
            )
            self.live_comments.setdefault(ticket_id, list(self.comments(ticket_id)))
            self.live_tickets[ticket_id] = ticket
            del self.ticket_ids[bisect.bisect_left(self.ticket_ids, ticket_id)]
            self.tickets_timeline.move(ticket_id, now)
            self._notify(Change("ticket", "soft_deleted", ticket))

    def _apply_ticket_fields(self, ticket: dict[str, Any], fields: dict[str, Any], *, creating: bool) -> list[str]:
        """Validate every field first, then set them; the names of the fields whose value changed."""
        updates: dict[str, Any] = {}
        if "subject" in fields:
            updates["subject"] = str(fields["subject"] or "")
        if "status" in fields:
            status = fields["status"]
            if status not in STATUSES:
                raise invalid_field("status", f"Status: {status} is not a valid value")
            if status == "new" and not creating and ticket["status"] != "new":
                raise invalid_field("status", "Status: cannot be changed back to New")
            updates["status"] = status
        if "priority" in fields:
            priority = fields["priority"] or None
            if priority is not None and priority not in PRIORITIES:
                raise invalid_field("priority", f"Priority: {priority} is not a valid value")
            updates["priority"] = priority
        if "type" in fields:
            kind = fields["type"] or None
            if kind is not None and kind not in TICKET_TYPES:
                raise invalid_field("type", f"Type: {kind} is not a valid value")
            updates["type"] = kind
        if "assignee_id" in fields:
            assignee = fields["assignee_id"]
            if assignee is not None and (self.users.get(_int(assignee)) or {}).get("role") not in ("agent", "admin"):
                raise invalid_field("assignee", "Assignee: is not an agent", "InvalidValue")
            updates["assignee_id"] = _int(assignee) if assignee is not None else None
        if "group_id" in fields:
            group = fields["group_id"]
            if group is not None and _int(group) not in {g["id"] for g in self.groups}:
                raise invalid_field("group", "Group: is invalid")
            updates["group_id"] = _int(group) if group is not None else None
        if "organization_id" in fields:
            organization = fields["organization_id"]
            if organization is not None and _int(organization) not in self.organizations:
                raise invalid_field("organization_id", "Organization: is invalid")
            updates["organization_id"] = _int(organization) if organization is not None else None
        if "external_id" in fields:
            updates["external_id"] = fields["external_id"]
        tags = list(ticket["tags"])
        if "tags" in fields:
            tags = _tags(fields["tags"])
        if "additional_tags" in fields:
            tags = sorted(set(tags) | set(_tags(fields["additional_tags"])))
        if "remove_tags" in fields:
            tags = [tag for tag in tags if tag not in set(_tags(fields["remove_tags"]))]
        if tags != ticket["tags"]:
            updates["tags"] = tags
        if "custom_fields" in fields:
            updates["custom_fields"] = _custom_fields(ticket["custom_fields"], fields["custom_fields"])
        if updates.get("status") == "closed" and creating:
            raise invalid_field("status", "Status: closed is not valid for a new ticket")
        changed = [name for name, value in updates.items() if ticket.get(name) != value]
        ticket.update(updates)
        if "subject" in updates:
            ticket["raw_subject"] = ticket["subject"]
        return changed

    def _requester(self, fields: dict[str, Any], actor_id: int) -> int:
        if "requester_id" in fields:
            requester = _int(fields["requester_id"])
            if requester not in self.users or not self.users[requester]["active"]:
                raise invalid_field("requester", "Requester: is invalid")
            return requester
        requester_fields = fields.get("requester")
        if requester_fields is None:
            return actor_id
        if not isinstance(requester_fields, dict):
            raise invalid_field("requester", "Requester: is invalid")
        email = str(requester_fields.get("email") or "").strip().lower()
        if not EMAIL.match(email):
            raise invalid_field("requester", f"Requester: Email {email} is not properly formatted")
        existing = self.user_by_email(email)
        if existing is not None:
            return int(existing["id"])
        name = str(requester_fields.get("name") or email.split("@")[0])
        return int(self.create_user({"name": name, "email": email, "role": "end-user"})["id"])

    def _author(self, comment: dict[str, Any], default: int) -> int:
        if comment.get("author_id") is None:
            return default
        author = _int(comment["author_id"])
        if author not in self.users:
            raise invalid_field("comment", "Comment: author is invalid")
        return author

    def _audit(
        self,
        ticket: dict[str, Any],
        actor_id: int,
        now: int,
        comments: list[dict[str, Any]],
        changes: list[tuple[str, str, Any]],
    ) -> dict[str, Any]:
        audit_id = comments[0]["audit_id"] if comments else next(self._ids)
        children = [_comment_event(c) for c in comments]
        for kind, name, previous in changes:
            child = {"id": next(self._ids), "type": kind, "event_type": kind, "field_name": name}
            child["value"] = ticket.get(name)
            if kind == "Change":
                child["previous_value"] = previous
            children.append(child)
        audit = _audit(audit_id, ticket["id"], now, actor_id, children)
        if children:
            self.live_events[audit_id] = audit
            self.events_timeline.move(audit_id, now)
        return audit

    # ---- users and organizations --------------------------------------------------------------------

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u["active"] and (u["email"] or "").lower() == wanted), None)

    def create_user(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            name = str(fields.get("name") or "").strip()
            if not name:
                raise blank("name", "Name")
            now = self._now()
            user: dict[str, Any] = {
                "id": next(self._ids),
                "name": name,
                "email": None,
                "role": "end-user",
                "organization_id": None,
                "external_id": None,
                "tags": [],
                "active": True,
                "suspended": False,
                "verified": False,
                "locale": "en-US",
                "time_zone": "Eastern Time (US & Canada)",
                "phone": None,
                "user_fields": {"plan": None, "region": None, "customer_since": None},
                "created_at": now,
                "updated_at": now,
            }
            self._apply_user_fields(user, fields)
            self.users[user["id"]] = user
            self.users_timeline.move(user["id"], now)
            self._notify(Change("user", "created", user))
            return user

    def update_user(self, user_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            current = self.users.get(user_id)
            if current is None or not current["active"]:
                raise not_found()
            user = _copy(current)
            changed = self._apply_user_fields(user, fields)
            if changed:
                user["updated_at"] = self._now()
                self.users[user_id] = user
                self.users_timeline.move(user_id, user["updated_at"])
                for name in changed:
                    event = _USER_EVENTS.get(name, "custom_field_changed")
                    self._notify(Change("user", event, user, current.get(name), user.get(name)))
            return user

    def delete_user(self, user_id: int) -> dict[str, Any]:
        with self.lock:
            current = self.users.get(user_id)
            if current is None or not current["active"]:
                raise not_found()
            if user_id == self.admin_id:
                raise invalid_field("base", "The account owner cannot be deleted", "InvalidAction")
            user = {**_copy(current), "active": False, "updated_at": self._now()}
            self.users[user_id] = user
            self.users_timeline.move(user_id, user["updated_at"])
            self._notify(Change("user", "deleted", user))
            return user

    def _apply_user_fields(self, user: dict[str, Any], fields: dict[str, Any]) -> list[str]:
        updates: dict[str, Any] = {}
        if "name" in fields:
            name = str(fields["name"] or "").strip()
            if not name:
                raise blank("name", "Name")
            updates["name"] = name
        if "email" in fields:
            email = str(fields["email"] or "").strip().lower() or None
            if email is not None:
                if not EMAIL.match(email):
                    raise invalid_field("email", f"Email: {email} is not properly formatted")
                owner = self.user_by_email(email)
                if owner is not None and owner["id"] != user["id"]:
                    raise invalid_field(
                        "email", f"Email: {email} is already being used by another user", "DuplicateValue"
                    )
            updates["email"] = email
        if "role" in fields:
            if fields["role"] not in ROLES:
                raise invalid_field("role", f"Role: {fields['role']} is not a valid value")
            updates["role"] = fields["role"]
        if "organization_id" in fields:
            organization = fields["organization_id"]
            if organization is not None and _int(organization) not in self.organizations:
                raise invalid_field("organization_id", "Organization: is invalid")
            updates["organization_id"] = _int(organization) if organization is not None else None
        for name in ("phone", "external_id", "time_zone", "locale"):
            if name in fields:
                updates[name] = fields[name]
        if "tags" in fields:
            updates["tags"] = _tags(fields["tags"])
        if "user_fields" in fields:
            if not isinstance(fields["user_fields"], dict):
                raise invalid_field("user_fields", "User fields: must be an object")
            updates["user_fields"] = {**user["user_fields"], **fields["user_fields"]}
        changed = [name for name, value in updates.items() if user.get(name) != value]
        user.update(updates)
        return changed

    def create_organization(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            now = self._now()
            organization: dict[str, Any] = {
                "id": next(self._ids),
                "name": "",
                "external_id": None,
                "domain_names": [],
                "group_id": None,
                "details": "",
                "notes": "",
                "shared_tickets": False,
                "shared_comments": False,
                "tags": [],
                "organization_fields": {"region": None},
                "created_at": now,
                "updated_at": now,
            }
            if not str(fields.get("name") or "").strip():
                raise blank("name", "Name")
            self._apply_organization_fields(organization, fields)
            self.organizations[organization["id"]] = organization
            self.organizations_timeline.move(organization["id"], now)
            self._notify(Change("organization", "created", organization))
            return organization

    def update_organization(self, organization_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            current = self.organizations.get(organization_id)
            if current is None or current.get("deleted_at") is not None:
                raise not_found()
            organization = _copy(current)
            changed = self._apply_organization_fields(organization, fields)
            if changed:
                organization["updated_at"] = self._now()
                self.organizations[organization_id] = organization
                self.organizations_timeline.move(organization_id, organization["updated_at"])
                for name in changed:
                    event = "name_changed" if name == "name" else "custom_field_changed"
                    self._notify(Change("organization", event, organization, current.get(name), organization.get(name)))
            return organization

    def delete_organization(self, organization_id: int) -> None:
        with self.lock:
            current = self.organizations.get(organization_id)
            if current is None or current.get("deleted_at") is not None:
                raise not_found()
            now = self._now()
            organization = {**_copy(current), "deleted_at": now, "updated_at": now}
            self.organizations[organization_id] = organization
            self.organizations_timeline.move(organization_id, now)
            for user in self.users.values():
                if user["organization_id"] == organization_id:
                    user["organization_id"] = None
            self._notify(Change("organization", "deleted", organization))

    def _apply_organization_fields(self, organization: dict[str, Any], fields: dict[str, Any]) -> list[str]:
        updates: dict[str, Any] = {}
        if "name" in fields:
            name = str(fields["name"] or "").strip()
            if not name:
                raise blank("name", "Name")
            taken = any(
                o["name"].lower() == name.lower() and o["id"] != organization["id"] and o.get("deleted_at") is None
                for o in self.organizations.values()
            )
            if taken:
                raise invalid_field("name", "Name: has already been taken", "DuplicateValue")
            updates["name"] = name
        for name in ("details", "notes", "external_id", "shared_tickets", "shared_comments", "group_id"):
            if name in fields:
                updates[name] = fields[name]
        if "domain_names" in fields:
            updates["domain_names"] = _tags(fields["domain_names"])
        if "tags" in fields:
            updates["tags"] = _tags(fields["tags"])
        if "organization_fields" in fields:
            if not isinstance(fields["organization_fields"], dict):
                raise invalid_field("organization_fields", "Organization fields: must be an object")
            updates["organization_fields"] = {**organization["organization_fields"], **fields["organization_fields"]}
        changed = [name for name, value in updates.items() if organization.get(name) != value]
        organization.update(updates)
        return changed

    # ---- helpers ----------------------------------------------------------------------------------

    def _now(self) -> int:
        return int(time.time())

    def _notify(self, change: Change) -> None:
        if self.on_change is not None:
            self.on_change(change)


_TICKET_EVENTS = {
    "assignee_id": "agent_assignment_changed",
    "group_id": "group_assignment_changed",
    "organization_id": "organization_changed",
    "custom_fields": "custom_field_changed",
    "type": "type_changed",
    "external_id": "external_id_changed",
}
_USER_EVENTS = {
    "name": "name_changed",
    "email": "email_changed",
    "role": "role_changed",
    "organization_id": "organization_membership_changed",
    "tags": "tags_changed",
}


def _audit(audit_id: int, ticket_id: int, at: int, author_id: int, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": audit_id,
        "ticket_id": ticket_id,
        "created_at": at,
        "timestamp": at,
        "author_id": author_id,
        "updater_id": author_id,
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
        "metadata": {"system": {}, "custom": {}},
        "event_type": "Audit",
        "child_events": children,
    }


def _comment_event(comment: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": comment["id"],
        "type": "Comment",
        "event_type": "Comment",
        "author_id": comment["author_id"],
        "body": comment["body"],
        "html_body": comment["html_body"],
        "plain_body": comment["plain_body"],
        "public": comment["public"],
        "attachments": [],
        "audit_id": comment["audit_id"],
        "created_at": comment["created_at"],
    }


def _comment_body(comment: Any) -> str | None:
    if not isinstance(comment, dict):
        return None
    body = comment.get("body") or comment.get("html_body") or ""
    return str(body) if str(body).strip() else None


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        raise invalid_field("tags", "Tags: must be a list of strings")
    return sorted({str(tag).strip().lower().replace(" ", "_") for tag in value if str(tag).strip()})


def _custom_fields(current: list[dict[str, Any]], given: Any) -> list[dict[str, Any]]:
    if not isinstance(given, list) or not all(isinstance(f, dict) and "id" in f for f in given):
        raise invalid_field("custom_fields", "Custom fields: must be a list of {id, value}")
    definitions = {f.id: f for f in TICKET_FIELDS}
    values = {f["id"]: f["value"] for f in current}
    for entry in given:
        definition = definitions.get(_int(entry["id"]))
        if definition is None:
            continue  # Zendesk ignores values for fields the account does not have
        value = entry.get("value")
        if definition.options and value not in (None, "", *definition.options):
            raise invalid_field(definition.key, f"{definition.title}: {value} is not a valid option", "InvalidValue")
        if definition.type == "checkbox":
            value = bool(value)
        values[definition.id] = value
    return [{"id": field_id, "value": value} for field_id, value in values.items()]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value)
        for key, value in record.items()
    }


def render(record: dict[str, Any], url: str | None = None) -> dict[str, Any]:
    """A stored record as the API shows it: ISO 8601 times, and its `url` when it has one."""
    shown = dict(record)
    for key in TIME_KEYS:
        if isinstance(shown.get(key), int):
            shown[key] = iso_seconds(shown[key])
    if url is not None:
        shown = {"url": url, **shown}
    return shown
