"""All configuration, from XKIT_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import PositiveInt, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connectors.kit.egress import EgressPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XKIT_", extra="ignore")

    data_dir: Path = Path(".xkit")
    database_url: str | None = None
    secret_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Where browsers reach this gateway; OAuth callbacks are built on it.
    public_url: str | None = None
    dev_api_key: SecretStr | None = None
    # Refuse keys of real (live) provider accounts at createConnection; `xkit dev` turns it on.
    test_keys_only: bool = False
    worker_concurrency: int = 8
    worker_poll_seconds: float = 1.0
    run_worker: bool = True
    http_timeout_seconds: float = 30.0
    # Internal targets outbound requests may reach despite the egress policy: host names, host:port pairs
    # and CIDRs, comma-separated (XKIT_EGRESS_ALLOW=sandbox.internal,10.1.0.0/16). Empty in production:
    # providers and webhook destinations are then reachable only at public addresses.
    egress_allow: Annotated[list[str], NoDecode] = []
    # Provider answers. http_timeout_seconds bounds each read, so a provider trickling a byte at a time would
    # never time out: the deadline bounds one whole exchange, body included, and is not retried.
    provider_request_deadline_seconds: float = 60.0
    # Decoded (decompressed) bytes of one provider answer; a token endpoint's answer gets far less.
    provider_response_max_bytes: int = 64 * 1024 * 1024
    token_response_max_bytes: int = 64 * 1024
    # A record whose JSON (raw payload and common fields) is larger is stored truncated: common fields kept
    # with long strings cut, `raw` replaced by a marker naming its id and original size.
    max_record_bytes: int = 1024 * 1024
    # Pages one stream run may read; a run that reaches it stops with lastError and the next run resumes.
    max_pages_per_run: int = 10_000
    # Streams one worker runs at once for one connection and for one platform (of worker_concurrency).
    worker_max_running_per_connection: PositiveInt = 2
    worker_max_running_per_platform: PositiveInt = 4
    # How long the change log keeps changes; a subscriber resuming from an older cursor is told to re-read.
    change_retention_days: float = 30.0
    # permessage-deflate on subscription WebSockets. Off by default: change events are small JSON messages,
    # and compressing each one for each subscriber (and inflating it at the client) cost a broadcast of
    # 100,000 deliveries about two thirds of its speed (fan-out benchmark). Worth it on slow links only.
    websocket_compression: bool = False
    # A verified API key is trusted this long per process without a database read. A revocation reaches
    # every process at once through NOTIFY on PostgreSQL; this bounds it when that cannot (SQLite shared
    # by a CLI, a LISTEN connection that dropped).
    api_key_cache_seconds: float = 10.0
    # How often each process re-checks the keys of its open WebSockets, for the same reason.
    api_key_recheck_seconds: float = 5.0
    # Failed-auth throttling per client address (IPv6 by /64): after this many refused keys within the
    # window, the client gets 429 RATE_LIMITED without any key lookup until the lockout ends.
    auth_failures_allowed: int = 20
    auth_failure_window_seconds: float = 60.0
    auth_lockout_seconds: float = 300.0
    # Clients remembered at once (memory stays bounded under a spread-out attack; the oldest are forgotten).
    auth_failure_clients_tracked: int = 100_000
    log_level: str = "info"
    # What one caller may send to /graphql (README "Limits on what callers send"). A request body (and a
    # WebSocket message, and a GET query string) larger than this is refused with 413 before it is read.
    graphql_max_request_bytes: int = 1024 * 1024
    # One document: lexical tokens, aliased fields, nesting depth, operations, the longest string and
    # list argument (literals and variables), and its estimated cost (fields, times page and list sizes).
    graphql_max_tokens: int = 15_000
    graphql_max_aliases: int = 100
    graphql_max_depth: int = 20
    graphql_max_operations: int = 20
    graphql_max_string_length: int = 10_000
    graphql_max_list_length: int = 1_000
    graphql_max_cost: int = 20_000
    # Each key's budget of cost points, refilled evenly over the window, per gateway process.
    graphql_cost_budget: int = 500_000
    graphql_cost_window_seconds: float = 60.0
    # Requests per second each key may make to /graphql over HTTP (a token bucket of `burst`), per process.
    graphql_requests_per_second: float = 100.0
    graphql_request_burst: int = 400
    # Keys whose rate and budget a process remembers at once (the least recently seen are forgotten).
    graphql_keys_tracked: int = 100_000
    # Automatic persisted queries (Apollo's protocol): documents clients registered by hash, kept per process
    # (least recently used out first) up to this many and this many bytes in all. Off: a hash the platform
    # did not register (xkit documents push) is answered PERSISTED_QUERY_NOT_SUPPORTED.
    graphql_apq_enabled: bool = True
    graphql_apq_max_documents: int = 10_000
    graphql_apq_max_bytes: int = 32 * 1024 * 1024
    # Trusted documents (xkit documents push): the largest manifest read, and documents per platform.
    documents_max_manifest_bytes: int = 16 * 1024 * 1024
    documents_per_platform: int = 5_000
    # Subscriptions one key may hold open at once on one process (and single-connection event streams).
    graphql_max_subscriptions_per_key: int = 200
    # A comment line on an idle Server-Sent Events stream (an empty part on a multipart one) this often, so
    # that proxies and load balancers do not close it.
    event_stream_keep_alive_seconds: float = 12.0
    # A passthrough request: its path with the encoded query, its extra headers (count, and bytes of one
    # header's name and value), and its body (JSON as serialised, or bodyText as UTF-8).
    passthrough_max_url_bytes: int = 8 * 1024
    passthrough_max_headers: int = 64
    passthrough_max_header_bytes: int = 8 * 1024
    passthrough_max_body_bytes: int = 1024 * 1024
    # A provider webhook delivery larger than this is refused with 413 before more of it is read (HubSpot
    # batches at most 100 events of a few hundred bytes each).
    webhook_max_bytes: int = 256 * 1024
    # Outbound webhook attempts in flight per worker process, and at most this many of them for one platform:
    # a platform whose receiver is slow or failing, or that changed a great deal at once, waits on its own
    # slots while the others' deliveries go out.
    webhook_delivery_concurrency: int = 16
    webhook_delivery_concurrency_per_platform: int = 4
    # OAuth connect flow: how long a connect link lives (opening it, consenting and coming back), how many
    # redirect URIs a platform may register, and the longest query string /oauth/start and /oauth/callback
    # read (a provider's code, state and error description fit many times over).
    connect_link_ttl_seconds: int = 900
    redirect_uris_per_platform: int = 20
    oauth_query_max_bytes: int = 4096

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("egress_allow")
    @classmethod
    def _valid_egress_entries(cls, value: list[str]) -> list[str]:
        EgressPolicy(value)  # a malformed entry stops the start, named, rather than being ignored
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'xkit.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
