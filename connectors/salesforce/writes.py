"""Writing Salesforce records through the sObject REST API, with the kit's `RestWriter`: POST to create
(201 with the new id), PATCH to update and DELETE (both 204). Reads go through SOQL with every described
field, as the sync reads.

Lookups that may point at several object types (a task's WhoId and WhatId, a note's ParentId) hold one
id each: `OneOf` turns the common relations into that single field and refuses what cannot fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.kit.declaration import StreamContext
from connectors.kit.errors import BadInput
from connectors.kit.mapping import ModelMapping, remote_ids
from connectors.kit.records import RemoteRecord
from connectors.salesforce.query import LIMITS, QueryLimits, select_records
from connectors.salesforce.soql import quote

# Ids per SOQL `IN (...)`: keeps the query well under Salesforce's 100,000-character limit.
LOOKUP_CHUNK = 200


@dataclass(frozen=True)
class SoqlLookup:
    """Records by Id, with every described field: the same SELECT the sync runs, so `raw` is identical
    (and, like it, sent in a Composite body or split by field when too long for a URL)."""

    sobject: str
    limits: QueryLimits = LIMITS

    async def fetch(self, ctx: StreamContext, remote_ids: Sequence[str]) -> list[RemoteRecord]:
        found: list[RemoteRecord] = []
        fields = ctx.discovered_params["fields"]
        for start in range(0, len(remote_ids), LOOKUP_CHUNK):
            where = f"Id IN ({', '.join(quote(i) for i in remote_ids[start : start + LOOKUP_CHUNK])})"
            async for batch, _ in select_records(ctx, "query", self.sobject, fields, where, limits=self.limits):
                found.extend(ctx.to_record(raw) for raw in batch)
        return found


@dataclass(frozen=True)
class OneOf:
    """One polymorphic lookup field fed by several common relations, e.g. WhatId by deals or companies."""

    field: str
    members: tuple[str, ...]
    required: bool = False

    def apply(
        self, body: dict[str, Any], values: Mapping[str, Any], current: RemoteRecord | None, mapping: ModelMapping
    ) -> None:
        given = [m for m in self.members if m in values]
        if not given:
            return
        ids = [str(i) for m in given for i in remote_ids(values[m])]
        names = " or ".join(mapping.field_name(m) for m in self.members)
        if len(ids) > 1:
            raise BadInput(f"Salesforce links this record to one record through {self.field}: give one id in {names}")
        if ids:
            body[self.field] = ids[0]
            return
        # Emptying a relation clears the field only when it holds one of that relation's records.
        held = current.raw.get(self.field) if current else None
        current_common = (current.common or {}) if current else {}
        if held and any(held in remote_ids(current_common.get(m)) for m in given):
            if self.required:
                raise BadInput(f"a Salesforce {names} link is required here", field=mapping.field_name(given[0]))
            body[self.field] = None


@dataclass(frozen=True)
class CreateOnly:
    """A lookup Salesforce takes on create only (Opportunity.ContactId): on update, a change is refused
    and an unchanged value left out."""

    sobject: str
    lookup: OneOf

    @property
    def members(self) -> tuple[str, ...]:
        return self.lookup.members

    def apply(
        self, body: dict[str, Any], values: Mapping[str, Any], current: RemoteRecord | None, mapping: ModelMapping
    ) -> None:
        if current is None:
            self.lookup.apply(body, values, current, mapping)
            return
        for member in self.members:
            if member in values and remote_ids(values[member]) != remote_ids((current.common or {}).get(member)):
                raise BadInput(
                    f"Salesforce sets {mapping.field_name(member)} of a {self.sobject} only when creating it",
                    field=mapping.field_name(member),
                )


def note_title(body: Mapping[str, Any]) -> dict[str, Any]:
    """Salesforce requires a note's Title: the first line of its body, cut to Title's 80 characters."""
    first_line = next((line.strip() for line in str(body.get("Body") or "").splitlines() if line.strip()), "")
    return {"Title": first_line[:80] or "Note"}
