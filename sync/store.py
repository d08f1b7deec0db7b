from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from sync.crypto import Vault


@dataclass(frozen=True)
class Store:
    """The database and the key that seals credentials in it."""

    engine: AsyncEngine
    vault: Vault


def utcnow() -> datetime:
    return datetime.now(UTC)
