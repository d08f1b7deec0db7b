"""The caller's platform's secret API keys: listed without their secret, revoked for good."""

from __future__ import annotations

import uuid

from connectors.kit.errors import NotFound
from resolvers.context import Caller
from resolvers.ids import parse_uuid_id, to_global_id
from sync.tenancy import platforms
from sync.tenancy.platforms import ApiKeyInfo


def key_global_id(key_id: uuid.UUID) -> str:
    return to_global_id("ApiKey", key_id)


def parse_key_id(global_id: str, *, field: str = "id") -> uuid.UUID:
    return parse_uuid_id(global_id, "ApiKey", field=field)


async def list_keys(caller: Caller) -> list[ApiKeyInfo]:
    return await platforms.list_api_keys(caller.store, caller.platform_id)


async def revoke_key(caller: Caller, global_id: str) -> ApiKeyInfo:
    """A key may revoke itself; another platform's key is as unknown as one that never existed."""
    revoked = await platforms.revoke_api_key(caller.store, parse_key_id(global_id), platform_id=caller.platform_id)
    if revoked is None:
        raise NotFound(f"no API key with id {global_id!r}", field="id")
    return revoked
