"""What a connector hands to the syncer: plain records and pages, no database or GraphQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class RemoteRecord:
    remote_id: str
    raw: dict[str, Any]
    common: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted: bool = False
    deleted_at: datetime | None = None


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
