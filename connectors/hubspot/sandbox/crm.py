"""The emulated portal's CRM: records, associations and owners, read and written as the
HubSpot API does. HTTP handlers and the Python control API both go through here."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from connectors.hubspot.sandbox import search
from connectors.hubspot.sandbox.associations import AssociationGraph
from connectors.hubspot.sandbox.data import FIRST_IDS, Owner, SeedData
from connectors.hubspot.sandbox.errors import api_error, not_found, validation_error
from connectors.hubspot.sandbox.pipelines import ticket_stage_effects
from connectors.hubspot.sandbox.schema import (
    ASSOCIATION_TYPES,
    OBJECT_TYPES,
    AssociationType,
    ObjectType,
    PropertyDef,
    inverse_type,
    unlabeled_type,
    v3_association_name,
)
from connectors.hubspot.sandbox.search_index import SearchIndex
from connectors.hubspot.sandbox.store import ObjectStore, Record, property_history, property_value
from connectors.hubspot.sandbox.timestamps import WriteClock, iso_ms
from connectors.hubspot.sandbox.writes import (
    PropertyChanges,
    duplicate_contact,
    require_on_create,
    validate_properties,
)

ASSOCIATION_PAGE_SIZE = 500
# The v3 object list and get carry at most this many associated records per target type, and name the rest
# with a `paging.next` (after, link) inside that type's block (HubSpot's changelog "Announcing a change to
# how v3 CRM APIs return association data", in force since 2021-01-18; the block is the spec's
# CollectionResponseAssociatedId, `results` and `paging`).
V3_ASSOCIATION_PAGE_SIZE = 100
MAX_BATCH_INPUTS = 1000

# Who made a change, as webhooks report it: the REST API, or the facade standing in for a user.
ChangeSource = Literal["API", "CRM_UI"]
ChangeKind = Literal["creation", "propertyChange", "deletion", "associationChange"]


@dataclass(frozen=True)
class CrmChange:
    """One change to the CRM, seen from one record: what a webhook event is built from.

    An association change is reported from both ends, as two changes."""

    kind: ChangeKind
    object_type: str  # "contacts"
    object_id: int
    occurred_ms: int
    source: ChangeSource
    property_name: str | None = None
    property_value: str | None = None  # the new value; None when the property was cleared
    to_type: str | None = None
    to_id: int | None = None
    association_removed: bool = False
    primary: bool = False


ChangeListener = Callable[[list[CrmChange]], None]


class Crm:
    def __init__(self, seed: SeedData, clock: WriteClock, search_lag_s: Callable[[], float] = lambda: 0.0) -> None:
        self.clock = clock
        # The portal's property definitions per object type: the narrow schema, or a realistic width.
        self.properties: dict[str, dict[str, PropertyDef]] = seed.properties
        self.lock = threading.RLock()
        # Told of every write, in order, while the lock is held: it must return at once.
        self.on_change: ChangeListener | None = None
        self.owners: list[Owner] = seed.owners
        self.stores = {name: ObjectStore(t, FIRST_IDS[name]) for name, t in OBJECT_TYPES.items()}
        for name, records in seed.records.items():
            self.stores[name].load(records)
        self.graph = AssociationGraph()
        for from_id, to_id, association_types in seed.links:
            self.graph.link(from_id, to_id, association_types)
        self.search_index = SearchIndex(self.stores, search_lag_s)

    # ---- reads -------------------------------------------------------------------------------

    def list_page(
        self,
        object_type: ObjectType,
        start_id: int,
        limit: int,
        *,
        archived: bool,
        properties: Sequence[str],
        associations: Sequence[ObjectType],
        history: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], int | None]:
        with self.lock:
            records, next_id = self.stores[object_type.name].page(start_id, limit, archived=archived)
            return [self.render(object_type, r, properties, associations, history) for r in records], next_id

    def read(
        self,
        object_type: ObjectType,
        raw_id: str,
        *,
        archived: bool = False,
        id_property: str | None = None,
        properties: Sequence[str] = (),
        associations: Sequence[ObjectType] = (),
        history: Sequence[str] = (),
    ) -> dict[str, Any]:
        with self.lock:
            record = self._find(object_type, raw_id, archived=archived, id_property=id_property)
            return self.render(object_type, record, properties, associations, history)

    def batch_read(
        self,
        object_type: ObjectType,
        raw_ids: Sequence[str],
        properties: Sequence[str],
        *,
        archived: bool,
        id_property: str | None = None,
        history: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The records found and the ids not found; `id_property` (a unique property, such as a
        contact's email) names what the ids are, as on a single read."""
        with self.lock:
            found, missing = [], []
            for raw_id in raw_ids:
                record = self._lookup(object_type, raw_id, archived=archived, id_property=id_property)
                if record is None:
                    missing.append(raw_id)
                else:
                    found.append(self.render(object_type, record, properties, (), history))
            return found, missing

    def search(self, object_type: ObjectType, request: search.SearchRequest) -> tuple[int, list[dict[str, Any]]]:
        """Search runs over the search index, which may lag the writes (list, get and batch read never do)."""
        names = self.read_properties(object_type, list(request.properties) if request.properties is not None else None)
        with self.lock:
            total, page = search.execute(
                self.search_index.store(object_type.name), self.properties[object_type.name], request
            )
            return total, [self.render(object_type, r, names, ()) for r in page]

    def read_properties(self, object_type: ObjectType, requested: list[str] | None) -> list[str]:
        """The properties a read returns: the type's defaults when none are asked for; otherwise the
        portal's properties asked for plus the system properties HubSpot always includes."""
        if requested is None:
            return list(object_type.default_properties)
        known = self.properties[object_type.name]
        names = {name for name in requested if name in known}
        names.update(object_type.system_properties)
        return sorted(names)

    def history_properties(self, object_type: ObjectType, requested: list[str] | None) -> list[str]:
        """The properties whose history a read returns: those asked for that the object type has
        (HubSpot ignores the others, as it does in `properties`)."""
        known = self.properties[object_type.name]
        return list(dict.fromkeys(name for name in requested or () if name in known))

    def all_property_names(self, object_type: ObjectType) -> list[str]:
        return sorted(self.properties[object_type.name])

    def all_ids(self, object_type: ObjectType, *, archived: bool = False) -> set[str]:
        with self.lock:
            store = self.stores[object_type.name]
            return {str(i) for i in (store.archived_ids if archived else store.active_ids)}

    # ---- writes ------------------------------------------------------------------------------

    def create(
        self,
        object_type: ObjectType,
        raw_properties: Any,
        raw_associations: Any = None,
        *,
        change_source: ChangeSource = "API",
    ) -> dict[str, Any]:
        changes = validate_properties(object_type, raw_properties, self.properties[object_type.name])
        require_on_create(object_type, changes)
        with self.lock:
            changes = self._with_stage_effects(object_type, changes, {})
            links = self._parse_association_inputs(object_type, raw_associations)
            store = self.stores[object_type.name]
            self._refuse_duplicate_email(store, changes, None)
            now = self.clock.next_ms()
            properties = {name: value for name, value in changes.items() if value is not None}
            record = Record(store.allocate_id(), properties, now, now)
            self.search_index.before_write()
            store.insert(record)
            for name, value in properties.items():
                record.note_change(name, None, value, now, change_source)
            self.search_index.written(object_type.name, record)
            for to_id, association_type in links:
                self.graph.link(record.id, to_id, (association_type,))
            if self.on_change is not None:
                created = [CrmChange("creation", object_type.name, record.id, now, change_source)]
                linked: dict[tuple[str, int], bool] = {}
                for to_id, association_type in links:
                    key = (association_type.to_type, to_id)
                    linked[key] = linked.get(key, False) or association_type.primary
                for (to_type, to_id), primary in linked.items():
                    created += _association_changes(
                        object_type.name, record.id, to_type, to_id, now, change_source, primary
                    )
                self.on_change(created)
            return self.render(object_type, record, written_properties(object_type, record), ())

    def update(
        self,
        object_type: ObjectType,
        raw_id: str,
        raw_properties: Any,
        *,
        id_property: str | None = None,
        change_source: ChangeSource = "API",
    ) -> dict[str, Any]:
        changes = validate_properties(object_type, raw_properties, self.properties[object_type.name])
        with self.lock:
            store = self.stores[object_type.name]
            record = self._find(object_type, raw_id, id_property=id_property)
            changes = self._with_stage_effects(object_type, changes, record.properties)
            self._refuse_duplicate_email(store, changes, record.id)
            self.search_index.before_write()
            before = {name: record.properties.get(name) for name in changes}
            for name, value in changes.items():
                if name == "email":
                    store.set_email(record, value)
                elif value is None:
                    record.properties.pop(name, None)
                else:
                    record.properties[name] = value
            now = self.clock.next_ms()
            store.touch(record, now)
            for name, old in before.items():
                if record.properties.get(name) != old:
                    record.note_change(name, old, record.properties.get(name), now, change_source)
            self.search_index.written(object_type.name, record)
            if self.on_change is not None:
                # Only values that really changed are reported; writing the same value again is silent.
                changed = [
                    CrmChange(
                        "propertyChange",
                        object_type.name,
                        record.id,
                        now,
                        change_source,
                        property_name=name,
                        property_value=record.properties.get(name),
                    )
                    for name, old in before.items()
                    if record.properties.get(name) != old
                ]
                if changed:
                    self.on_change(changed)
            return self.render(object_type, record, written_properties(object_type, record), ())

    def archive(self, object_type: ObjectType, raw_id: str, *, change_source: ChangeSource = "API") -> None:
        with self.lock:
            store = self.stores[object_type.name]
            if self._lookup(object_type, raw_id, archived=True) is not None:
                return  # archiving twice is a no-op, not an error
            record = self._find(object_type, raw_id)
            now = self.clock.next_ms()
            self.search_index.before_write()
            store.archive(record, now)
            self.search_index.written(object_type.name, record)
            if self.on_change is not None:
                self.on_change([CrmChange("deletion", object_type.name, record.id, now, change_source)])

    def _with_stage_effects(
        self, object_type: ObjectType, changes: PropertyChanges, current: dict[str, str]
    ) -> PropertyChanges:
        if object_type.name != "tickets":
            return changes
        return {**changes, **ticket_stage_effects(changes, current, iso_ms(int(time.time() * 1000)))}

    def _refuse_duplicate_email(self, store: ObjectStore, changes: PropertyChanges, own_id: int | None) -> None:
        email = changes.get("email")
        if store.object_type.name != "contacts" or not email:
            return
        existing = store.email_owner(email)
        if existing is not None and existing != own_id:
            raise duplicate_contact(existing)

    # ---- associations ------------------------------------------------------------------------

    def _parse_association_inputs(self, object_type: ObjectType, raw: Any) -> list[tuple[int, AssociationType]]:
        """Check every association of a create before anything is written."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise validation_error("associations must be a list")
        links = []
        for item in raw:
            to_id = str(((item or {}).get("to") or {}).get("id", "")) if isinstance(item, dict) else ""
            types = item.get("types") if isinstance(item, dict) else None
            if not to_id or not isinstance(types, list) or not types:
                raise validation_error("each association needs to.id and a non-empty types list")
            for spec in types:
                association_type = self._association_type(object_type, spec)
                target = self._lookup(OBJECT_TYPES[association_type.to_type], to_id)
                if target is None:
                    to_singular = OBJECT_TYPES[association_type.to_type].singular
                    raise validation_error(
                        f"Could not associate: {to_singular} {to_id} does not exist",
                        context={"toObjectId": [to_id]},
                    )
                links.append((target.id, association_type))
        return links

    @staticmethod
    def _association_type(object_type: ObjectType, spec: Any) -> AssociationType:
        if not isinstance(spec, dict):
            raise validation_error("each association type needs associationCategory and associationTypeId")
        category = spec.get("associationCategory")
        type_id = spec.get("associationTypeId")
        association_type = ASSOCIATION_TYPES.get(type_id) if isinstance(type_id, int) else None
        if category != "HUBSPOT_DEFINED" or association_type is None or association_type.from_type != object_type.name:
            raise validation_error(
                f"Invalid association type {category} {type_id} for {object_type.name}",
                context={"associationTypeId": [str(type_id)]},
            )
        return association_type

    def association_batch_read(
        self, from_type: ObjectType, to_type: ObjectType, inputs: Any
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and "id" in i for i in inputs):
            raise validation_error("inputs must be a list of {id}")
        if len(inputs) > MAX_BATCH_INPUTS:
            raise validation_error(f"Too many inputs: {len(inputs)}. The limit is {MAX_BATCH_INPUTS}.")
        results, errors = [], []
        with self.lock:
            for item in inputs:
                raw_id = str(item["id"])
                start = _int_or(item.get("after"), 0)
                targets = self._live_targets(from_type, raw_id, to_type)
                page = [t for t in targets if t[0] >= start]
                if not page:
                    errors.append(_no_associations(from_type, raw_id, to_type))
                    continue
                result: dict[str, Any] = {
                    "from": {"id": raw_id},
                    "to": [
                        {"toObjectId": to_id, "associationTypes": [_v4_type(t) for t in type_ids]}
                        for to_id, type_ids in page[:ASSOCIATION_PAGE_SIZE]
                    ],
                }
                if len(page) > ASSOCIATION_PAGE_SIZE:
                    result["paging"] = {"next": {"after": str(page[ASSOCIATION_PAGE_SIZE][0])}}
                results.append(result)
        return results, errors

    def association_list(
        self, from_type: ObjectType, raw_id: str, to_type: ObjectType, start: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        with self.lock:
            self._find(from_type, raw_id)
            page = [t for t in self._live_targets(from_type, raw_id, to_type) if t[0] >= start]
            rows = [
                {"toObjectId": to_id, "associationTypes": [_v4_type(t) for t in type_ids]}
                for to_id, type_ids in page[:limit]
            ]
            return rows, page[limit][0] if len(page) > limit else None

    def associate_default(
        self,
        from_type: ObjectType,
        raw_from: str,
        to_type: ObjectType,
        raw_to: str,
        *,
        change_source: ChangeSource = "API",
    ) -> list[dict[str, Any]]:
        association_type = unlabeled_type(from_type.name, to_type.name)
        if association_type is None:
            raise validation_error(f"{from_type.name} cannot be associated with {to_type.name}")
        with self.lock:
            source = self._find(from_type, raw_from)
            target = self._find(to_type, raw_to)
            existing = self.graph.targets(from_type.name, source.id, to_type.name).get(target.id, ())
            self.graph.link(source.id, target.id, (association_type,))
            if self.on_change is not None and association_type.type_id not in existing:
                self.on_change(
                    _association_changes(
                        from_type.name, source.id, to_type.name, target.id, _now_ms(), change_source, False
                    )
                )
        return [
            _default_result(source.id_str, target.id_str, association_type),
            _default_result(target.id_str, source.id_str, inverse_type(association_type)),
        ]

    def unassociate(
        self,
        from_type: ObjectType,
        raw_from: str,
        to_type: ObjectType,
        raw_to: str,
        *,
        change_source: ChangeSource = "API",
    ) -> None:
        with self.lock:
            source = self._find(from_type, raw_from)
            target = self._find(to_type, raw_to)
            removed = self.graph.unlink(from_type.name, source.id, to_type.name, target.id)
            if self.on_change is not None and removed:
                self.on_change(
                    _association_changes(
                        from_type.name,
                        source.id,
                        to_type.name,
                        target.id,
                        _now_ms(),
                        change_source,
                        False,
                        removed=True,
                    )
                )

    def _live_targets(
        self, from_type: ObjectType, raw_id: str, to_type: ObjectType
    ) -> list[tuple[int, tuple[int, ...]]]:
        # Archived records drop out of their neighbours' associations, as on HubSpot.
        if not raw_id.isdigit():
            return []
        to_store = self.stores[to_type.name]
        targets = self.graph.targets(from_type.name, int(raw_id), to_type.name)
        return sorted((to_id, types) for to_id, types in targets.items() if to_store.get(to_id) is not None)

    # ---- rendering ---------------------------------------------------------------------------

    def render(
        self,
        object_type: ObjectType,
        record: Record,
        properties: Sequence[str],
        associations: Sequence[ObjectType],
        history: Sequence[str] = (),
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": record.id_str,
            "properties": {name: property_value(object_type, record, name) for name in properties},
            "createdAt": record.created_iso,
            "updatedAt": record.updated_iso,
            "archived": record.archived,
        }
        if record.archived:
            body["archivedAt"] = record.archived_iso
        if history:
            # Properties without any value are left out, as the spec says of propertiesWithHistory.
            versions = {name: property_history(object_type, record, name) for name in history}
            body["propertiesWithHistory"] = {
                name: [{"value": value, "timestamp": iso_ms(ms), "sourceType": source} for value, ms, source in entries]
                for name, entries in versions.items()
                if entries
            }
        linked = {}
        for to_type in associations:
            targets = self._live_targets(object_type, record.id_str, to_type)
            if not targets:
                continue
            block: dict[str, Any] = {
                "results": [
                    {"id": str(to_id), "type": v3_association_name(ASSOCIATION_TYPES[type_id])}
                    for to_id, type_ids in targets[:V3_ASSOCIATION_PAGE_SIZE]
                    for type_id in type_ids
                ]
            }
            if len(targets) > V3_ASSOCIATION_PAGE_SIZE:
                after = str(targets[V3_ASSOCIATION_PAGE_SIZE][0])
                # The link reads the rest of this record's associations of this type, as HubSpot's does.
                link = f"/crm/v3/objects/{object_type.type_id}/{record.id_str}/associations/{to_type.type_id}"
                block["paging"] = {"next": {"after": after, "link": f"{link}?after={after}"}}
            linked[to_type.name] = block
        if linked:
            body["associations"] = linked
        return body

    # ---- lookups -----------------------------------------------------------------------------

    def _lookup(
        self, object_type: ObjectType, raw_id: str, *, archived: bool = False, id_property: str | None = None
    ) -> Record | None:
        store = self.stores[object_type.name]
        if id_property not in (None, "", "hs_object_id"):
            definition = self.properties[object_type.name].get(id_property)
            if definition is None or not definition.has_unique_value:
                # As HubSpot words it for updates by a non-unique property (captured 2026).
                raise validation_error(
                    f"Unable to perform read by non-unique {object_type.type_id} property {id_property}"
                )
            if id_property != "email":
                wanted_value = raw_id.strip()
                pool = store.archived_ids if archived else store.active_ids
                return next(
                    (store.records[i] for i in pool if store.records[i].properties.get(id_property) == wanted_value),
                    None,
                )
            if archived:
                wanted = raw_id.strip().lower()
                archived_records = (store.records[i] for i in store.archived_ids)
                return next((r for r in archived_records if (r.properties.get("email") or "").lower() == wanted), None)
            owner = store.email_owner(raw_id)
            return store.get(owner) if owner is not None else None
        if not raw_id.isdigit():
            return None
        return store.get(int(raw_id), archived=archived)

    def _find(
        self, object_type: ObjectType, raw_id: str, *, archived: bool = False, id_property: str | None = None
    ) -> Record:
        record = self._lookup(object_type, raw_id, archived=archived, id_property=id_property)
        if record is None:
            raise not_found(raw_id)
        return record


def written_properties(object_type: ObjectType, record: Record) -> list[str]:
    return sorted({*record.properties, *object_type.system_properties})


def _now_ms() -> int:
    return int(time.time() * 1000)


def _association_changes(
    from_type: str,
    from_id: int,
    to_type: str,
    to_id: int,
    occurred_ms: int,
    source: ChangeSource,
    primary: bool,
    *,
    removed: bool = False,
) -> list[CrmChange]:
    """An association seen from both of its ends, as HubSpot fires one event per side."""
    return [
        CrmChange(
            "associationChange",
            a_type,
            a_id,
            occurred_ms,
            source,
            to_type=b_type,
            to_id=b_id,
            association_removed=removed,
            primary=primary,
        )
        for a_type, a_id, b_type, b_id in ((from_type, from_id, to_type, to_id), (to_type, to_id, from_type, from_id))
    ]


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _v4_type(type_id: int) -> dict[str, Any]:
    association_type = ASSOCIATION_TYPES[type_id]
    return {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": association_type.label}


def _default_result(from_id: str, to_id: str, association_type: AssociationType) -> dict[str, Any]:
    return {
        "from": {"id": from_id},
        "to": {"id": to_id},
        "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association_type.type_id},
    }


def _no_associations(from_type: ObjectType, raw_id: str, to_type: ObjectType) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        "context": {
            "fromObjectId": [raw_id],
            "fromObjectType": [from_type.singular],
            "toObjectType": [to_type.singular],
        },
        "message": f"No {to_type.singular} is associated with {from_type.singular} {raw_id}.",
    }


def missing_records_error(object_type: ObjectType, raw_ids: list[str]) -> dict[str, Any]:
    message = f"Could not get some {object_type.singular.upper()} objects, they may be deleted or not exist."
    return api_error(404, "OBJECT_NOT_FOUND", message, context={"ids": raw_ids}).body
