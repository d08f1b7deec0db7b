"""`node(id:)` and `nodes(ids:)`: every type that implements Node, found by its global id, only within the
caller's platform. An id of another platform, or of nothing, finds null: never an error that would tell
the two apart."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.kit.errors import BadInput
from resolvers import connections as connection_resolvers
from resolvers import webhooks as webhook_resolvers
from resolvers.context import Caller
from resolvers.ids import from_global_id
from resolvers.records import get_records
from schema.connection import EndUser, LinkedAccount, SyncRun
from schema.objects import OBJECT_TYPES, Record
from schema.relay import Node
from schema.webhooks import WebhookDestination

MAX_NODES = 100


@dataclass(frozen=True)
class NodeKind:
    """How to find the objects of one kind of global id: its local id, a batch read, the GraphQL object."""

    parse: Callable[[str], Any]  # None when the local id cannot be one of ours
    fetch: Callable[[Caller, list[Any]], Awaitable[dict[Any, Any]]]
    build: Callable[[str, Any], Node | None]  # (the id's type name, the row)


def _uuid(local_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(local_id)
    except ValueError:
        return None


def _number(local_id: str) -> int | None:
    return int(local_id) if local_id.isdigit() and len(local_id) < 19 else None


async def _linked_accounts(caller: Caller, ids: list[uuid.UUID]) -> dict[Any, Any]:
    rows = await caller.loaders.connection.load_many(ids)
    return {row.id: row for row in rows if row is not None}


async def _end_users(caller: Caller, ids: list[uuid.UUID]) -> dict[Any, Any]:
    rows = await caller.loaders.end_user.load_many(ids)
    return {row.id: row for row in rows if row is not None}


def _build_record(type_name: str, row: Any) -> Node | None:
    """A common model's id finds only a record of that model; a Record id finds any record."""
    cls = OBJECT_TYPES.get(type_name)
    if cls is None:
        return Record.build(row)
    return cls.build(row) if row.model == cls.MODEL.name else None


_RECORDS = NodeKind(_number, get_records, _build_record)

# By the type name inside global ids. A linked account's ids say "Connection": the type's former name,
# kept so that ids stored by clients stay valid.
NODE_KINDS: dict[str, NodeKind] = {
    "Connection": NodeKind(_uuid, _linked_accounts, lambda _, row: LinkedAccount.build(row)),
    "EndUser": NodeKind(_uuid, _end_users, lambda _, row: EndUser.build(row)),
    "SyncRun": NodeKind(_number, connection_resolvers.get_runs, lambda _, row: SyncRun.build(row)),
    "WebhookDestination": NodeKind(
        _uuid,
        webhook_resolvers.get_destinations,
        lambda _, row: WebhookDestination.build(row),
    ),
    "Record": _RECORDS,
    **dict.fromkeys(OBJECT_TYPES, _RECORDS),
}


async def find_nodes(caller: Caller, ids: Sequence[str]) -> list[Node | None]:
    if len(ids) > MAX_NODES:
        raise BadInput(f"ids may hold at most {MAX_NODES} ids, got {len(ids)}", field="ids")
    wanted: list[tuple[str, NodeKind, Any] | None] = []
    for global_id in ids:
        type_name, local_id = from_global_id(global_id, field="ids" if len(ids) > 1 else "id")
        kind = NODE_KINDS.get(type_name)
        key = kind.parse(local_id) if kind is not None else None
        wanted.append((type_name, kind, key) if kind is not None and key is not None else None)
    keys: defaultdict[NodeKind, list[Any]] = defaultdict(list)
    for item in wanted:
        if item is not None:
            keys[item[1]].append(item[2])
    found = {kind: await kind.fetch(caller, kind_keys) for kind, kind_keys in keys.items()}
    nodes: list[Node | None] = []
    for item in wanted:
        row = found[item[1]].get(item[2]) if item is not None else None
        nodes.append(item[1].build(item[0], row) if item is not None and row is not None else None)
    return nodes
