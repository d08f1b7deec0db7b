"""What a connector hands to the syncer: plain records and pages, no database or GraphQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.kit.field_mappings import CustomFieldType, ModelOverlay, sortable

# One row of the custom-field index a record keeps: (key, text, number, instant as ISO text); a list has
# a row per item, so `in` and `contains` find any of them.
CustomIndexEntry = tuple[str, str | None, float | None, str | None]


@dataclass(slots=True)
class RemoteRecord:
    remote_id: str
    raw: dict[str, Any]
    common: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted: bool = False
    deleted_at: datetime | None = None
    # The custom values the connection's field mappings derive ({key: value or None}); None when the
    # platform defines no custom field on the record's model.
    custom: dict[str, Any] | None = None
    # `custom` as the filters' index holds it (see `custom_index`).
    custom_index: list[CustomIndexEntry] = field(default_factory=list)


def custom_index(custom: dict[str, Any], overlay: ModelOverlay) -> list[CustomIndexEntry]:
    """The index rows of a record's custom values: typed by the field each was derived for; nulls have none."""
    entries: list[CustomIndexEntry] = []
    for key, (wanted, _) in overlay.custom.items():
        value = custom.get(key)
        if value is None:
            continue
        if wanted is CustomFieldType.STRING_LIST:
            entries += [(key, str(item), None, None) for item in value]
        else:
            entries.append((key, *sortable(value, wanted)))
    return entries


@dataclass(slots=True)
class Page:
    """One provider page and the cursor that resumes *after* it.

    The syncer saves `cursor` in the same transaction as `records`, so a run killed at any
    instant resumes without losing or repeating a page.
    """

    records: list[RemoteRecord]
    cursor: dict[str, Any] | None
    # Provider-side instant up to which this page proves completeness (used for incremental cursors).
    high_water: datetime | None = field(default=None)


# A record whose JSON is larger than this is stored truncated (see `truncated`); the gateway's setting
# XKIT_MAX_RECORD_BYTES overrides it.
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
# Where a truncated record's `raw` says so.
TRUNCATED_MARKER = "xkitTruncated"
_LIST_ITEMS_KEPT = 100


def truncated(record: RemoteRecord, original_bytes: int, max_bytes: int, digest: str) -> RemoteRecord:
    """`record` made small enough to store: its common fields with long strings and lists cut short, and
    in place of its raw payload a marker naming the record and its original size, so it still appears.
    `digest` (of the original) changes with the content, so a change of the record is still a change."""
    marker = {
        TRUNCATED_MARKER: {
            "remoteId": record.remote_id,
            "originalBytes": original_bytes,
            "limitBytes": max_bytes,
            "digest": digest,
        }
    }
    string_cap = max(64, max_bytes // 64)
    return RemoteRecord(
        remote_id=record.remote_id,
        raw=marker,
        common=_capped(record.common, string_cap) if record.common is not None else None,
        created_at=record.created_at,
        updated_at=record.updated_at,
        deleted=record.deleted,
        deleted_at=record.deleted_at,
        custom=_capped(record.custom, string_cap) if record.custom is not None else None,
        custom_index=record.custom_index,
    )


def _capped(value: Any, string_cap: int) -> Any:
    if isinstance(value, str):
        return value[:string_cap]
    if isinstance(value, list):
        return [_capped(item, string_cap) for item in value[:_LIST_ITEMS_KEPT]]
    if isinstance(value, dict):
        return {key: _capped(item, string_cap) for key, item in value.items()}
    return value
