"""The database: every table scoped by platform (see shared/DESIGN.md, "Data model")."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    literal_column,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from connectors.kit.models import COMMON_MODELS, CommonModel
from sync.storage.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _platform_fk() -> Column[object]:
    return Column("platform_id", Uuid, ForeignKey("platforms.id", ondelete="CASCADE"), nullable=False)


def _platform_via_connection() -> Column[object]:
    """For rows that also reference their connection (which cascades from the platform): a key of their
    own would only add a trigger per inserted row, on the tables that take the most inserts."""
    return Column("platform_id", Uuid, nullable=False)


platforms = Table(
    "platforms",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Trusted documents mode: the gateway runs only the documents registered in `persisted_documents`.
    Column("trusted_documents_only", Boolean, nullable=False, default=False, server_default=false()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    _platform_fk(),
    Column("name", String(200), nullable=False),
    Column("prefix", String(20), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

provider_apps = Table(
    "provider_apps",
    metadata,
    Column("id", Uuid, primary_key=True),
    _platform_fk(),
    Column("provider", String(50), nullable=False),
    Column("client_id", String(500), nullable=False),
    Column("client_secret_encrypted", LargeBinary, nullable=False),
    # Set where the provider signs webhooks with a secret of their own (Stripe's endpoint `whsec_`); else the
    # client secret verifies them (HubSpot).
    Column("webhook_secret_encrypted", LargeBinary),
    Column("authorize_url", Text),
    Column("base_url", Text),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("platform_id", "provider"),
)

end_users = Table(
    "end_users",
    metadata,
    Column("id", Uuid, primary_key=True),
    _platform_fk(),
    Column("external_id", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("platform_id", "external_id"),
)

connections = Table(
    "connections",
    metadata,
    Column("id", Uuid, primary_key=True),
    _platform_fk(),
    Column("end_user_id", Uuid, ForeignKey("end_users.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("status_reason", Text),
    Column("base_url", Text),
    Column("credentials_encrypted", LargeBinary, nullable=False),
    Column("sync_interval_seconds", Integer, nullable=False),
    # None: the connector's own limit; {"requests": 0}: unlimited (benchmarks, private test accounts).
    Column("rate_limit", Json),
    # The provider account the credentials belong to (HubSpot's portal id): not secret, kept in the clear so
    # an incoming webhook can be matched to the platforms that own that account before any signature work.
    Column("account_id", String(100)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Bumped with every change to a field definition or mapping that reaches this connection: whoever holds
    # its overlay (sync/tenancy/field_mappings.py) reloads it when this moved.
    Column("field_mapping_revision", Integer, nullable=False, default=0, server_default="0"),
    # Set when its cached records need their mapped values derived again; cleared by the re-derive job
    # once it derived them at the revision it read (see sync/tenancy/field_mappings.py).
    Column("field_mappings_due_at", UtcDateTime),
    Index(None, "platform_id", "created_at"),
    Index(None, "provider", "account_id"),
)

stream_states = Table(
    "stream_states",
    metadata,
    Column("id", Uuid, primary_key=True),
    _platform_fk(),
    Column("connection_id", Uuid, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("stream", String(100), nullable=False),
    Column("phase", String(20), nullable=False),
    Column("cursor", Json),
    Column("backfill_started_at", UtcDateTime),
    Column("next_run_at", UtcDateTime, nullable=False),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", UtcDateTime),
    Column("last_success_at", UtcDateTime),
    Column("last_error", Text),
    Column("last_error_at", UtcDateTime),
    Column("deletions_checked_at", UtcDateTime),
    UniqueConstraint("connection_id", "stream"),
    Index(None, "next_run_at"),
)

records = Table(
    "records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _platform_via_connection(),
    Column("connection_id", Uuid, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("end_user_id", Uuid, nullable=False),
    Column("stream", String(100), nullable=False),
    Column("model", String(50)),
    Column("remote_id", String(255), nullable=False),
    Column("common", Json),
    # The provider's payload as JSON text, served to clients without being parsed again.
    Column("raw", Text, nullable=False),
    Column("content_hash", String(32), nullable=False),
    Column("remote_created_at", UtcDateTime),
    Column("remote_updated_at", UtcDateTime),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("deleted_at", UtcDateTime),
    Column("synced_at", UtcDateTime, nullable=False),
    # The record's custom field values as its connection's mappings derive them: {key: value or null}.
    Column("custom", Json),
    UniqueConstraint("connection_id", "stream", "remote_id"),
    Index(None, "platform_id", "model", "remote_updated_at", "id"),
    Index(None, "connection_id", "model", "remote_id"),
)


def common_text(member: str) -> ColumnElement[str]:
    """A common field's value as text, `common ->> 'member'`: spelled with the name in the SQL (not bound)
    so that a query and an index over it are the same expression to the planner. PostgreSQL and SQLite
    (3.38+) both read the operator."""
    if not member.isidentifier():  # a name from connectors/kit/models.py, never a caller's text
        raise ValueError(f"not a common member: {member!r}")
    return records.c.common.op("->>", return_type=String())(literal_column(f"'{member}'"))


def indexed_relations(models: Iterable[CommonModel]) -> list[str]:
    """The relations looked up by the related record's remote id, each indexed by model and that remote id:
    those children are found by (TicketComment.ticket), and the filterable ones (`customerRemoteId`). A
    relation name that some model stores without filtering by it (a contact's `company`) is left out, so
    ingesting those records never maintains an index nobody reads."""
    models = tuple(models)
    vias = {inverse.via for model in models for inverse in model.inverses}
    stored_unfiltered = {r.name for model in models for r in model.relations if not r.filterable or r.many}
    filtered = {r.name for model in models for r in model.filterable_relations if not r.many}
    return sorted(vias | (filtered - stored_unfiltered))


# Only records that name a related record are in each index, so ingesting other models never maintains it
# (`= :value` and `IN (...)` imply the value is not null, so both databases use the partial index for them).
# Ending in the lists' order (last change, then id), a page of one customer's invoices is read in order from
# the index however many that customer has, rather than sorted from all of them.
for _via in indexed_relations(COMMON_MODELS.values()):
    _names_parent = common_text(_via).isnot(None)
    Index(
        f"ix_records_model_{_via}",
        records.c.model,
        common_text(_via),
        records.c.remote_updated_at,
        records.c.id,
        postgresql_where=_names_parent,
        sqlite_where=_names_parent,
    )

# What a reader of the cache gets for a record (resolvers build their rows from exactly these).
RECORD_COLUMNS = (
    records.c.id,
    records.c.connection_id,
    records.c.stream,
    records.c.model,
    records.c.remote_id,
    records.c.common,
    records.c.raw,
    records.c.remote_created_at,
    records.c.remote_updated_at,
    records.c.deleted_at,
    records.c.custom,
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _platform_fk(),
    Column("connection_id", Uuid, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("stream", String(100), nullable=False),
    Column("phase", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("pages", Integer, nullable=False, default=0),
    Column("records", Integer, nullable=False, default=0),
    # Records whose content really changed (new, updated or deleted); the rest were already cached.
    Column("changed", Integer, nullable=False, default=0, server_default="0"),
    Column("error", Text),
    Index(None, "connection_id", "started_at"),
)

oauth_states = Table(
    "oauth_states",
    metadata,
    Column("state", String(128), primary_key=True),
    _platform_fk(),
    Column("provider", String(50), nullable=False),
    Column("external_user_id", String(255), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("code_verifier_encrypted", LargeBinary),
    Column("expires_at", UtcDateTime, nullable=False),
    # The provider's authorize URL; the browser is sent there by the gateway's connect start page.
    Column("authorize_url", Text),
    # SHA-256 of the nonce in the cookie of the browser that opened the link first; the callback must bring it.
    Column("browser_binding", String(64)),
    # What the provider asked for before authorization (Zendesk's subdomain), checked by its connector.
    Column("connect_inputs", Json),
)

# Where a platform allows its end users to be sent back after connecting (exact match, as OAuth wants).
platform_redirect_uris = Table(
    "platform_redirect_uris",
    metadata,
    Column("id", Uuid, primary_key=True),
    _platform_fk(),
    Column("uri", String(2000), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("platform_id", "uri"),
)

# Who read a connection's credentials, and when: the secret never appears here.
credential_reads = Table(
    "credential_reads",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _platform_fk(),
    Column("connection_id", Uuid, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("api_key_id", Uuid),
    Column("read_at", UtcDateTime, nullable=False),
    Index(None, "connection_id", "read_at"),
)

# Writes sent with an idempotency key: the first request's fingerprint and outcome, kept for 24 hours.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _platform_fk(),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # pending, done, unknown
    Column("result", Text),  # the first result, as JSON
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("platform_id", "key"),
    Index(None, "expires_at"),
)

# The change log: one row per real change applied to the cache, in commit order (see sync/cache/changes.py).
changes = Table(
    "changes",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    _platform_via_connection(),
    Column("connection_id", Uuid, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("end_user_id", Uuid, nullable=False),
    Column("model", String(50)),
    Column("stream", String(100), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("remote_id", String(255), nullable=False),
    Column("op", String(8), nullable=False),  # CREATED, UPDATED, DELETED
    Column("changed_fields", Json, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Index(None, "platform_id", "seq"),
    Index(None, "occurred_at"),
    # Never reuse a sequence number, even once retention has pruned every row.
    sqlite_autoincrement=True,
)

# How far retention has pruned the change log: a cursor before this is gone.
change_log_horizon = Table(
    "change_log_horizon",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pruned_through", BigInteger, nullable=False),
)

# Outbound webhooks: where a platform wants its changes POSTed, signed (see sync/webhooks/outbound.py).
webhook_destinations = Table(
    "webhook_destinations",
    metadata,
    Column("id", Uuid, primary_key=True),
    _platform_fk(),
    Column("url", Text, nullable=False),
    Column("secret_encrypted", LargeBinary, nullable=False),
    # Filters, as the change log reads them; None: everything.
    Column("models", Json),
    Column("connection_ids", Json),
    Column("external_user_ids", Json),
    Column("enabled", Boolean, nullable=False, default=True),
    # The last change sequence number handed to deliveries: the next enqueue reads after it.
    Column("cursor", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "platform_id", "created_at"),
)

# One change to send to one destination: its attempts, its outcome, and when to try again.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("destination_id", Uuid, ForeignKey("webhook_destinations.id", ondelete="CASCADE"), nullable=False),
    Column("platform_id", Uuid, nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    # connection_id/stream/remote_id: deliveries of one record go out one at a time, in order.
    Column("record_key", String(400), nullable=False),
    Column("event_id", String(64), nullable=False),  # the same for every attempt (and replay) of the change
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, default=0),
    # When a pending delivery may be tried next; a claimed one is leased until then. None once settled.
    Column("next_attempt_at", UtcDateTime),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    Index(None, "status", "next_attempt_at"),
    Index(None, "destination_id", "record_key", "change_seq"),
    Index(None, "destination_id", "id"),
)

# Provider webhook deliveries already accepted, by a digest of their signature: a replay inside the
# signature's freshness window is recognised and changes nothing. Swept once older than that window.
webhook_receipts = Table(
    "webhook_receipts",
    metadata,
    Column("provider", String(50), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("provider", "digest"),
    Index(None, "received_at"),
)

# The operations a platform registered (`xkit documents push`), by the SHA-256 of their text: clients may
# send the hash alone, and in trusted documents mode nothing else runs.
persisted_documents = Table(
    "persisted_documents",
    metadata,
    _platform_fk(),
    Column("sha256", String(64), nullable=False),
    Column("document", Text, nullable=False),
    # The operations the document defines, comma-separated, for `xkit documents list`.
    Column("operation_names", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("platform_id", "sha256"),
)

# The custom fields a platform defines on a common model (`Contact.tier`), filled per connection by mappings.
custom_field_definitions = Table(
    "custom_field_definitions",
    metadata,
    Column("id", Uuid, primary_key=True),
    _platform_fk(),
    Column("model", String(50), nullable=False),
    Column("key", String(63), nullable=False),
    Column("type", String(20), nullable=False),
    Column("label", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("platform_id", "model", "key"),
)

# Where a custom field (or an overridden built-in member) comes from: per connection, or (connection_id NULL)
# the platform's default for every connection of a provider.
field_mappings = Table(
    "field_mappings",
    metadata,
    Column("id", Uuid, primary_key=True),
    _platform_fk(),
    Column("provider", String(50), nullable=False),
    Column("connection_id", Uuid, ForeignKey("connections.id", ondelete="CASCADE")),
    Column("model", String(50), nullable=False),
    Column("field", String(63), nullable=False),
    Column("is_custom", Boolean, nullable=False),
    Column("source_path", String(1000), nullable=False),
    # [{"kind", "separator", "table", "default"}], as connectors.kit.field_mappings.Transform holds them.
    Column("transforms", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
# One mapping per field and target: NULL never equals NULL in a unique key, so a connection's overrides and
# the provider defaults each have a partial unique index of their own.
_is_default = field_mappings.c.connection_id.is_(None)
_is_override = field_mappings.c.connection_id.isnot(None)
Index(
    "uq_field_mappings_connection",
    field_mappings.c.connection_id,
    field_mappings.c.model,
    field_mappings.c.field,
    field_mappings.c.is_custom,
    unique=True,
    postgresql_where=_is_override,
    sqlite_where=_is_override,
)
Index(
    "uq_field_mappings_default",
    field_mappings.c.platform_id,
    field_mappings.c.provider,
    field_mappings.c.model,
    field_mappings.c.field,
    field_mappings.c.is_custom,
    unique=True,
    postgresql_where=_is_default,
    sqlite_where=_is_default,
)

# The index custom field filters read (never `records.custom`): one row per record, key and list item.
record_custom_values = Table(
    "record_custom_values",
    metadata,
    Column("record_id", BigId, ForeignKey("records.id", ondelete="CASCADE"), nullable=False),
    _platform_via_connection(),
    Column("model", String(50), nullable=False),
    Column("key", String(63), nullable=False),
    Column("text_value", String(1000)),
    Column("number_value", Float),
    Column("time_value", UtcDateTime),
    Index(None, "platform_id", "model", "key", "text_value"),
    Index(None, "platform_id", "model", "key", "number_value"),
    Index(None, "platform_id", "model", "key", "time_value"),
    Index(None, "record_id"),
)

# What a connection's provider holds per model, for the mapping picker and for checking mappings when set.
available_fields = Table(
    "available_fields",
    metadata,
    Column("connection_id", Uuid, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("model", String(50), nullable=False),
    Column("fields", Json, nullable=False),  # [AvailableField.to_json()]
    Column("refreshed_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("connection_id", "model"),
)
