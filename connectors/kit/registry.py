"""What a connector's sandbox offers the kit: one `SandboxEntry` per connector, exported as `SANDBOX` from
`connectors/<name>/sandbox/__init__.py`.

`xkit dev`, the conformance suite and the writeback suite iterate over these entries (see
`connectors.sandbox_entries`), so a connector that declares its entry is served, tested and demoed with
no wiring anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from itertools import count
from typing import Any, Generic, Literal, Protocol, TypeVar

from connectors.kit.credentials import Credentials
from connectors.kit.declaration import Connector
from connectors.kit.oauth import OAuthApp
from connectors.kit.sandbox import InjectableFaults, RequestStats, TokenStore

Storm = Literal["rate_limited", "server_errors"]


@dataclass(frozen=True)
class Endpoints:
    app: OAuthApp
    # The connection's base URL, or None when the provider names its host in the token response.
    base_url: str | None
    # Every URL the sandbox serves on (e.g. Salesforce's login host and its instance): what egress must allow.
    urls: tuple[str, ...]


class SandboxDriver(Protocol):
    """What the kit needs to know about, and do to, a provider's sandbox."""

    provider: str
    # The stream the conformance suite creates, changes and deletes records in, and its backfill page size.
    main_stream: str
    page_size: int
    # Where a seeded custom field shows up in a raw record of the main stream.
    custom_field_path: str
    # How long the provider's change feed (e.g. HubSpot's search index) may lag a write; 0 when it never does.
    search_lag_seconds: float
    # How many consecutive ports `serve` takes when given a first one.
    ports: int

    def serve(self, port: int | None = None) -> AbstractContextManager[Endpoints]:
        """Serve over real HTTP; on `port` and the ones after it, or on free ports."""
        ...

    def tokens(self) -> Credentials: ...

    def dev_credentials(self) -> Credentials:
        """What `xkit dev` connects the demo end user with: OAuth tokens, or a pasted key where that is how
        the provider's users connect (Stripe)."""
        ...

    def expected_ids(self, stream: str) -> set[str]: ...

    def create(self) -> str: ...

    def update(self, remote_id: str) -> None: ...

    def delete(self, remote_id: str) -> None: ...

    def expire_tokens(self) -> None: ...

    def revoke_refresh_token(self, refresh_token: str) -> None: ...

    def revoke_all_refresh_tokens(self) -> None: ...

    def token_refreshes(self) -> int: ...

    def storm(self, kind: Storm, rate: float) -> None: ...

    def latency(self, milliseconds: int) -> None: ...

    def responses(self) -> int:
        """Requests the sandbox has answered, whatever the status."""
        ...

    def push_changes_to(self, gateway_url: str) -> None:
        """Send the sandbox's change notifications to a running gateway, where the provider has them."""
        ...


class DrivenSandbox(Protocol):
    """What every sandbox in the kit has: a seeded OAuth app, its token store, request counters, fault knobs."""

    client_id: str
    client_secret: str
    tokens: TokenStore
    stats: RequestStats

    @property
    def faults(self) -> InjectableFaults: ...

    def mint_tokens(self) -> dict[str, Any]: ...


SandboxT = TypeVar("SandboxT", bound=DrivenSandbox)


class DriverBase(Generic[SandboxT]):
    """The parts of a `SandboxDriver` every kit sandbox does alike; a connector's driver adds its records."""

    # The fault knob for the provider's throttling status (HubSpot answers 429, Salesforce 403).
    throttle_knob: str
    search_lag_seconds = 0.0
    ports = 1

    def __init__(self, sandbox: SandboxT) -> None:
        self.sandbox = sandbox
        self._serial = count()

    def serial(self) -> int:
        """A new number for each record the suite creates, so unique fields stay unique."""
        return next(self._serial)

    def tokens(self) -> Credentials:
        return Credentials.from_token_response(self.sandbox.mint_tokens())

    def dev_credentials(self) -> Credentials:
        return self.tokens()

    def expire_tokens(self) -> None:
        self.sandbox.tokens.expire_access_tokens()

    def revoke_refresh_token(self, refresh_token: str) -> None:
        self.sandbox.tokens.revoke_refresh(refresh_token)

    def revoke_all_refresh_tokens(self) -> None:
        self.sandbox.tokens.revoke_all_refresh_tokens()

    def token_refreshes(self) -> int:
        return self.sandbox.stats.token_refreshes

    def storm(self, kind: Storm, rate: float) -> None:
        setattr(self.sandbox.faults, self.throttle_knob if kind == "rate_limited" else "rate_5xx", rate)

    def latency(self, milliseconds: int) -> None:
        self.sandbox.faults.latency_ms = milliseconds

    def responses(self) -> int:
        return sum(self.sandbox.stats.responses_by_status.values())

    def push_changes_to(self, gateway_url: str) -> None:
        """Most sandboxes have no change notifications to send."""


@dataclass(frozen=True)
class WriteCase:
    """One common model's writes on one provider: what to create, a custom field, what to change."""

    create: dict[str, Any]
    raw_fields: dict[str, Any]
    custom_field: str  # where the raw field lands in the provider's record
    # None where the provider's records of the model never change once made (Zendesk's comments): the
    # connector refuses updates and deletes of them.
    update: dict[str, Any] | None


class WritebackDriver(SandboxDriver, Protocol):
    """What the writeback suite needs besides: the provider's records by common model, and what to write."""

    # Common model -> the connector's stream the writes land in.
    write_streams: dict[str, str]

    def ids(self, model: str, *, deleted: bool = False) -> set[str]: ...

    def get(self, model: str, remote_id: str) -> dict[str, Any]: ...

    def change(self, model: str, remote_id: str) -> None:
        """Someone edits the record at the provider."""
        ...

    def cases(self) -> dict[str, WriteCase]:
        """A create and an update (where the provider allows one) per writable common model, relating to seeded
        records."""
        ...


def in_proportion(main: int, divisors: dict[str, int], *, floor: int = 10) -> dict[str, int]:
    """How many records of each other object a dev sandbox seeds beside `main` in its main stream: one per
    `divisor` of them, and at least `floor` so a small sandbox still has some of everything."""
    return {name: max(floor, main // divisor) for name, divisor in divisors.items()}


@dataclass(frozen=True)
class SandboxEntry:
    """A connector's sandbox, sized three ways: for `xkit dev`, for conformance and for writeback."""

    connector: Connector
    # A sandbox as big as `contacts` in its main stream, the rest in proportion.
    dev: Callable[[int], SandboxDriver]
    # At a realistic width (hundreds of fields on the main stream) with a few pages of records.
    conformance: Callable[[], SandboxDriver]
    # Small, for round trips of every writer; None when the connector writes nothing.
    writeback: Callable[[], WritebackDriver] | None = None

    @property
    def provider(self) -> str:
        return self.connector.name
