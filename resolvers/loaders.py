"""Per-execution dataloaders: every related object of a page is fetched in one query per kind.

A `Loaders` lives as long as one execution (a request, one operation over a WebSocket, one subscription
event: see `Caller.for_execution`), so what it remembers is never older than that execution. Within one,
each loader remembers at most `MAX_CACHED_KEYS` keys (the least recently used are forgotten and fetched
again if asked for) and asks the database for at most `MAX_BATCH_KEYS` keys per statement.
"""

from __future__ import annotations

import uuid
from asyncio import Future
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from sqlalchemy import func, select, tuple_
from sqlalchemy.engine import Row
from strawberry.dataloader import AbstractCache, DataLoader

from resolvers.records import RecordRow
from sync.storage.store import Store
from sync.storage.tables import RECORD_COLUMNS, common_text, connections, end_users, records, stream_states

RelatedKey = tuple[uuid.UUID, str, str]  # (connection id, common model, remote id)
# (connection id, common model, its relation to the parent, the parent's remote id): a ticket's comments
# are (connection, "TicketComment", "ticket", ticket remote id).
InverseKey = tuple[uuid.UUID, str, str, str]

MAX_CACHED_KEYS = 10_000
MAX_BATCH_KEYS = 1_000
# A parent shows at most this many of its children through an inverse relation (the oldest); the list
# of the child model filtered by the parent has them all.
MAX_CHILDREN = 100

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(AbstractCache[K, V]):
    """A loader's memory of the keys it was asked for, the least recently used forgotten past `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._futures: OrderedDict[K, Future[V]] = OrderedDict()

    def get(self, key: K) -> Future[V] | None:
        future = self._futures.get(key)
        if future is not None:
            self._futures.move_to_end(key)
        return future

    def set(self, key: K, value: Future[V]) -> None:
        self._futures[key] = value
        self._futures.move_to_end(key)
        while len(self._futures) > self.limit:
            # A forgotten future still resolves for whoever awaits it; a later load just asks again.
            self._futures.popitem(last=False)

    def delete(self, key: K) -> None:
        self._futures.pop(key, None)

    def clear(self) -> None:
        self._futures.clear()

    def __len__(self) -> int:
        return len(self._futures)


def _loader(load: Callable[[list[K]], Awaitable[Sequence[V]]], cached_keys: int) -> DataLoader[K, V]:
    return DataLoader(load, max_batch_size=MAX_BATCH_KEYS, cache_map=BoundedCache(cached_keys))


class Loaders:
    def __init__(self, store: Store, platform_id: uuid.UUID, *, cached_keys: int = MAX_CACHED_KEYS) -> None:
        self.store = store
        self.platform_id = platform_id
        self.connection: DataLoader[uuid.UUID, Row[Any] | None] = _loader(self._connections, cached_keys)
        self.end_user: DataLoader[uuid.UUID, Row[Any] | None] = _loader(self._end_users, cached_keys)
        self.related: DataLoader[RelatedKey, RecordRow | None] = _loader(self._related, cached_keys)
        self.inverse: DataLoader[InverseKey, list[RecordRow]] = _loader(self._inverse, cached_keys)
        self.stream_states: DataLoader[uuid.UUID, list[Row[Any]]] = _loader(self._stream_states, cached_keys)
        self.record_counts: DataLoader[uuid.UUID, dict[str, int]] = _loader(self._record_counts, cached_keys)

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

    async def _inverse(self, keys: list[InverseKey]) -> list[list[RecordRow]]:
        """The children of every parent asked for: one statement per (child model, relation), usually one."""
        children: dict[InverseKey, list[RecordRow]] = defaultdict(list)
        kinds: dict[tuple[str, str], list[tuple[uuid.UUID, str]]] = defaultdict(list)
        wanted = set(keys)
        for connection_id, model, via, parent_id in keys:
            kinds[(model, via)].append((connection_id, parent_id))
        for (model, via), parents in kinds.items():
            parent = common_text(via)  # the expression ix_records_model_<via> indexes
            numbered = (
                select(
                    *RECORD_COLUMNS,
                    parent.label("parent"),
                    func.row_number()
                    .over(
                        partition_by=(records.c.connection_id, parent),
                        order_by=(records.c.remote_created_at, records.c.id),
                    )
                    .label("position"),
                )
                .where(
                    records.c.platform_id == self.platform_id,
                    records.c.model == model,
                    records.c.deleted.is_(False),
                    # By parent id through the index; a parent id that is also another connection's
                    # is read for both and the other's children are left out below.
                    parent.in_(sorted({remote_id for _, remote_id in parents})),
                    records.c.connection_id.in_(sorted({connection_id for connection_id, _ in parents})),
                )
                .subquery()
            )
            stmt = select(numbered).where(numbered.c.position <= MAX_CHILDREN).order_by(numbered.c.position)
            for row in await self._rows(stmt):
                record = RecordRow._make(tuple(row)[: len(RECORD_COLUMNS)])
                key = (record.connection_id, model, via, row.parent)
                if key in wanted:
                    children[key].append(record)
        return [children.get(key, []) for key in keys]

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
