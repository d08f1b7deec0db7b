"""A connector is a declaration: auth, base URL, streams, errors, webhook verification.

Strategies (pagination, incremental, deletions, lookups, writes) are small objects chosen per stream;
the syncer and the writeback drive them and never see provider HTTP.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx2

from connectors.kit.connect_inputs import ConnectInputs
from connectors.kit.convert import read_datetime
from connectors.kit.credentials import Credentials
from connectors.kit.egress import ProviderHosts
from connectors.kit.errors import BadInput, Conflict, NotFound, ProviderError, XkitError
from connectors.kit.field_catalog import FieldCatalog
from connectors.kit.field_mappings import FieldOverlay
from connectors.kit.http import ProviderSession
from connectors.kit.jsonpath import dig
from connectors.kit.keys import KeyFormat, StaticKey
from connectors.kit.mapping import ACCOUNT_CURRENCY, ModelMapping
from connectors.kit.oauth import Auth, OAuth2
from connectors.kit.page_budget import PageBudget
from connectors.kit.ratelimit import RateLimit
from connectors.kit.records import Page, RemoteRecord, custom_index
from connectors.kit.webhooks import WebhookEvents, WebhookVerifier

Cursor = dict[str, Any]


@dataclass
class StreamContext:
    session: ProviderSession
    stream: Stream
    # Query parameters found at run time, e.g. every property name the account defines.
    discovered_params: dict[str, Any] = field(default_factory=dict)
    # The pages this run may still follow; a context outside a sync run pages without a count limit.
    page_budget: PageBudget = field(default_factory=lambda: PageBudget(None))
    # The stream's label tables read at run time (table -> provider code -> label), e.g. deal stage names.
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # The connection's field mappings (custom fields, overridden built-in members); None: the connector's
    # mapping as declared.
    overlay: FieldOverlay | None = None

    def params(self, **extra: Any) -> dict[str, Any]:
        return {**self.stream.params, **self.discovered_params, **extra}

    def to_record(self, raw: dict[str, Any], *, deleted: bool = False) -> RemoteRecord:
        """A provider record as the sync stores it, mapped with this run's label tables: every read path
        (list, search, batch read, webhook refetch, writeback read-back) maps through here alike."""
        record = self.stream.to_record(raw, deleted=deleted, labels=self.labels)
        return derive(self.stream, record, self.overlay, self.labels)


class Pagination(Protocol):
    def pages(self, ctx: StreamContext, cursor: Cursor | None) -> AsyncIterator[Page]: ...


class Incremental(Protocol):
    def initial_cursor(self, backfill_started_at: datetime) -> Cursor: ...

    def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]: ...


class Deletions(Protocol):
    def pages(self, ctx: StreamContext) -> AsyncIterator[Page]: ...


class Discovery(Protocol):
    async def params(self, session: ProviderSession, stream: Stream) -> dict[str, Any]: ...


class Labels(Protocol):
    """A table of labels for provider codes, read at run time (HubSpot's pipelines: stage id -> stage name)."""

    async def read(self, session: ProviderSession) -> dict[str, str]: ...


class Lookup(Protocol):
    """Read given records the way the incremental sync reads them (same fields, same shape), so the
    cached copy of a write and the sync's later copy of it hash alike. Ids not found are left out."""

    async def fetch(self, ctx: StreamContext, remote_ids: Sequence[str]) -> list[RemoteRecord]: ...


@dataclass(frozen=True)
class Draft:
    """What a caller asked to write: the common members they set (None clears one; relations are remote
    ids) and provider-native fields merged into the request as they are."""

    values: Mapping[str, Any]
    raw_fields: Mapping[str, Any] = field(default_factory=dict)
    # The currency each Money member of the record is kept in (the record's own, else the account's), filled
    # by the writeback: an amount in another currency changes the currency or is refused (`MoneyAt.write`).
    currencies: Mapping[str, str] = field(default_factory=dict)
    # The caller's idempotency key, for providers that deduplicate retried writes themselves (Stripe's
    # `Idempotency-Key`): a retry the provider saw through never writes twice there either.
    idempotency_key: str | None = None
    # The caller's `customFields` ({key: value}), as given.
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    # Provider fields ({dotted path: value}) the connection's field mappings write: its mapped custom fields and
    # the built-in members a mapping overrides (filled by the writeback, `connectors.kit.mapped_writes`). A
    # writer that merges them says so with `merges_provider_fields`; any other refuses a draft holding some.
    provider_fields: Mapping[str, Any] = field(default_factory=dict)

    def with_provider_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """`fields` (the connector's mapped members, {dotted path: value}) with the mapped provider fields merged
        in; one provider field written two ways with different values is refused rather than one silently winning."""
        for path, value in self.provider_fields.items():
            if path in fields and fields[path] != value:
                raise BadInput(f"{path} is written both by a mapped field and by the input's own fields", field=path)
            fields[path] = value
        return fields

    def step_key(self, step: str) -> str | None:
        """The provider's idempotency key for one request of this write: a write of several requests (a
        Stripe invoice and its lines) must never send two of them under one key."""
        if self.idempotency_key is None:
            return None
        return hashlib.sha256(f"{self.idempotency_key}\n{step}".encode()).hexdigest()


@dataclass(frozen=True)
class KeyAccount:
    """`GET path` with a connection's key answers its account, whose id (`id_field`) is kept as `keep_as`."""

    path: str
    id_field: str = "id"
    keep_as: str = "account_id"


# How a provider writes instants as numbers: Unix milliseconds (HubSpot) or seconds (Stripe's `created`).
EpochUnit = Literal["milliseconds", "seconds"]


def read_instant(value: Any, unit: EpochUnit) -> datetime | None:
    """`read_datetime`, with a number read in `unit`."""
    if unit == "seconds" and isinstance(value, int | float) and not isinstance(value, bool):
        value = value * 1000
    return read_datetime(value)


class Writer(Protocol):
    async def create(self, ctx: StreamContext, draft: Draft) -> str:
        """Create the record; its remote id."""
        ...

    async def update(self, ctx: StreamContext, remote_id: str, draft: Draft, current: RemoteRecord) -> None: ...

    async def delete(self, ctx: StreamContext, remote_id: str) -> None: ...


@dataclass(frozen=True)
class Stream:
    name: str
    path: str
    pagination: Pagination
    primary_key: str = "id"
    mapping: ModelMapping | None = None
    incremental: Incremental | None = None
    deletions: Deletions | None = None
    discovery: Discovery | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    created_at: str | None = None  # dotted path of the remote creation time
    updated_at: str | None = None  # dotted path of the remote modification time
    deleted_at: str | None = None  # dotted path of the remote deletion time, on tombstones
    lookup: Lookup | None = None
    writer: Writer | None = None
    # The label tables its mapping's `Label` members read, by table name.
    labels: Mapping[str, Labels] = field(default_factory=dict)
    # Records a write of this stream changes besides its own, as (stream, relation member): a Zendesk
    # comment is a ticket update, so ("tickets", "ticket") reads the commented ticket back too.
    writes_touch: tuple[tuple[str, str], ...] = ()
    # How `created_at`, `updated_at` and `deleted_at` are written when they are numbers.
    epoch_unit: EpochUnit = "milliseconds"
    # Its writer's delete ends the record's life without removing it (Stripe cancels a subscription, which
    # stays, canceled): the record is read back after it, like after an update, never marked deleted.
    deletes_are_updates: bool = False

    def __post_init__(self) -> None:
        missing = (self.mapping.label_tables if self.mapping else frozenset()) - set(self.labels)
        if missing:
            raise ValueError(f"stream {self.name} maps labels from tables it does not read: {sorted(missing)}")

    @property
    def model_name(self) -> str | None:
        return self.mapping.model.name if self.mapping else None

    def to_record(
        self, raw: dict[str, Any], *, labels: Mapping[str, Mapping[str, str]] | None, deleted: bool = False
    ) -> RemoteRecord:
        """Strategies map through `StreamContext.to_record`, which passes the run's label tables; `labels`
        has no default so that a read path cannot leave them out by accident (a label would map to null)."""
        return RemoteRecord(
            remote_id=str(dig(raw, self.primary_key)),
            raw=raw,
            common=self.mapping.to_common(raw, labels) if self.mapping else None,
            created_at=read_instant(dig(raw, self.created_at), self.epoch_unit) if self.created_at else None,
            updated_at=read_instant(dig(raw, self.updated_at), self.epoch_unit) if self.updated_at else None,
            deleted=deleted,
            deleted_at=read_instant(dig(raw, self.deleted_at), self.epoch_unit)
            if deleted and self.deleted_at
            else None,
        )


def account_currency(labels: Mapping[str, Mapping[str, str]]) -> str | None:
    """The account's currency, when the stream reads an account-facts table that names one: what a MONEY
    custom field holding a bare amount is in."""
    return labels.get("account", {}).get(ACCOUNT_CURRENCY)


def derive(
    stream: Stream,
    record: RemoteRecord,
    overlay: FieldOverlay | None,
    labels: Mapping[str, Mapping[str, str]],
) -> RemoteRecord:
    """`record` with the connection's field mappings applied to its common values, from its raw payload:
    what every read path stores, and what the cache's re-derive recomputes without asking the provider."""
    mapping = stream.mapping
    if overlay is None or mapping is None or record.common is None or record.deleted:
        return record
    record.common, record.custom = overlay.apply(mapping.model, record.raw, record.common, account_currency(labels))
    if record.custom is not None:
        record.custom_index = custom_index(record.custom, overlay.models[mapping.model.name])
    return record


def default_error(response: httpx2.Response) -> ProviderError:
    return ProviderError(
        f"{response.request.method} {response.request.url.path} answered {response.status_code}",
        status=response.status_code,
    )


@dataclass(frozen=True)
class Connector:
    name: str  # lowercase, as clients pass it: "hubspot"
    display_name: str
    base_url: str
    auth: Auth
    streams: tuple[Stream, ...]
    # Hosts its base URLs, instance URLs, token and authorize URLs may name (the egress policy holds them to it).
    hosts: ProviderHosts
    rate_limit: RateLimit | None = None
    # The shortest poll interval the provider's limits allow (Zendesk: its exports' 10 requests a minute
    # shared by five export streams); a connection set to poll more often polls this often.
    min_sync_interval_seconds: int = 0
    parse_error: Callable[[httpx2.Response], ProviderError] = default_error
    default_headers: Mapping[str, str] = field(default_factory=dict)
    webhook: WebhookVerifier | None = None
    webhook_events: WebhookEvents | None = None
    # Where the credentials name the provider account that webhooks refer to (HubSpot: "hub_id").
    webhook_account_key: str | None = None
    # The query parameter of the webhook URL the platform registered that names the account, for a provider
    # whose deliveries name it only in a form no API tells a connection (Zendesk's numeric account id):
    # `/webhooks/zendesk?subdomain=acme`. It then replaces whatever account the body names.
    webhook_account_param: str | None = None
    # Provider error codes that mean something more precise on a write than their HTTP status says.
    write_error_codes: Mapping[str, type[XkitError]] = field(default_factory=dict)
    # What must be known before connecting (Zendesk's subdomain): it names the account's host.
    connect_inputs: ConnectInputs | None = None
    # A pasted key accepted besides OAuth (Zendesk's `{email}/token` API tokens): used when the
    # credentials hold an API key.
    key_auth: StaticKey | None = None
    # What a pasted key must look like (Stripe: sk_/rk_ keys, never a publishable pk_ one).
    key_format: KeyFormat | None = None
    # How requests of a connection made through OAuth authenticate when not with its access token (Stripe
    # Connect: the platform's own key and `Stripe-Account`).
    oauth_requests: StaticKey | None = None
    # Facts every new key connection keeps from the moment it is made (Stripe: the API version then current).
    pinned: Mapping[str, str] = field(default_factory=dict)
    # Where a key connection learns the provider account its webhooks name.
    key_account: KeyAccount | None = None
    # What the mapping picker offers per common model ("Contact" -> its catalog), read from the provider's own
    # metadata on the model's first stream (HubSpot's properties, Salesforce's describe).
    field_catalogs: Mapping[str, FieldCatalog] = field(default_factory=dict)

    def auth_for(self, credentials: Credentials) -> Auth:
        """How requests with these credentials authenticate."""
        if self.key_auth is not None and credentials.api_key:
            return self.key_auth
        return self.oauth_requests or self.auth

    @property
    def base_url_from_credentials(self) -> str | None:
        """The credentials' extra naming the API host (Salesforce: "instance_url"), as the auth declares it;
        used unless a connection overrides it."""
        return self.auth.base_url_key if isinstance(self.auth, OAuth2) else None

    def stream(self, name: str) -> Stream:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise KeyError(name)

    @property
    def stream_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.streams)

    def write_error(self, error: ProviderError, mapping: ModelMapping) -> XkitError:
        """A provider's refusal of a write as the caller's error: which input field, in the API's words and
        the provider's. Rate limits, expired auth and outages keep their own types."""
        if type(error) is not ProviderError:
            return error
        kind = self.write_error_codes.get(error.provider_code or "") or _WRITE_ERRORS_BY_STATUS.get(error.status or 0)
        if kind is None:
            return error
        member = mapping.member_for(error.field) if error.field else None
        return kind(
            error.message,
            field=mapping.field_name(member) if member else (f"rawFields.{error.field}" if error.field else None),
            providerField=error.field,
            providerCode=error.provider_code,
            status=error.status,
        )

    def writable_streams(self, model: str) -> tuple[Stream, ...]:
        return tuple(s for s in self.streams if s.model_name == model and s.writer and s.lookup and s.mapping)

    def stream_for_create(self, model: str, values: Mapping[str, Any]) -> Stream | None:
        """The stream a new record of `model` with these values belongs to (a Salesforce lead or contact)."""
        for stream in self.writable_streams(model):
            assert stream.mapping is not None
            if stream.mapping.accepts(values):
                return stream
        return None


_WRITE_ERRORS_BY_STATUS: dict[int, type[XkitError]] = {
    400: BadInput,
    # Payment required: the payment the write asked for was refused (a declined card), the caller's to fix.
    402: BadInput,
    404: NotFound,
    409: Conflict,
    410: NotFound,
    422: BadInput,
}
