"""Writing HubSpot CRM objects: properties through the v3 object API, associations through v4.

A create sends its associations inline, so HubSpot checks them before anything is written. An update
changes properties first, then adds and removes associations one by one with the default
(unlabeled) type. Reads go through batch read plus the v4 association read, exactly as the
incremental sync reads, so a write and the sync's later copy of it hash alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from connectors.hubspot.search import put_associations, read_associations
from connectors.kit.convert import iso_millis, plain_number
from connectors.kit.declaration import Draft, StreamContext
from connectors.kit.errors import BadInput
from connectors.kit.mapping import Ids, ModelMapping, remote_ids
from connectors.kit.records import RemoteRecord

PROPERTIES = "properties."

# HUBSPOT_DEFINED association type ids of the default (unlabeled) association between two object types.
DEFAULT_ASSOCIATION_TYPES: Mapping[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("deals", "contacts"): 3,
    ("deals", "companies"): 341,
    ("notes", "contacts"): 202,
    ("notes", "companies"): 190,
    ("notes", "deals"): 214,
    ("tasks", "contacts"): 204,
    ("tasks", "companies"): 192,
    ("tasks", "deals"): 216,
    ("tickets", "contacts"): 16,
    ("tickets", "companies"): 339,
}

BATCH_READ_LIMIT = 100


def now_iso() -> str:
    return iso_millis(datetime.now(UTC))


@dataclass(frozen=True)
class BatchRead:
    """Records by id through `batch/read`, with every discovered property and the stream's associations."""

    object_type: str

    async def fetch(self, ctx: StreamContext, remote_ids: Sequence[str]) -> list[RemoteRecord]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(remote_ids), BATCH_READ_LIMIT):
            chunk = list(remote_ids[start : start + BATCH_READ_LIMIT])
            # The ids are known, so associations are read alongside the records rather than after them.
            body, linked = await asyncio.gather(
                ctx.session.post_json(
                    f"/crm/v3/objects/{self.object_type}/batch/read",
                    {
                        "properties": ctx.discovered_params.get("properties", []),
                        "inputs": [{"id": remote_id} for remote_id in chunk],
                    },
                ),
                read_associations(ctx, self.object_type, chunk),
            )
            results = body.get("results", [])
            put_associations(results, linked)
            found.extend(results)
        return [ctx.to_record(raw) for raw in found]


def associations_of(mapping: ModelMapping) -> dict[str, str]:
    """Common relation -> the object type it associates with, read off the mapping's `associations.X.results`."""
    return {
        member: source.path.split(".")[1]
        for member, source in mapping.members.items()
        if isinstance(source, Ids) and source.path.startswith("associations.")
    }


@dataclass(frozen=True)
class CrmObjectWriter:
    object_type: str
    mapping: ModelMapping
    # Common relation -> the object type it associates with, e.g. {"company": "companies"}.
    associations: Mapping[str, str] = field(default_factory=dict)
    # Properties HubSpot requires on create that have an obvious value when the caller gives none.
    create_defaults: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    # Properties the connection's mappings write (`Draft.provider_fields`) are sent like mapped members.
    merges_provider_fields: ClassVar[bool] = True

    @classmethod
    def of(
        cls, object_type: str, mapping: ModelMapping, create_defaults: Mapping[str, Callable[[], Any]] | None = None
    ) -> CrmObjectWriter:
        return cls(object_type, mapping, associations_of(mapping), create_defaults or {})

    async def create(self, ctx: StreamContext, draft: Draft) -> str:
        properties = self._properties(draft)
        for name, default in self.create_defaults.items():
            if properties.get(name) in (None, ""):
                properties[name] = default()
        body: dict[str, Any] = {"properties": properties}
        links = [
            {
                "to": {"id": remote_id},
                "types": [
                    {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": DEFAULT_ASSOCIATION_TYPES[(self.object_type, target)],
                    }
                ],
            }
            for member, target in self.associations.items()
            for remote_id in remote_ids(draft.values.get(member))
        ]
        if links:
            body["associations"] = links
        created = await ctx.session.post_json(f"/crm/v3/objects/{self.object_type}", body, may_repeat=False)
        return str(created["id"])

    async def update(self, ctx: StreamContext, remote_id: str, draft: Draft, current: RemoteRecord) -> None:
        properties = self._properties(draft)
        if properties:
            await ctx.session.send_json(
                "PATCH", f"/crm/v3/objects/{self.object_type}/{remote_id}", {"properties": properties}
            )
        for member, target in self.associations.items():
            if member not in draft.values:
                continue
            wanted = remote_ids(draft.values[member])
            present = remote_ids((current.common or {}).get(member))
            base = f"/crm/v4/objects/{self.object_type}/{remote_id}/associations"
            for to_id in [i for i in wanted if i not in present]:
                await ctx.session.send_json("PUT", f"{base}/default/{target}/{to_id}")
            for to_id in [i for i in present if i not in wanted]:
                await ctx.session.send_json("DELETE", f"{base}/{target}/{to_id}")

    async def delete(self, ctx: StreamContext, remote_id: str) -> None:
        await ctx.session.send_json("DELETE", f"/crm/v3/objects/{self.object_type}/{remote_id}")

    def _properties(self, draft: Draft) -> dict[str, Any]:
        handled = frozenset(self.associations)
        mapped = draft.with_provider_fields(
            self.mapping.provider_values(draft.values, handled=handled, currencies=draft.currencies)
        )
        properties: dict[str, Any] = {}
        for path, value in mapped.items():
            if not path.startswith(PROPERTIES):
                raise BadInput(f"{path} is not a property HubSpot lets you write")
            # HubSpot clears a property with an empty string; null is refused.
            properties[path.removeprefix(PROPERTIES)] = "" if value is None else plain_number(value)
        raw_fields = {name: "" if value is None else value for name, value in draft.raw_fields.items()}
        return self.mapping.merge_raw_fields(properties, raw_fields)
