"""Secret API keys of the caller's platform: list them (never the key itself) and revoke one."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from resolvers import keys as resolve
from schema.context import Info
from sync.tenancy.platforms import ApiKeyInfo


@strawberry.type(description="A secret API key, described; the key itself is shown once, when created.")
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    revoked_at: datetime | None = strawberry.field(description="Set once revoked; a revoked key opens nothing.")

    @classmethod
    def build(cls, key: ApiKeyInfo) -> Self:
        return cls(
            id=strawberry.ID(resolve.key_global_id(key.id)),
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


@strawberry.type
class KeyQuery:
    @strawberry.field(description="Your platform's secret API keys, revoked ones included, oldest first.")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        return [ApiKey.build(key) for key in await resolve.list_keys(info.context)]


@strawberry.type
class KeyMutation:
    @strawberry.mutation(
        description="Revoke one of your platform's keys (the calling key included): within seconds it is refused "
        "on every gateway, and WebSockets opened with it are closed. Revoking twice keeps the first revokedAt."
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKey:
        return ApiKey.build(await resolve.revoke_key(info.context, id))
