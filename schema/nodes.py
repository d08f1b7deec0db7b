"""`node(id:)` and `nodes(ids:)`: every type that implements Node, found by its global id, only within the
caller's platform. An id of another platform, or of nothing, finds null: never an error that would tell
the two apart."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from connectors.kit.errors import BadInput
from resolvers.context import Caller
from resolvers.ids import from_global_id
from resolvers.records import RecordRow, get_records
from schema.connection import EndUser, LinkedAccount
from schema.objects import OBJECT_TYPES, Record
from schema.relay import Node

MAX_NODES = 100

# The type names inside global ids. A linked account's ids say "Connection": the type's former name,
# kept so that ids stored by clients stay valid.
LINKED_ACCOUNT = "Connection"
END_USER = "EndUser"
RECORD = "Record"


def _uuid(local_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(local_id)
    except ValueError:
        return None


def _record_builder(type_name: str) -> Callable[[RecordRow], Node | None]:
    """A record id of a common model finds only a record of that model; a Record id finds any record."""
    cls = OBJECT_TYPES.get(type_name)
    if cls is None:
        return Record.build
    return lambda row: cls.build(row) if row.model == cls.MODEL.name else None


async def find_nodes(caller: Caller, ids: Sequence[str]) -> list[Node | None]:
    if len(ids) > MAX_NODES:
        raise BadInput(f"ids may hold at most {MAX_NODES} ids, got {len(ids)}", field="ids")
    parsed = [from_global_id(global_id, field="ids" if len(ids) > 1 else "id") for global_id in ids]
    accounts = [_uuid(local) if kind == LINKED_ACCOUNT else None for kind, local in parsed]
    users = [_uuid(local) if kind == END_USER else None for kind, local in parsed]
    record_kinds = {*OBJECT_TYPES, RECORD}
    record_ids = [int(local) if kind in record_kinds and local.isdigit() else None for kind, local in parsed]

    account_rows = await caller.loaders.connection.load_many([i for i in accounts if i is not None])
    user_rows = await caller.loaders.end_user.load_many([i for i in users if i is not None])
    record_rows = await get_records(caller, [i for i in record_ids if i is not None])
    found_accounts = {row.id: row for row in account_rows if row is not None}
    found_users = {row.id: row for row in user_rows if row is not None}

    nodes: list[Node | None] = []
    for (kind, _), account, user, record in zip(parsed, accounts, users, record_ids, strict=True):
        if account is not None and account in found_accounts:
            nodes.append(LinkedAccount.build(found_accounts[account]))
        elif user is not None and user in found_users:
            nodes.append(EndUser.build(found_users[user]))
        elif record is not None and record in record_rows:
            nodes.append(_record_builder(kind)(record_rows[record]))
        else:
            nodes.append(None)
    return nodes
