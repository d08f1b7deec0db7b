"""The process's long-lived parts: the store, the HTTP kit, the worker, and the services every request shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from connectors.kit.egress import EgressPolicy
from connectors.kit.http import HttpKit
from connectors.kit.oauth import TokenCallLimits
from gateway.settings import Settings
from resolvers.context import ConnectPolicy, Services
from resolvers.ids import CursorCodec
from resolvers.limits import KeyedBuckets, RequestLimits, SubscriptionSlots
from resolvers.passthrough import PassthroughLimits
from sync.cache.discovery import DiscoveryCache
from sync.storage.crypto import Vault, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.store import Store
from sync.webhooks import outbound
from sync.worker.runner import RunLimits
from sync.worker.scheduler import Fairness, Worker, release_leases


@dataclass
class Runtime:
    """The process's long-lived parts, built once and closed on shutdown."""

    settings: Settings
    store: Store
    kit: HttpKit
    worker: Worker | None
    services: Services = field(init=False)

    def __post_init__(self) -> None:
        secret = self.settings.secret_key
        assert secret is not None
        self.services = Services(
            store=self.store,
            kit=self.kit,
            cursors=CursorCodec(parse_secret_key(secret.get_secret_value())),
            public_url=self.settings.resolved_public_url,
            worker=self.worker,
            discoveries=self.worker.discoveries if self.worker else DiscoveryCache(),
            limits=RequestLimits(
                max_tokens=self.settings.graphql_max_tokens,
                max_aliases=self.settings.graphql_max_aliases,
                max_depth=self.settings.graphql_max_depth,
                max_operations=self.settings.graphql_max_operations,
                max_string_length=self.settings.graphql_max_string_length,
                max_list_length=self.settings.graphql_max_list_length,
                max_cost=self.settings.graphql_max_cost,
            ),
            cost_budgets=KeyedBuckets(
                self.settings.graphql_cost_budget,
                self.settings.graphql_cost_budget / self.settings.graphql_cost_window_seconds,
                max_keys=self.settings.graphql_keys_tracked,
            ),
            request_rates=KeyedBuckets(
                self.settings.graphql_request_burst,
                self.settings.graphql_requests_per_second,
                max_keys=self.settings.graphql_keys_tracked,
            ),
            subscription_slots=SubscriptionSlots(self.settings.graphql_max_subscriptions_per_key),
            passthrough_limits=PassthroughLimits(
                max_url_bytes=self.settings.passthrough_max_url_bytes,
                max_headers=self.settings.passthrough_max_headers,
                max_header_bytes=self.settings.passthrough_max_header_bytes,
                max_body_bytes=self.settings.passthrough_max_body_bytes,
            ),
            connect=ConnectPolicy(
                link_ttl=timedelta(seconds=self.settings.connect_link_ttl_seconds),
                redirect_uris_per_platform=self.settings.redirect_uris_per_platform,
                test_keys_only=self.settings.test_keys_only,
            ),
        )

    @classmethod
    def build(cls, settings: Settings, *, run_worker: bool | None = None) -> Runtime:
        if settings.secret_key is None:
            raise SystemExit("XKIT_SECRET_KEY is not set (xkit dev makes one; production must set it)")
        key = parse_secret_key(settings.secret_key.get_secret_value())
        store = Store(create_engine(settings.resolved_database_url), Vault(key))
        kit = HttpKit(
            egress=EgressPolicy(settings.egress_allow),
            timeout=settings.http_timeout_seconds,
            request_deadline=settings.provider_request_deadline_seconds,
            max_response_bytes=settings.provider_response_max_bytes,
            max_record_bytes=settings.max_record_bytes,
            token_limits=TokenCallLimits(
                timeout=settings.http_timeout_seconds,
                deadline=settings.provider_request_deadline_seconds,
                max_response_bytes=settings.token_response_max_bytes,
            ),
        )
        worker_wanted = settings.run_worker if run_worker is None else run_worker
        worker = (
            Worker(
                store,
                kit,
                concurrency=settings.worker_concurrency,
                poll_interval=settings.worker_poll_seconds,
                change_retention=timedelta(days=settings.change_retention_days),
                fairness=Fairness(
                    max_running_per_connection=settings.worker_max_running_per_connection,
                    max_running_per_platform=settings.worker_max_running_per_platform,
                ),
                run_limits=RunLimits(max_pages=settings.max_pages_per_run),
                webhooks=outbound.Tunables(
                    concurrency=settings.webhook_delivery_concurrency,
                    per_platform=settings.webhook_delivery_concurrency_per_platform,
                ),
            )
            if worker_wanted
            else None
        )
        return cls(settings, store, kit, worker)

    async def close(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
            await release_leases(self.store, self.worker.worker_id)
        await self.kit.aclose()
        await self.store.engine.dispose()
