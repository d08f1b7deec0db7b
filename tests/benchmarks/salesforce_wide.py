"""Salesforce wide org: requests (and API calls) to backfill 5,000 Contacts of 500 fields, three ways.

- plain GET: the whole SELECT in `query?q=` — the URL is over 16,384 bytes, so Salesforce answers 414.
- Composite (what the connector does): the first page's SOQL in a Composite body, then `nextRecordsUrl` GETs.
- field chunks: fields split so each query's URL fits (here the most favourable budget, the 16,384-byte
  limit less 1,384 bytes of headers), merged by Id: one query walks the records, the others fetch each
  batch's remaining fields by `Id IN (...)` of 200 Ids.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2

from connectors import get_connector
from connectors.kit.credentials import Credentials
from connectors.kit.declaration import StreamContext
from connectors.kit.errors import ProviderError
from connectors.kit.http import ConnectionAccess, HttpKit
from connectors.salesforce.query import API, QueryLimits, SoqlBackfill
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from tests.support import sandbox_egress

CONTACTS = 5_000
FIELDS = 500
WAYS = {
    "plain_get": QueryLimits(url_bytes=1_000_000, composite=False),
    "composite": QueryLimits(),
    "field_chunks": QueryLimits(url_bytes=15_000, composite=False),
}


async def run_salesforce_wide() -> dict[str, Any]:
    size = SalesforceSize(
        contacts=CONTACTS, leads=2, accounts=10, opportunities=2, users=2, tasks=2, notes=2, contact_fields=FIELDS
    )
    sandbox = SalesforceSandbox(seed=21, size=size)
    sandbox.faults.daily_limit_enabled = False
    connector = get_connector("salesforce")
    stream = connector.stream("contacts")
    results: dict[str, Any] = {"contacts": len(sandbox.all_ids("Contact")), "fields": FIELDS}
    with serve_sandbox(sandbox):
        kit = HttpKit(egress=sandbox_egress(), max_retries=0)
        try:
            access = ConnectionAccess(
                key="bench",
                auth=connector.auth,
                base_url=sandbox.instance_url,
                credentials=Credentials.from_token_response(sandbox.mint_tokens()),
                parse_error=connector.parse_error,
                rate_limit=None,
                hosts=connector.hosts,
                base_url_key="instance_url",
            )
            session = kit.session(access)
            assert stream.discovery is not None
            ctx = StreamContext(session, stream, await stream.discovery.params(session, stream))
            async with httpx2.AsyncClient() as probe:
                token = access.credentials.access_token
                headers = {"Authorization": f"Bearer {token}"}
                soql = "SELECT " + ", ".join(ctx.discovered_params["fields"]) + " FROM Contact"
                probe_url = f"{sandbox.instance_url}{API}/query"
                results["select_url_bytes"] = len(str(httpx2.URL(probe_url, params={"q": soql})))
                results["plain_get_status"] = (
                    await probe.get(probe_url, params={"q": soql}, headers=headers)
                ).status_code
            for way, limits in WAYS.items():
                sandbox.stats.reset()
                used_before = sandbox.usage.used()
                started = time.perf_counter()
                records = 0
                outcome = "ok"
                try:
                    async for page in SoqlBackfill("Contact", limits).pages(ctx, None):
                        records += len(page.records)
                except ProviderError as failed:
                    outcome = f"{failed.status}: {failed.message[:60]}"
                results[way] = {
                    "outcome": outcome,
                    "records": records,
                    "requests": sum(sandbox.stats.requests.values()),
                    "api_calls": sandbox.usage.used() - used_before,
                    "seconds": round(time.perf_counter() - started, 2),
                }
        finally:
            await kit.aclose()
    return results
