"""Trusted documents: the operations a platform registered, by the SHA-256 of their text, and the switch
that makes the gateway run only those.

Every gateway process asks here for each operation of a platform in trusted documents mode, so answers
are remembered for a few seconds (`CACHE_SECONDS`): a change made in this process applies at once, one
made by another process (`xkit documents push`, `remove`, `trusted-only`) within that time.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.kit.errors import BadInput, NotFound, XkitError
from sync.storage.store import Store, utcnow
from sync.storage.tables import persisted_documents, platforms

CACHE_SECONDS = 5.0
MAX_REMEMBERED = 50_000


class PersistedQueryNotFound(XkitError):
    """A hash the gateway does not know (Apollo's clients then send the document with it)."""

    code = "PERSISTED_QUERY_NOT_FOUND"


class PersistedQueryNotSupported(XkitError):
    """A hash sent alone to a gateway that does not store documents from its clients (nor knows this one)."""

    code = "PERSISTED_QUERY_NOT_SUPPORTED"


class DocumentNotTrusted(XkitError):
    """A document sent in full to a platform in trusted documents mode, and not among its registered ones."""

    code = "QUERY_NOT_IN_SAFELIST"


class TooManyDocuments(BadInput):
    pass


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass(frozen=True)
class RegisteredDocument:
    sha256: str
    operation_names: tuple[str, ...]
    created_at: datetime
    document: str


@dataclass(frozen=True)
class Pushed:
    added: int
    unchanged: int


class _Remembered:
    """Answers per platform (and per platform and hash), each for CACHE_SECONDS, the oldest forgotten first."""

    def __init__(self) -> None:
        self._answers: OrderedDict[tuple[uuid.UUID, str], tuple[float, bool]] = OrderedDict()

    def get(self, key: tuple[uuid.UUID, str]) -> bool | None:
        found = self._answers.get(key)
        if found is None or time.monotonic() - found[0] > CACHE_SECONDS:
            return None
        return found[1]

    def put(self, key: tuple[uuid.UUID, str], answer: bool) -> None:
        self._answers[key] = (time.monotonic(), answer)
        self._answers.move_to_end(key)
        if len(self._answers) > MAX_REMEMBERED:
            self._answers.popitem(last=False)

    def forget(self, platform_id: uuid.UUID) -> None:
        for key in [key for key in self._answers if key[0] == platform_id]:
            del self._answers[key]


_remembered = _Remembered()
_MODE = ""  # the key of a platform's own switch among its hashes (no hash is empty)


async def trusted_only(store: Store, platform_id: uuid.UUID) -> bool:
    known = _remembered.get((platform_id, _MODE))
    if known is not None:
        return known
    async with store.reader.connect() as conn:
        found = (
            await conn.execute(select(platforms.c.trusted_documents_only).where(platforms.c.id == platform_id))
        ).scalar()
    _remembered.put((platform_id, _MODE), bool(found))
    return bool(found)


async def is_registered(store: Store, platform_id: uuid.UUID, sha256: str) -> bool:
    known = _remembered.get((platform_id, sha256))
    if known is not None:
        return known
    async with store.reader.connect() as conn:
        found = (
            await conn.execute(
                select(persisted_documents.c.sha256).where(
                    persisted_documents.c.platform_id == platform_id, persisted_documents.c.sha256 == sha256
                )
            )
        ).first()
    _remembered.put((platform_id, sha256), found is not None)
    return found is not None


async def registered_document(store: Store, platform_id: uuid.UUID, sha256: str) -> str | None:
    async with store.reader.connect() as conn:
        found = (
            await conn.execute(
                select(persisted_documents.c.document).where(
                    persisted_documents.c.platform_id == platform_id, persisted_documents.c.sha256 == sha256
                )
            )
        ).scalar()
    return str(found) if found is not None else None


async def set_trusted_only(store: Store, platform_id: uuid.UUID, enabled: bool) -> bool:
    """False when there is no such platform."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(platforms).where(platforms.c.id == platform_id).values(trusted_documents_only=enabled)
        )
    _remembered.forget(platform_id)
    return bool(result.rowcount)


@dataclass(frozen=True)
class NewDocument:
    """A document checked against the schema and the limits, ready to register."""

    sha256: str
    document: str
    operation_names: tuple[str, ...]


async def register_documents(
    store: Store, platform_id: uuid.UUID, documents: Iterable[NewDocument], limit: int
) -> Pushed:
    """Register documents; those already registered are left as they are. All or nothing: a platform would
    have more than `limit` documents, nothing is stored."""
    wanted = {document.sha256: document for document in documents}
    async with store.engine.begin() as conn:
        if (await conn.execute(select(platforms.c.id).where(platforms.c.id == platform_id))).first() is None:
            raise NotFound(f"no platform with id {platform_id}")
        existing = set(
            (
                await conn.execute(
                    select(persisted_documents.c.sha256).where(persisted_documents.c.platform_id == platform_id)
                )
            ).scalars()
        )
        new = [document for sha256, document in wanted.items() if sha256 not in existing]
        if len(existing) + len(new) > limit:
            raise TooManyDocuments(
                f"the platform would have {len(existing) + len(new)} registered documents, more than the "
                f"{limit} allowed; remove some first (xkit documents remove)",
                limit="documents",
                maximum=limit,
            )
        if new:
            now = utcnow()
            insert = postgresql.insert if store.engine.dialect.name == "postgresql" else sqlite.insert
            # A push running at the same time may register some of them first: theirs stand.
            await conn.execute(
                insert(persisted_documents).on_conflict_do_nothing(),
                [
                    {
                        "platform_id": platform_id,
                        "sha256": document.sha256,
                        "document": document.document,
                        "operation_names": ",".join(document.operation_names),
                        "created_at": now,
                    }
                    for document in new
                ],
            )
    _remembered.forget(platform_id)
    return Pushed(added=len(new), unchanged=len(wanted) - len(new))


async def list_documents(store: Store, platform_id: uuid.UUID) -> list[RegisteredDocument]:
    async with store.reader.connect() as conn:
        rows = await conn.execute(
            select(persisted_documents)
            .where(persisted_documents.c.platform_id == platform_id)
            .order_by(persisted_documents.c.created_at, persisted_documents.c.sha256)
        )
        return [
            RegisteredDocument(
                row.sha256, tuple(filter(None, row.operation_names.split(","))), row.created_at, row.document
            )
            for row in rows
        ]


async def remove_documents(store: Store, platform_id: uuid.UUID, hashes: Iterable[str] | None) -> int:
    """Remove the given documents, or every document of the platform when `hashes` is None."""
    query = delete(persisted_documents).where(persisted_documents.c.platform_id == platform_id)
    if hashes is not None:
        query = query.where(persisted_documents.c.sha256.in_(list(hashes)))
    async with store.engine.begin() as conn:
        result = await conn.execute(query)
    _remembered.forget(platform_id)
    return int(result.rowcount or 0)
