"""Connections, their end users, stream states and sync runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Self

import strawberry
from sqlalchemy.engine import Row

from resolvers import connections as resolve
from resolvers.credentials import list_reads, read_credentials, recent_reads
from resolvers.field_catalog import connection_fields
from resolvers.field_mappings import connection_mappings
from resolvers.ids import to_global_id
from schema.context import Info
from schema.field_catalog import AvailableField
from schema.field_mappings import FieldMapping, ModelName
from schema.relay import Node, connection_field


@strawberry.type(description="A customer of the platform, known by the platform's own id.")
class EndUser(Node):
    external_id: str
    created_at: datetime

    @classmethod
    def build(cls, row: Row[Any]) -> Self:
        return cls(
            id=strawberry.ID(to_global_id("EndUser", row.id)), external_id=row.external_id, created_at=row.created_at
        )


@strawberry.type(description="Sync state of one stream of a connection.")
class StreamState:
    stream: str
    phase: str = strawberry.field(description="backfill (first full read) or incremental (changes only).")
    last_successful_sync_at: datetime | None
    next_run_at: datetime
    running: bool
    record_count: int
    last_error: str | None
    last_error_at: datetime | None


@strawberry.type(description="What one run of one stream did.")
class SyncRun(Node):
    stream: str
    phase: str
    status: str = strawberry.field(description="running, succeeded or failed.")
    started_at: datetime
    finished_at: datetime | None
    pages: int
    records: int
    changed: int = strawberry.field(description="Records that were new, different or deleted.")
    error: str | None

    @classmethod
    def build(cls, row: Row[Any]) -> Self:
        return cls(
            id=strawberry.ID(to_global_id("SyncRun", row.id)),
            stream=row.stream,
            phase=row.phase,
            status=row.status,
            started_at=row.started_at,
            finished_at=row.finished_at,
            pages=row.pages,
            records=row.records,
            changed=row.changed,
            error=row.error,
        )


@strawberry.type(description="A connection's credentials, fresh; every read is recorded.")
class ConnectionCredentials:
    access_token: str | None
    expires_at: datetime | None
    scopes: list[str]
    instance_url: str | None = strawberry.field(description="Where to call the provider (Salesforce).")
    api_key: str | None


@strawberry.type(description="A record of who read a connection's credentials.")
class CredentialRead:
    read_at: datetime
    api_key_name: str | None
    api_key_prefix: str | None = strawberry.field(description="The first characters of the key, never the key.")

    @classmethod
    def build(cls, row: Row[Any]) -> Self:
        return cls(read_at=row.read_at, api_key_name=row.name, api_key_prefix=row.prefix)


@strawberry.type(
    description="One provider account an end user linked (authorized): what the API calls a connection. "
    "Named LinkedAccount, not Connection, so that it is not mistaken for a Relay connection (a page of a list)."
)
class LinkedAccount(Node):
    provider: str
    status: str = strawberry.field(description="active, needs_reauth or disabled.")
    status_reason: str | None
    base_url: str | None
    sync_interval_seconds: int
    created_at: datetime
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def build(cls, row: Row[Any]) -> Self:
        # Ids keep the type's former name: ids stored by clients stay valid.
        return cls(
            id=strawberry.ID(to_global_id("Connection", row.id)),
            provider=row.provider,
            status=row.status,
            status_reason=row.status_reason,
            base_url=row.base_url,
            sync_interval_seconds=row.sync_interval_seconds,
            created_at=row.created_at,
            _row=row,
        )

    @property
    def connection_id(self) -> uuid.UUID:
        return self._row.id  # type: ignore[no-any-return]

    @strawberry.field
    async def end_user(self, info: Info) -> EndUser:
        row = await info.context.loaders.end_user.load(self._row.end_user_id)
        assert row is not None
        return EndUser.build(row)

    @strawberry.field
    async def streams(self, info: Info) -> list[StreamState]:
        states = await info.context.loaders.stream_states.load(self.connection_id)
        counts = await info.context.loaders.record_counts.load(self.connection_id)
        now = datetime.now(tz=states[0].next_run_at.tzinfo) if states else None
        return [
            StreamState(
                stream=s.stream,
                phase=s.phase,
                last_successful_sync_at=s.last_success_at,
                next_run_at=s.next_run_at,
                running=s.lease_expires_at is not None and now is not None and s.lease_expires_at > now,
                record_count=counts.get(s.stream, 0),
                last_error=s.last_error,
                last_error_at=s.last_error_at,
            )
            for s in states
        ]

    @strawberry.field(
        description="The fields the provider holds on this connection's records of a model, for mapping custom "
        "fields (setFieldMapping's `source`): read from the provider's metadata, kept for an hour and refreshed "
        "by the sync; `refresh` reads them again now. Empty when the provider does not list them."
    )
    async def available_fields(self, info: Info, model: ModelName, refresh: bool = False) -> list[AvailableField]:
        found = await connection_fields(info.context, self._row, model.value, refresh=refresh)
        return [AvailableField.build(f) for f in found]

    @strawberry.field(
        description="Fresh credentials to call the provider directly (refreshed when near expiry). Secret API keys "
        "only; every read is recorded in credentialAudit."
    )
    async def credentials(self, info: Info) -> ConnectionCredentials:
        # One execution (a request, or one subscription event) reads each connection's credentials once.
        execution = (info.operation, info.root_value)
        issued = await read_credentials(info.context, self.connection_id, execution=execution)
        return ConnectionCredentials(
            access_token=issued.access_token,
            expires_at=issued.expires_at,
            scopes=issued.scopes,
            instance_url=issued.instance_url,
            api_key=issued.api_key,
        )

    @strawberry.field(
        description="Who read the credentials, newest first.",
        deprecation_reason="Use credentialAudit, a connection that pages both ways.",
    )
    async def credential_reads(self, info: Info, first: int = 20) -> list[CredentialRead]:
        rows = await recent_reads(info.context, self.connection_id, first)
        return [CredentialRead.build(r) for r in rows]

    credential_audit = connection_field(
        CredentialRead,
        lambda connection, info, request: list_reads(info.context, connection.connection_id, request),
        CredentialRead.build,
        description="Who read the credentials, newest first.",
    )

    @strawberry.field(
        description="The most recent sync runs, newest first.",
        deprecation_reason="Use runs, a connection that pages both ways.",
    )
    async def sync_runs(self, info: Info, first: int = 20) -> list[SyncRun]:
        return [SyncRun.build(r) for r in await resolve.recent_runs(info.context, self.connection_id, first)]

    runs = connection_field(
        SyncRun,
        lambda connection, info, request: resolve.list_runs(info.context, connection.connection_id, request),
        SyncRun.build,
        description="Sync runs, newest first.",
    )

    @strawberry.field(
        description="The mappings this connection uses (its own, else your default for its provider), by model and "
        "field; fields not listed keep the connector's mapping."
    )
    async def field_mappings(self, info: Info, model: ModelName | None = None) -> list[FieldMapping]:
        mappings = await connection_mappings(info.context, self._row, model.value if model is not None else None)
        return [FieldMapping.build(m) for m in mappings]
