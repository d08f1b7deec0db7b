"""`HubSpotSandbox`: one emulated HubSpot portal with its OAuth apps, tokens, fault knobs,
counters and webhooks, and the Python control API tests use beside HTTP."""

from __future__ import annotations

import base64
import hashlib
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from connectors.hubspot.connector import HUBSPOT
from connectors.hubspot.sandbox.crm import Crm
from connectors.hubspot.sandbox.data import FIRST_USER_ID, SandboxSize, seed_portal
from connectors.hubspot.sandbox.schema import ObjectType, resolve_object_type, unlabeled_type
from connectors.hubspot.sandbox.timestamps import WriteClock
from connectors.hubspot.sandbox.webhooks import WebhookConfig, WebhookDispatcher, WebhookStats
from connectors.kit.oauth import OAuth2
from connectors.kit.sandbox import (
    ExpiredToken,
    FaultKnobs,
    Grant,
    IssuedTokens,
    RequestStats,
    RollingWindowLimiter,
    TokenIssuer,
    TokenStore,
    UnknownToken,
)
from connectors.kit.sandbox_support import SEED_END_MS

# The dev app is granted what the connector asks for.
DEFAULT_SCOPES = HUBSPOT.auth.scopes if isinstance(HUBSPOT.auth, OAuth2) else ()


@dataclass
class HubSpotFaultKnobs(FaultKnobs):
    webhook_latency_ms: int = 0  # extra wait before a batch of webhook events is sent
    # How long a write takes to reach search results (list, get and batch read show it at once).
    search_lag_ms: int = 0
    # Off: `/account-info/v3/details` answers 404, as a stand-in that lacks it would.
    account_info: bool = True


class HubSpotSandbox(TokenIssuer):
    """A deterministic HubSpot portal. The same seed and size always give the same records,
    ids, owners and dev-app credentials."""

    default_scopes = DEFAULT_SCOPES

    def __init__(self, seed: int = 42, size: SandboxSize | None = None) -> None:
        self.seed = seed
        self.size = size or SandboxSize()
        seeded = seed_portal(seed, self.size)
        latest_seeded = max((r.updated_ms for rs in seeded.records.values() for r in rs), default=SEED_END_MS)
        self.faults = HubSpotFaultKnobs()
        self.crm = Crm(seeded, WriteClock(floor_ms=latest_seeded), lambda: self.faults.search_lag_ms / 1000)
        identity = random.Random(f"hubspot-sandbox:{seed}")
        self.hub_id = 20_000_000 + identity.randrange(1_000_000)
        self.client_id = str(uuid.UUID(int=identity.getrandbits(128), version=4))
        self.client_secret = str(uuid.UUID(int=identity.getrandbits(128), version=4))
        # Drawn apart from the identity above, so adding it changed no existing credential.
        self.app_id = 1_000_000 + random.Random(f"hubspot-sandbox-app:{seed}").randrange(9_000_000)
        self.user_id = self.crm.owners[0].user_id if self.crm.owners else FIRST_USER_ID
        self.apps = {}
        self.register_app(self.client_id, self.client_secret)
        self.stats = RequestStats()
        self.tokens = TokenStore(access_prefix="C", refresh_prefix="na1-")
        self.rate_limiter = RollingWindowLimiter()
        self.fault_rng = random.Random(seed)
        self.webhook_stats = WebhookStats()
        self.webhooks = WebhookDispatcher(self.webhook_stats, latency_ms=lambda: self.faults.webhook_latency_ms)

    # ---- OAuth apps and tokens ---------------------------------------------------------------

    def grant(self, client_id: str, scopes: Sequence[str]) -> Grant:
        return Grant(client_id=client_id, scopes=tuple(scopes), account_id=self.hub_id, user_id=self.user_id)

    def issue_tokens(self, grant: Grant) -> dict[str, Any]:
        issued = self.tokens.issue(grant, self.faults.token_lifetime_s)
        self.stats.count_issue(refresh=False)
        return self.token_response(issued)

    def refresh_tokens(self, refresh_token: str, client_id: str) -> dict[str, Any]:
        """Raises UnknownToken for a refresh token this client was never given (or revoked)."""
        issued = self.tokens.refresh(refresh_token, client_id, self.faults.token_lifetime_s)
        self.stats.count_issue(refresh=True)
        return self.token_response(issued)

    def token_response(self, issued: IssuedTokens) -> dict[str, Any]:
        return {
            "token_type": "bearer",
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "expires_in": issued.expires_in,
            "hub_id": issued.grant.account_id,
            "user_id": issued.grant.user_id,
            "scopes": list(issued.grant.scopes),
            "token_use": "access_token",
        }

    def access_token_info(self, token: str, client_id: str | None = None) -> dict[str, Any] | None:
        """Introspection of a live access token (the v3 `PublicAccessTokenInfoResponse` fields; v1 drops
        `active` and `client_id`); None when it is unknown, expired or (given `client_id`) another app's."""
        try:
            access = self.tokens.authenticate(token)
        except (UnknownToken, ExpiredToken):
            return None
        grant = access.grant
        if client_id is not None and grant.client_id != client_id:
            return None
        return {
            **self._grant_info(token, "access", grant),
            "expires_in": max(0, int(access.expires_at - time.time())),
            "is_private_distribution": False,
            "signed_access_token": self._signed_access_token(access.expires_at, grant),
        }

    def refresh_token_info(self, token: str, client_id: str | None = None) -> dict[str, Any] | None:
        """The v3 `PublicRefreshTokenInfoResponse` fields of a refresh token (v1: `RefreshTokenInfoResponse`)."""
        grant = self.tokens.lookup_refresh(token)
        if grant is None or (client_id is not None and grant.client_id != client_id):
            return None
        return self._grant_info(token, "refresh", grant)

    def _grant_info(self, token: str, kind: str, grant: Grant) -> dict[str, Any]:
        """What introspection tells of any token: whose it is, for which app and portal, with which scopes."""
        return {
            "token": token,
            "token_type": kind,
            "token_use": f"{kind}_token",
            "client_id": grant.client_id,
            "user": self._user_email(grant.user_id),
            "user_id": grant.user_id,
            "hub_id": grant.account_id,
            "hub_domain": self.hub_domain,
            "app_id": self.app_id,
            "scopes": list(grant.scopes),
        }

    @property
    def hub_domain(self) -> str:
        return f"hub{self.hub_id}.example.com"

    def _user_email(self, user_id: int) -> str | None:
        return next((owner.email for owner in self.crm.owners if owner.user_id == user_id), None)

    def _signed_access_token(self, expires_at: float, grant: Grant) -> dict[str, Any]:
        scopes = " ".join(grant.scopes)
        # HubSpot signs these claims with its own key; the sandbox's signature is a digest of them.
        signature = base64.b64encode(hashlib.sha256(f"{grant.account_id}:{scopes}:{expires_at}".encode()).digest())
        return {
            "expiresAt": int(expires_at * 1000),
            "scopes": base64.b64encode(scopes.encode()).decode(),
            "hubId": grant.account_id,
            "userId": grant.user_id,
            "appId": self.app_id,
            "installingUserId": grant.user_id,
            "appInstallId": f"{self.app_id}-{grant.account_id}",
            "audience": "HUBSPOT_API",
            "hublet": "na1",
            "isUserLevel": False,
            "isServiceAccount": False,
            "isPrivateDistribution": False,
            "trialScopes": "",
            "trialScopeToScopeGroupPks": "",
            "scopeToScopeGroupPks": "",
            "signature": signature.decode(),
            "newSignature": signature.decode(),
        }

    def control_stats(self) -> dict[str, Any]:
        return {**self.stats.snapshot(), "webhooks": self.webhook_stats.snapshot()}

    def expire_access_tokens(self) -> int:
        return self.tokens.expire_access_tokens()

    # ---- webhooks ----------------------------------------------------------------------------

    def configure_webhooks(
        self,
        target_url: str,
        *,
        client_secret: str | None = None,
        app_id: int | None = None,
        portal_id: int | None = None,
        batch_window_ms: int = 50,
        max_batch: int = 100,
    ) -> None:
        """Send every later change to contacts, companies, deals and tickets to `target_url`, as HubSpot
        sends an app's webhooks: batched, signed (v3) with `client_secret` (default: the seeded dev
        app's) and retried. `app_id` defaults to `self.app_id`, `portal_id` to `self.hub_id`, the
        `hub_id` of the sandbox's tokens. Calling it again retargets delivery; queued events stay.
        Raises ValueError for a target that is not an absolute http(s) URL."""
        config = WebhookConfig(
            target_url,
            client_secret=client_secret if client_secret is not None else self.client_secret,
            app_id=app_id if app_id is not None else self.app_id,
            portal_id=portal_id if portal_id is not None else self.hub_id,
            batch_window_ms=batch_window_ms,
            max_batch=max_batch,
        )
        with self.crm.lock:
            self.webhooks.configure(config)
            self.crm.on_change = self.webhooks.publish

    def disable_webhooks(self) -> None:
        """Stop sending webhooks; events not delivered yet are dropped."""
        with self.crm.lock:
            self.crm.on_change = None
            self.webhooks.configure(None)

    def flush_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every event so far was delivered or given up; False when `timeout` ran out."""
        return self.webhooks.flush(timeout)

    def close(self) -> None:
        """Stop background work (webhook delivery) and join its thread. Webhooks stay off until
        configured again."""
        with self.crm.lock:
            self.crm.on_change = None
        self.webhooks.close()

    def __enter__(self) -> HubSpotSandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # ---- records -----------------------------------------------------------------------------
    # Changes made here are reported by webhooks with changeSource "CRM_UI", as a user's would be.

    def create(
        self,
        object_type: str,
        properties: dict[str, Any],
        associations: dict[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        """Same effect as `POST /crm/v3/objects/{object_type}`; raises HubSpotError like it would
        answer. `associations` maps an object type to ids linked with the default type."""
        kind = _object_type(object_type)
        inputs = _default_association_inputs(kind, associations or {})
        return self.crm.create(kind, properties, inputs, change_source="CRM_UI")

    def update(self, object_type: str, record_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        return self.crm.update(_object_type(object_type), str(record_id), properties, change_source="CRM_UI")

    def archive(self, object_type: str, record_id: str) -> None:
        self.crm.archive(_object_type(object_type), str(record_id), change_source="CRM_UI")

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Link two records with the default (unlabeled) association type, both ways."""
        self.crm.associate_default(
            _object_type(from_type), str(from_id), _object_type(to_type), str(to_id), change_source="CRM_UI"
        )

    def unassociate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Remove every association between two records."""
        self.crm.unassociate(
            _object_type(from_type), str(from_id), _object_type(to_type), str(to_id), change_source="CRM_UI"
        )

    def get(self, object_type: str, record_id: str, *, archived: bool = False) -> dict[str, Any]:
        kind = _object_type(object_type)
        return self.crm.read(kind, str(record_id), archived=archived, properties=self.crm.all_property_names(kind))

    def all_ids(self, object_type: str, archived: bool = False) -> set[str]:
        return self.crm.all_ids(_object_type(object_type), archived=archived)


def _object_type(name: str) -> ObjectType:
    kind = resolve_object_type(name)
    if kind is None:
        raise ValueError(f"unknown HubSpot object type {name!r}")
    return kind


def _default_association_inputs(kind: ObjectType, associations: dict[str, list[str]]) -> list[dict[str, Any]]:
    inputs: list[dict[str, Any]] = []
    for to_name, ids in associations.items():
        to_kind = _object_type(to_name)
        association_type = unlabeled_type(kind.name, to_kind.name)
        if association_type is None:
            raise ValueError(f"{kind.name} cannot be associated with {to_kind.name}")
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association_type.type_id}
        inputs.extend({"to": {"id": str(i)}, "types": [spec]} for i in ids)
    return inputs


__all__ = ["DEFAULT_SCOPES", "HubSpotFaultKnobs", "HubSpotSandbox", "SandboxSize", "UnknownToken"]
