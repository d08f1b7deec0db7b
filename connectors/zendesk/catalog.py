"""What Zendesk tickets and users hold, from the account's field definitions (`/ticket_fields`, `/user_fields`).

Paths are a record's raw keys as the exports return them. A user's custom fields are an object keyed by the
field's key, so they are `user_fields.<key>`. A ticket's custom fields are a list of {id, value}, which a dotted
path cannot index: the ticket catalog lists the built-in fields `/ticket_fields` names (at their raw keys:
`subject`, `type`, `group_id`, ...) and leaves the custom ones out, so that no mapping is offered that would
read null. Built-in fields are offered read-only: a write goes through the common model's own members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.kit.declaration import StreamContext
from connectors.kit.field_catalog import MAX_CATALOG_FIELDS, AvailableField, FieldCatalog
from connectors.kit.field_mappings import Kind

PAGE_SIZE = 100

# Zendesk's custom field types as the kinds a mapping reads (a multiselect holds a list of option values).
_KINDS: dict[str, Kind] = {
    "text": "text",
    "textarea": "text",
    "regexp": "text",
    "partialcreditcard": "text",
    "dropdown": "text",
    "tagger": "text",
    "lookup": "number",
    "integer": "number",
    "decimal": "number",
    "checkbox": "boolean",
    "date": "datetime",
    "multiselect": "list",
}

# The built-in ticket fields `/ticket_fields` lists, by their type there: the ticket's raw key and its kind.
_TICKET_SYSTEM: dict[str, tuple[str, Kind]] = {
    "subject": ("subject", "text"),
    "description": ("description", "text"),
    "status": ("status", "text"),
    "tickettype": ("type", "text"),
    "priority": ("priority", "text"),
    "group": ("group_id", "number"),
    "assignee": ("assignee_id", "number"),
    "custom_status": ("custom_status_id", "number"),
}

# A user's built-in attributes (Zendesk's Users API), which no endpoint lists: (raw key, label, kind).
_USER_SYSTEM: tuple[tuple[str, str, Kind], ...] = (
    ("name", "Name", "text"),
    ("email", "Email", "text"),
    ("phone", "Phone", "text"),
    ("role", "Role", "text"),
    ("time_zone", "Time zone", "text"),
    ("locale", "Locale", "text"),
    ("organization_id", "Organization", "number"),
    ("external_id", "External ID", "text"),
    ("notes", "Notes", "text"),
    ("details", "Details", "text"),
    ("tags", "Tags", "list"),
    ("verified", "Verified", "boolean"),
    ("last_login_at", "Last sign-in", "datetime"),
)


async def _definitions(ctx: StreamContext, resource: str) -> list[dict[str, Any]]:
    """Every definition the account lists, by cursor pages, never more than a catalog keeps."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"page[size]": PAGE_SIZE}
    while len(found) < MAX_CATALOG_FIELDS:
        body = await ctx.session.get_json(f"/api/v2/{resource}", params)
        found += [d for d in body.get(resource, []) if isinstance(d, dict) and d.get("active", True)]
        meta = body.get("meta") or {}
        if not meta.get("has_more") or not meta.get("after_cursor"):
            break
        params = {"page[size]": PAGE_SIZE, "page[after]": meta["after_cursor"]}
    return found


def _options(definition: dict[str, Any]) -> tuple[str, ...]:
    listed = definition.get("custom_field_options") or definition.get("system_field_options") or ()
    return tuple(str(o["value"]) for o in listed if isinstance(o, dict) and o.get("value") is not None)


@dataclass(frozen=True)
class TicketFieldCatalog:
    async def fields(self, ctx: StreamContext) -> list[AvailableField]:
        found = []
        for definition in await _definitions(ctx, "ticket_fields"):
            system = _TICKET_SYSTEM.get(str(definition.get("type")))
            if system is None:
                continue  # a custom field: a list item, not a path (see above)
            path, kind = system
            label = str(definition.get("title") or path)
            found.append(AvailableField(path, label, kind, _options(definition), is_custom=False, writable=False))
        return found


@dataclass(frozen=True)
class UserFieldCatalog:
    async def fields(self, ctx: StreamContext) -> list[AvailableField]:
        system = [AvailableField(key, label, kind, writable=False) for key, label, kind in _USER_SYSTEM]
        custom = [
            AvailableField(
                path=f"user_fields.{definition['key']}",
                label=str(definition.get("title") or definition["key"]),
                kind=_KINDS.get(str(definition.get("type")), "any"),
                options=_options(definition),
                is_custom=True,
            )
            for definition in await _definitions(ctx, "user_fields")
            if definition.get("key")
        ]
        return [*system, *custom]


# End users are Contacts and agents Users: both are Zendesk users with the same fields.
ZENDESK_CATALOGS: dict[str, FieldCatalog] = {
    "Ticket": TicketFieldCatalog(),
    "Contact": UserFieldCatalog(),
    "User": UserFieldCatalog(),
}
