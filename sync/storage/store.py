from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncEngine

from sync.storage.bus import ChangeBus
from sync.storage.crypto import Vault
from sync.storage.revocation import KeyRevocations


@dataclass(frozen=True)
class Store:
    """The database and the key that seals credentials in it."""

    engine: AsyncEngine
    vault: Vault
    # Wakes this process's readers of the change log after a commit that appended to it.
    changes_appended: ChangeBus = field(default_factory=lambda: ChangeBus(), compare=False)
    # Tells this process's key caches and open WebSockets that a key was revoked (see sync/storage/revocation.py).
    keys_revoked: KeyRevocations = field(default_factory=lambda: KeyRevocations(), compare=False)

    @cached_property
    def reader(self) -> AsyncEngine:
        """The same pool in autocommit mode: a single-statement read skips BEGIN and ROLLBACK round trips."""
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")


def utcnow() -> datetime:
    return datetime.now(UTC)
