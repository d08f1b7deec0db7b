"""The emulated org's data: queries, record reads and writes, and the replication feeds, as the
REST API performs them. HTTP handlers and the Python control API both go through here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from connectors.salesforce.sandbox import query as soql_query
from connectors.salesforce.sandbox.cursors import CursorStore, QueryCursor
from connectors.salesforce.sandbox.derived import derive
from connectors.salesforce.sandbox.duplicates import DuplicateRules
from connectors.salesforce.sandbox.errors import (
    bad_request,
    entity_is_deleted,
    method_not_allowed,
    not_found,
)
from connectors.salesforce.sandbox.ids import normalize_id
from connectors.salesforce.sandbox.replication import (
    DELETED_LOOKBACK_DAYS,
    UPDATED_LOOKBACK_DAYS,
    replication_window,
)
from connectors.salesforce.sandbox.schema import (
    ACCOUNT,
    CONTACT,
    LEAD,
    NOTE,
    OPPORTUNITY,
    STAGE_PROBABILITY,
    STANDARD_SCHEMA,
    TASK,
    FieldType,
    Schema,
    SObjectType,
)
from connectors.salesforce.sandbox.store import Row, SObjectTable
from connectors.salesforce.sandbox.timestamps import WriteClock, format_datetime, now_ms
from connectors.salesforce.sandbox.writes import Changes, validate_write

API_VERSION = "60.0"
API_ROOT = f"/services/data/v{API_VERSION}"
# The sandbox never purges its delete log, so it covers everything since the org was created.
EARLIEST_DATE_AVAILABLE = "2023-06-01T00:00:00.000+0000"

# Deleting a record deletes the records that belong to it, as Salesforce's cascade does:
# (child object, the field that points at the parent).
CASCADES: dict[str, tuple[tuple[SObjectType, str], ...]] = {
    ACCOUNT.name: ((CONTACT, "AccountId"), (OPPORTUNITY, "AccountId"), (NOTE, "ParentId"), (TASK, "WhatId")),
    CONTACT.name: ((NOTE, "ParentId"), (TASK, "WhoId")),
    OPPORTUNITY.name: ((NOTE, "ParentId"), (TASK, "WhatId")),
    LEAD.name: ((TASK, "WhoId"),),
}


class Org:
    def __init__(
        self,
        tables: dict[str, SObjectTable],
        clock: WriteClock,
        cursors: CursorStore,
        now: Callable[[], int] = now_ms,
        schema: Schema = STANDARD_SCHEMA,
    ) -> None:
        self.schema = schema
        self.tables = tables
        self.clock = clock
        self.cursors = cursors
        self.now = now  # what "now" is to the replication feeds; tests move it forward
        self.lock = threading.RLock()
        self.duplicates = DuplicateRules(tables)

    def table(self, sobject: SObjectType) -> SObjectTable:
        return self.tables[sobject.name]

    # ---- queries -----------------------------------------------------------------------------

    def query(self, soql: str, *, include_deleted: bool, batch_size: int) -> dict[str, Any]:
        compiled = soql_query.compile_query(soql, self.schema)
        with self.lock:
            rows = soql_query.run(self.table(compiled.sobject), compiled, include_deleted=include_deleted)
        render = soql_query.record_renderer(compiled.sobject, compiled.columns, API_ROOT)
        if len(rows) <= batch_size:
            return {"totalSize": len(rows), "done": True, "records": [render(row) for row in rows]}
        cursor = self.cursors.open(rows, render, batch_size)
        return _page(cursor, 0, batch_size)

    def query_more(self, locator_and_offset: str, batch_size: int | None) -> dict[str, Any]:
        locator, _, offset = locator_and_offset.partition("-")
        cursor = self.cursors.get(locator)
        if cursor is None or not offset.isdigit() or int(offset) > len(cursor.rows):
            raise bad_request("INVALID_QUERY_LOCATOR", "invalid query locator")
        return _page(cursor, int(offset), batch_size or cursor.batch_size)

    # ---- records -----------------------------------------------------------------------------

    def read(self, sobject: SObjectType, raw_id: str, fields: list[str] | None = None) -> dict[str, Any]:
        if fields is None:
            columns = [(f.name, i) for i, f in enumerate(sobject.fields)]
        else:
            columns = []
            for name in fields:
                definition = sobject.field(name)
                if definition is None:
                    raise bad_request(
                        "INVALID_FIELD",
                        f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a custom "
                        "field, be sure to append the '__c' after the custom field name. Please reference your WSDL "
                        "or the describe call for the appropriate names.",
                    )
                columns.append((definition.name, sobject.position(definition.name)))
        with self.lock:
            row = self._locate(sobject, raw_id)
            if _is_deleted(sobject, row):
                raise not_found()
        return soql_query.record_renderer(sobject, columns, API_ROOT)(row)

    def create(
        self,
        sobject: SObjectType,
        body: dict[str, Any],
        user_id: str,
        raw: bytes = b"",
        *,
        allow_duplicates: bool = False,
    ) -> str:
        """`allow_duplicates` is `Sforce-Duplicate-Rule-Header: allowSave=true`."""
        with self.lock:
            changes = validate_write(sobject, body, creating=True, lookup=self._lookup, raw=raw)
            table = self.table(sobject)
            row: Row = [False if f.type is FieldType.BOOLEAN else f.default for f in sobject.fields]
            self._apply(sobject, row, changes)
            if not allow_duplicates:
                self.duplicates.check(sobject, row, API_ROOT)
            stamp = format_datetime(self.clock.next_ms())
            row[0] = table.allocate_id()
            if "ownerid" in sobject.positions and changes.get("OwnerId") is None:
                row[sobject.position("OwnerId")] = user_id
            row[sobject.position("CreatedDate")] = stamp
            row[sobject.position("CreatedById")] = user_id
            self._touch(sobject, row, stamp, user_id)
            table.insert(row)
            self.duplicates.stored(sobject, None, row)
            return str(row[0])

    def update(
        self,
        sobject: SObjectType,
        raw_id: str,
        body: dict[str, Any],
        user_id: str,
        raw: bytes = b"",
        *,
        allow_duplicates: bool = False,
    ) -> None:
        with self.lock:
            old = self._writable(sobject, raw_id)
            changes = validate_write(sobject, body, creating=False, lookup=self._lookup, raw=raw)
            row = list(old)
            self._apply(sobject, row, changes)
            if not allow_duplicates:
                self.duplicates.check(sobject, row, API_ROOT)
            self._touch(sobject, row, format_datetime(self.clock.next_ms()), user_id)
            self._replace(sobject, old, row)

    def delete(self, sobject: SObjectType, raw_id: str, user_id: str) -> None:
        if sobject.deleted_at is None:
            raise method_not_allowed("DELETE", ("GET", "HEAD", "PATCH"))
        with self.lock:
            old = self._writable(sobject, raw_id)
            self._soft_delete(sobject, old, format_datetime(self.clock.next_ms()), user_id)

    def all_ids(self, sobject: SObjectType, *, deleted: bool = False) -> set[str]:
        with self.lock:
            rows = self.table(sobject).rows.values()
            if sobject.deleted_at is None:
                return set() if deleted else {row[0] for row in rows}
            return {row[0] for row in rows if bool(row[sobject.deleted_at]) == deleted}

    # ---- replication -------------------------------------------------------------------------

    def updated(self, sobject: SObjectType, start: str | None, end: str | None) -> dict[str, Any]:
        window = replication_window(start, end, lookback_days=UPDATED_LOOKBACK_DAYS, now_ms=self.now())
        with self.lock:
            rows = self.table(sobject).modstamp_range((window.start, True), (window.latest_covered, False))
            ids = [row[0] for row in rows if not _is_deleted(sobject, row)]
        return {"ids": ids, "latestDateCovered": window.latest_covered}

    def deleted(self, sobject: SObjectType, start: str | None, end: str | None) -> dict[str, Any]:
        window = replication_window(start, end, lookback_days=DELETED_LOOKBACK_DAYS, now_ms=self.now())
        with self.lock:
            entries = self.table(sobject).deleted_between(window.start, window.latest_covered)
        return {
            "deletedRecords": [{"id": record_id, "deletedDate": deleted_date} for deleted_date, record_id in entries],
            "earliestDateAvailable": EARLIEST_DATE_AVAILABLE,
            "latestDateCovered": window.latest_covered,
        }

    # ---- internals ---------------------------------------------------------------------------

    def _lookup(self, sobject: SObjectType, record_id: str) -> Row | None:
        return self.table(sobject).get(record_id)

    def _locate(self, sobject: SObjectType, raw_id: str) -> Row:
        canonical = normalize_id(raw_id)
        if canonical is None or canonical[:3] != sobject.key_prefix:
            # Salesforce reads a path segment that is not an id of this object as an external id field.
            raise not_found(f"Provided external ID field does not exist or is not accessible: {raw_id}")
        row = self.table(sobject).get(canonical)
        if row is None:
            raise not_found()
        return row

    def _writable(self, sobject: SObjectType, raw_id: str) -> Row:
        row = self._locate(sobject, raw_id)
        if _is_deleted(sobject, row):
            raise entity_is_deleted()
        return row

    def _apply(self, sobject: SObjectType, row: Row, changes: Changes) -> None:
        for name, value in changes.items():
            row[sobject.position(name)] = value
        if sobject is OPPORTUNITY and "StageName" in changes and "Probability" not in changes:
            row[sobject.position("Probability")] = STAGE_PROBABILITY.get(changes["StageName"])

    def _replace(self, sobject: SObjectType, old: Row, new: Row) -> None:
        self.table(sobject).replace(old, new)
        self.duplicates.stored(sobject, old, new)

    def _touch(self, sobject: SObjectType, row: Row, stamp: str, user_id: str) -> None:
        row[sobject.position("LastModifiedDate")] = row[sobject.modstamp_at] = stamp
        row[sobject.position("LastModifiedById")] = user_id
        derive(sobject, row)

    def _soft_delete(self, sobject: SObjectType, old: Row, stamp: str, user_id: str) -> None:
        assert sobject.deleted_at is not None
        row = list(old)
        row[sobject.deleted_at] = True
        self._touch(sobject, row, stamp, user_id)
        self._replace(sobject, old, row)
        self.table(sobject).log_deletion(stamp, row[0])
        for child, field in CASCADES.get(sobject.name, ()):
            position = child.position(field)
            children = [
                r for r in self.table(child).rows.values() if r[position] == row[0] and not _is_deleted(child, r)
            ]
            for child_row in children:
                self._soft_delete(child, child_row, stamp, user_id)


def _is_deleted(sobject: SObjectType, row: Row) -> bool:
    return sobject.deleted_at is not None and bool(row[sobject.deleted_at])


def _page(cursor: QueryCursor, offset: int, batch_size: int) -> dict[str, Any]:
    chunk = cursor.rows[offset : offset + batch_size]
    next_offset = offset + len(chunk)
    done = next_offset >= len(cursor.rows)
    body: dict[str, Any] = {"totalSize": len(cursor.rows), "done": done}
    if not done:
        body["nextRecordsUrl"] = f"{API_ROOT}/query/{cursor.locator}-{next_offset}"
    body["records"] = [cursor.render(row) for row in chunk]
    return body
