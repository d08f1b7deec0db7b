"""Per-request dataloaders: every related object of a page is fetched in one query per kind."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.engine import Row
from strawberry.dataloader import DataLoader

from resolvers.records import RecordRow
from sync.storage.store import Store
from sync.storage.tables import RECORD_COLUMNS, connections, end_users, records, stream_states

RelatedKey = tuple[uuid.UUID, str, str]  # (connection id, common model, remote id)


class Loaders:
    def __init__(self, store: Store, platform_id: uuid.UUID) -> None:
        self.store = store
        self.platform_id = platform_id
        self.connection: DataLoader[uuid.UUID, Row[Any] | None] = DataLoader(self._connections)
        self.end_user: DataLoader[uuid.UUID, Row[Any] | None] = DataLoader(self._end_users)
        self.related: DataLoader[RelatedKey, RecordRow | None] = DataLoader(self._related)
        self.stream_states: DataLoader[uuid.UUID, list[Row[Any]]] = DataLoader(self._stream_states)
        self.record_counts: DataLoader[uuid.UUID, dict[str, int]] = DataLoader(self._record_counts)

    async def _rows(self, stmt: Any) -> Sequence[Row[Any]]:
        async with self.store.reader.connect() as conn:
            return (await conn.execute(stmt)).all()

    async def _connections(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        rows = await self._rows(
            select(connections).where(connections.c.platform_id == self.platform_id, connections.c.id.in_(ids))
        )
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def _end_users(self, ids: list[uuid.UUID]) -> list[Row[Any] | None]:
        rows = await self._rows(
            select(end_users).where(end_users.c.platform_id == self.platform_id, end_users.c.id.in_(ids))
        )
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def _related(self, keys: list[RelatedKey]) -> list[RecordRow | None]:
        rows = await self._rows(
            select(*RECORD_COLUMNS).where(
                records.c.platform_id == self.platform_id,
                records.c.deleted.is_(False),
                tuple_(records.c.connection_id, records.c.model, records.c.remote_id).in_(keys),
            )
        )
        found = {(row.connection_id, row.model, row.remote_id): RecordRow._make(row) for row in rows}
        return [found.get(key) for key in keys]

    async def _stream_states(self, connection_ids: list[uuid.UUID]) -> list[list[Row[Any]]]:
        rows = await self._rows(
            select(stream_states)
            .where(stream_states.c.platform_id == self.platform_id, stream_states.c.connection_id.in_(connection_ids))
            .order_by(stream_states.c.stream)
        )
        grouped: dict[uuid.UUID, list[Row[Any]]] = defaultdict(list)
        for row in rows:
            grouped[row.connection_id].append(row)
        return [grouped.get(i, []) for i in connection_ids]

    async def _record_counts(self, connection_ids: list[uuid.UUID]) -> list[dict[str, int]]:
        rows = await self._rows(
            select(records.c.connection_id, records.c.stream, func.count().label("n"))
            .where(
                records.c.platform_id == self.platform_id,
                records.c.connection_id.in_(connection_ids),
                records.c.deleted.is_(False),
            )
            .group_by(records.c.connection_id, records.c.stream)
        )
        counts: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
        for row in rows:
            counts[row.connection_id][row.stream] = int(row.n)
        return [counts.get(i, {}) for i in connection_ids]
