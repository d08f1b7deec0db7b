"""Requests a wide HubSpot backfill costs: list + batch read (what the connector does) against property
sets split over several list pagings and merged by id, for accounts of several widths.

Both read every contact with every property in URLs within the connector's budget; the sandbox counts
the requests each way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from connectors.hubspot.connector import HUBSPOT
from connectors.hubspot.reads import CURSOR_ALLOWANCE, URL_BUDGET_BYTES
from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.kit.credentials import Credentials
from connectors.kit.declaration import StreamContext
from connectors.kit.http import ConnectionAccess, HttpKit, ProviderSession
from connectors.kit.oauth import OAuthApp
from connectors.kit.sandbox import serve_in_thread
from tests.support import sandbox_egress

CONTACTS = 1_000
WIDTHS = (200, 400, 600, 1_000)


def property_chunks(session: ProviderSession, path: str, params: dict[str, Any], names: list[str]) -> list[list[str]]:
    """Property lists each of which fits the URL budget alongside `params`."""
    chunks: list[list[str]] = [[]]
    for name in names:
        trial = [*chunks[-1], name]
        query = {**params, "properties": ",".join(trial), "after": CURSOR_ALLOWANCE}
        if chunks[-1] and session.request_target_bytes(path, query) > URL_BUDGET_BYTES:
            chunks.append([name])
        else:
            chunks[-1] = trial
    return chunks


async def chunked_backfill(ctx: StreamContext) -> dict[str, dict[str, Any]]:
    """One list paging per property chunk, merged by id."""
    stream = ctx.stream
    params = {**stream.params, "limit": 100}
    merged: dict[str, dict[str, Any]] = {}
    for chunk in property_chunks(ctx.session, stream.path, params, ctx.discovered_params["properties"]):
        after: str | None = None
        while True:
            body = await ctx.session.get_json(
                stream.path, {**params, "properties": ",".join(chunk), **({"after": after} if after else {})}
            )
            for raw in body["results"]:
                merged.setdefault(raw["id"], {**raw, "properties": {}})["properties"].update(raw["properties"])
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if not after:
                break
    return merged


async def listing_backfill(ctx: StreamContext) -> dict[str, dict[str, Any]]:
    return {
        record.remote_id: record.raw async for page in ctx.stream.pagination.pages(ctx, None) for record in page.records
    }


async def measure(
    width: int, backfill: Callable[[StreamContext], Awaitable[dict[str, dict[str, Any]]]]
) -> dict[str, Any]:
    sandbox = HubSpotSandbox(
        seed=1,
        size=SandboxSize(
            contacts=CONTACTS, companies=50, deals=5, owners=2, notes=5, tasks=5, contact_properties=width
        ),
    )
    sandbox.faults.rate_limit_enabled = False
    with serve_in_thread(create_app(sandbox)) as url:
        kit = HttpKit(egress=sandbox_egress())
        try:
            access = ConnectionAccess(
                key="bench",
                auth=HUBSPOT.auth,
                base_url=url,
                credentials=Credentials.from_token_response(sandbox.mint_tokens()),
                parse_error=HUBSPOT.parse_error,
                rate_limit=None,
                hosts=HUBSPOT.hosts,
                app=OAuthApp(sandbox.client_id, sandbox.client_secret),
            )
            session = kit.session(access)
            stream = HUBSPOT.stream("contacts")
            assert stream.discovery is not None
            ctx = StreamContext(session, stream, await stream.discovery.params(session, stream))
            sandbox.stats.reset()
            found = await backfill(ctx)
        finally:
            await kit.aclose()
    assert len(found) == CONTACTS and all(len(raw["properties"]) == width for raw in found.values())
    stats = sandbox.stats.snapshot()
    return {"requests": sum(stats["requests"].values()), "by_route": stats["requests"]}


async def run_hubspot_wide() -> dict[str, object]:
    results: dict[str, object] = {"contacts": CONTACTS, "url_budget_bytes": URL_BUDGET_BYTES}
    for width in WIDTHS:
        listing = await measure(width, listing_backfill)
        chunked = await measure(width, chunked_backfill)
        results[f"{width}_properties"] = {
            "list_plus_batch_read": listing["requests"],
            "chunked_property_sets": chunked["requests"],
        }
    return results
