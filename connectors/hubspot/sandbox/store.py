"""In-memory CRM records of one object type, indexed so a page costs O(limit)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from connectors.hubspot.sandbox.schema import ObjectType
from connectors.hubspot.sandbox.timestamps import iso_ms


class Record:
    """One CRM record. System properties (create/modified dates, hs_object_id) are derived from
    the fields here rather than stored in `properties`, so they can never disagree."""

    __slots__ = (
        "_created_iso",
        "_updated_iso",
        "archived_ms",
        "created_ms",
        "history",
        "id",
        "id_str",
        "properties",
        "updated_ms",
    )

    def __init__(self, record_id: int, properties: dict[str, str], created_ms: int, updated_ms: int) -> None:
        self.id = record_id
        self.id_str = str(record_id)
        self.properties = properties
        self.created_ms = created_ms
        self.updated_ms = updated_ms
        self.archived_ms: int | None = None
        # Formatted on first read: most of a large seeded portal is never rendered.
        self._created_iso: str | None = None
        self._updated_iso: str | None = None
        # Property name -> (value, ms, sourceType) oldest first, for properties written since the
        # record was loaded; a seeded value has no entry until it changes (see `property_history`).
        self.history: dict[str, list[HistoryEntry]] | None = None

    @property
    def archived(self) -> bool:
        return self.archived_ms is not None

    @property
    def created_iso(self) -> str:
        if self._created_iso is None:
            self._created_iso = iso_ms(self.created_ms)
        return self._created_iso

    @property
    def updated_iso(self) -> str:
        if self._updated_iso is None:
            self._updated_iso = iso_ms(self.updated_ms)
        return self._updated_iso

    @property
    def archived_iso(self) -> str | None:
        return None if self.archived_ms is None else iso_ms(self.archived_ms)

    def set_updated(self, ms: int) -> None:
        self.updated_ms = ms
        self._updated_iso = None

    def note_change(self, name: str, before: str | None, after: str | None, ms: int, source: str) -> None:
        """Record that a property was set (an empty string when it was cleared)."""
        if self.history is None:
            self.history = {}
        entries = self.history.get(name)
        if entries is None:
            entries = self.history[name] = [] if before is None else [(before, self.created_ms, SEEDED_SOURCE)]
        entries.append((after or "", ms, source))


# One version of a property: its value, when it was set (ms) and HubSpot's sourceType for the writer.
HistoryEntry = tuple[str, int, str]
# Seeded values stand for data that came into the portal with it.
SEEDED_SOURCE = "IMPORT"


def property_history(object_type: ObjectType, record: Record, name: str) -> list[HistoryEntry]:
    """Every value a property has had, newest first, as `propertiesWithHistory` lists them."""
    entries = record.history.get(name) if record.history else None
    if entries is not None:
        return entries[::-1]
    current = property_value(object_type, record, name)
    if current is None:
        return []
    if name == object_type.modified_property:
        return [(current, record.updated_ms, "CALCULATED")]
    if name in object_type.system_properties:
        return [(current, record.created_ms, "CALCULATED")]
    return [(current, record.created_ms, SEEDED_SOURCE)]


def property_value(object_type: ObjectType, record: Record, name: str) -> str | None:
    if name == object_type.modified_property:
        return record.updated_iso
    if name == object_type.created_property:
        return record.created_iso
    if name == "hs_object_id":
        return record.id_str
    return record.properties.get(name)


class ObjectStore:
    """Records of one object type. Ids only grow, so the id lists stay sorted by appending, and
    a `(modified ms, id)` index serves the usual incremental search without a full scan."""

    def __init__(self, object_type: ObjectType, first_id: int) -> None:
        self.object_type = object_type
        self.records: dict[int, Record] = {}
        self.active_ids: list[int] = []
        self.archived_ids: list[int] = []
        self.by_modified: list[tuple[int, int]] = []
        self.emails: dict[str, int] = {}
        self.next_id = first_id

    def allocate_id(self, gap: int = 1) -> int:
        record_id = self.next_id
        self.next_id += gap
        return record_id

    def load(self, records: list[Record]) -> None:
        """Bulk-load seeded records (ascending ids) in one pass."""
        for record in records:
            self.records[record.id] = record
            self.active_ids.append(record.id)
            self._index_email(record)
        self.by_modified = sorted((r.updated_ms, r.id) for r in records)
        if records:
            self.next_id = max(self.next_id, records[-1].id + 1)

    def insert(self, record: Record) -> None:
        self.records[record.id] = record
        bisect.insort(self.active_ids, record.id)
        bisect.insort(self.by_modified, (record.updated_ms, record.id))
        self._index_email(record)

    def get(self, record_id: int, *, archived: bool = False) -> Record | None:
        record = self.records.get(record_id)
        if record is None or record.archived != archived:
            return None
        return record

    def touch(self, record: Record, ms: int) -> None:
        self._unindex_modified(record)
        record.set_updated(ms)
        bisect.insort(self.by_modified, (record.updated_ms, record.id))

    def replace(self, record: Record, properties: dict[str, str], ms: int) -> None:
        """Give `record` these properties, as modified at `ms`."""
        self._unindex_email(record)
        record.properties = properties
        self._index_email(record)
        self.touch(record, ms)

    def set_email(self, record: Record, email: str | None) -> None:
        self._unindex_email(record)
        if email is None:
            record.properties.pop("email", None)
        else:
            record.properties["email"] = email
        self._index_email(record)

    def archive(self, record: Record, ms: int) -> None:
        self._unindex_modified(record)
        self._unindex_email(record)
        record.set_updated(ms)
        record.archived_ms = ms
        del self.active_ids[bisect.bisect_left(self.active_ids, record.id)]
        bisect.insort(self.archived_ids, record.id)

    def page(self, start_id: int, limit: int, *, archived: bool) -> tuple[list[Record], int | None]:
        """Up to `limit` records with id >= `start_id`, and the id the next page starts at."""
        ids = self.archived_ids if archived else self.active_ids
        start = bisect.bisect_left(ids, start_id)
        chunk = ids[start : start + limit + 1]
        next_id = chunk[limit] if len(chunk) > limit else None
        return [self.records[i] for i in chunk[:limit]], next_id

    def active(self) -> Iterator[Record]:
        return (self.records[i] for i in self.active_ids)

    def modified_between(self, low_ms: int | None, high_ms: int | None) -> list[Record]:
        """Active records whose modified date lies in [low, high], oldest first, ties by id."""
        lo = 0 if low_ms is None else bisect.bisect_left(self.by_modified, (low_ms, -1))
        hi = len(self.by_modified) if high_ms is None else bisect.bisect_right(self.by_modified, (high_ms, 1 << 62))
        return [self.records[record_id] for _, record_id in self.by_modified[lo:hi]]

    def email_owner(self, email: str) -> int | None:
        return self.emails.get(email.strip().lower())

    def _index_email(self, record: Record) -> None:
        email = record.properties.get("email")
        if email and not record.archived:
            self.emails.setdefault(email.strip().lower(), record.id)

    def _unindex_email(self, record: Record) -> None:
        email = record.properties.get("email")
        if email and self.emails.get(email.strip().lower()) == record.id:
            del self.emails[email.strip().lower()]

    def _unindex_modified(self, record: Record) -> None:
        key = (record.updated_ms, record.id)
        index = bisect.bisect_left(self.by_modified, key)
        if index < len(self.by_modified) and self.by_modified[index] == key:
            del self.by_modified[index]
