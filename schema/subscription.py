"""Subscriptions: the change stream and sync progress, over WebSocket (graphql-transport-ws and graphql-ws).

Nothing here depends on the transport: any transport that runs the schema's `subscribe` with a `Caller`
gets each event executed with loaders of its own (schema/execution.py). One that follows the log itself
(`resolvers.changes.start_position`, then `follow`) gives each event's resolvers `caller.for_execution()`.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry

from connectors.kit.models import COMMON_MODELS, graphql_name
from resolvers import changes as resolve
from resolvers.changes import ChangeEvent
from resolvers.connections import watch_runs
from resolvers.ids import parse_connection_id
from schema.connection import LinkedAccount, SyncRun
from schema.context import Info
from schema.objects import OBJECT_TYPES, Record, RemoteObject
from sync.cache.changes import ChangeFilter


def _one_value_per_model() -> Any:
    """ObjectType's values come from connectors/kit/models.py, so a new model needs no edit here."""
    return enum.Enum("ObjectType", {model.snake_name.upper(): name for name, model in COMMON_MODELS.items()})


ObjectType = strawberry.enum(_one_value_per_model(), description="A common model.")


@strawberry.enum(description="What happened to the record.")
class ChangeOp(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@strawberry.type(description="One change to a cached record, in the order the cache saw them.")
class Change:
    cursor: str = strawberry.field(description="Resume after this change with `changes(after: cursor)`.")
    op: ChangeOp
    object: str = strawberry.field(description='The common model ("Contact", ...) or the stream of a raw record.')
    remote_id: str
    changed_fields: list[str] = strawberry.field(description="The common fields whose values changed.")
    occurred_at: datetime
    _event: strawberry.Private[ChangeEvent]
    # Execution results of this change for each (operation, variables, audience): see schema/execution.py.
    shared_results: strawberry.Private[dict[Any, Any]]
    # The loaders shared by the events one replay batch read together (see ChangeEvent.read_together).
    read_together: strawberry.Private[dict[Any, Any] | None]

    @strawberry.field
    async def connection(self, info: Info) -> LinkedAccount:
        row = await info.context.loaders.connection.load(self._event.connection_id)
        assert row is not None
        return LinkedAccount.build(row)

    @strawberry.field(description="The record as the cache holds it now (deletedAt set once deleted).")
    def node(self) -> RemoteObject | None:
        record = self._event.record
        if record is None:
            return None
        cls = OBJECT_TYPES.get(record.model or "")
        return cls.build(record) if cls is not None else Record.build(record)

    @classmethod
    def build(cls, event: ChangeEvent) -> Change:
        """One Change per event: subscribers given the same event share it, and so its executions."""
        built = event.derived.get(Change)
        if built is None:
            built = event.derived[Change] = cls._from(event)
        return built

    @classmethod
    def _from(cls, event: ChangeEvent) -> Change:
        return cls(
            cursor=event.cursor,
            op=ChangeOp(event.op),
            object=event.model or event.stream,
            remote_id=event.remote_id,
            changed_fields=[graphql_name(name) for name in event.changed_fields],
            occurred_at=event.occurred_at,
            _event=event,
            shared_results={},
            read_together=event.read_together,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every change to the cache after `after` (or from now), then live: exactly once, in order."
    )
    async def changes(
        self,
        info: Info,
        after: str | None = None,
        objects: list[ObjectType] | None = None,  # type: ignore[valid-type]
        connection_ids: list[strawberry.ID] | None = None,
        external_user_ids: list[str] | None = None,
    ) -> AsyncGenerator[Change, None]:
        where = ChangeFilter(
            models=tuple(o.value for o in objects) if objects is not None else None,  # type: ignore[attr-defined]
            connection_ids=tuple(parse_connection_id(c, field="connectionIds") for c in connection_ids)
            if connection_ids is not None
            else None,
            external_user_ids=tuple(external_user_ids) if external_user_ids is not None else None,
        )
        with _subscription_slot(info):
            position = await resolve.start_position(info.context, after)
            async for event in resolve.follow(info.context, position, where):
                yield Change.build(event)

    @strawberry.subscription(description="The connection's sync runs as they start, advance and finish.")
    async def sync_progress(self, info: Info, connection_id: strawberry.ID) -> AsyncGenerator[SyncRun, None]:
        with _subscription_slot(info):
            async for row in watch_runs(info.context, parse_connection_id(connection_id)):
                yield SyncRun.build(row)


def _subscription_slot(info: Info) -> contextlib.AbstractContextManager[None]:
    """One of the key's subscriptions in this process, held while the subscription lives."""
    caller = info.context
    return caller.services.subscription_slots.hold(caller.api_key_id or caller.platform_id)
