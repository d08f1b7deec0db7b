"""The graphql-ws reference client (npm `graphql-ws`, the one Apollo and urql use for subscriptions)
against the gateway: resume without gap or repeat, and the reasons of a refusal."""

from __future__ import annotations

import json

from sqlalchemy import select

from gateway.sockets import INVALID_KEY, NO_KEY, REFUSED_CLOSE_CODE, REVOKED_KEY
from resolvers.changes import decode_cursor, encode_cursor
from sync.storage.store import Store
from sync.storage.tables import changes
from sync.tenancy.platforms import create_api_key, revoke_api_key
from tests.js_clients import run_node
from tests.support import SyncedHubSpot, data, latest_change_cursor, synced_fixture

RETITLE = """mutation($c: ID!, $r: String!, $title: String!) {
  updateContact(connectionId: $c, remoteId: $r, input: {jobTitle: $title}) { contact { jobTitle } }
}"""


setup = synced_fixture(SyncedHubSpot)


def ws_url(setup: SyncedHubSpot) -> str:
    return setup.api.url.replace("http://", "ws://") + "/graphql"


async def contact_changes_after(store: Store, platform_id: object, after: str) -> list[tuple[str, str]]:
    """(cursor, remote id) of every Contact change after `after`, as the log holds them."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(changes.c.seq, changes.c.remote_id)
            .where(
                changes.c.platform_id == platform_id,
                changes.c.model == "Contact",
                changes.c.seq > decode_cursor(after),
            )
            .order_by(changes.c.seq)
        )
        return [(encode_cursor(row.seq), row.remote_id) for row in rows]


async def test_graphql_ws_resumes_from_its_last_cursor_without_gap_or_repeat(setup: SyncedHubSpot) -> None:
    before, *contacts = sorted(setup.sandbox.all_ids("contacts"), key=int)[:7]
    after = await latest_change_cursor(setup.store)
    data(await setup.api.graphql(RETITLE, setup.tenant.api_key, c=setup.connection, r=before, title="before"))
    config = {
        "wsUrl": ws_url(setup),
        "httpUrl": setup.api.url,
        "apiKey": setup.tenant.api_key,
        "connectionId": setup.connection,
        "after": after,
        "contacts": contacts,
    }
    seen = await run_node("graphql-ws-resume.mjs", json.dumps(config))

    received = seen["first"] + seen["second"]
    logged = await contact_changes_after(setup.store, setup.tenant.platform_id, after)
    assert [(c["cursor"], c["remoteId"]) for c in received] == logged  # every change once, in order
    assert [c["jobTitle"] for c in received] == [
        "before",
        "live-0",
        "live-1",
        "live-2",
        "offline-0",
        "offline-1",
        "after-resume",
    ]
    assert [c["jobTitle"] for c in seen["first"]] == ["before", "live-0"]  # the rest came after resuming


async def test_graphql_ws_is_told_why_its_key_is_refused(setup: SyncedHubSpot) -> None:
    old = await create_api_key(setup.store, setup.tenant.platform_id, "old")
    await revoke_api_key(setup.store, old.id)
    config = {"wsUrl": ws_url(setup), "keys": {"missing": None, "wrong": "xk_not_a_key", "revoked": old.key}}
    seen = await run_node("graphql-ws-refused.mjs", json.dumps(config))
    assert seen == {
        "missing": {"code": REFUSED_CLOSE_CODE, "reason": NO_KEY},
        "wrong": {"code": REFUSED_CLOSE_CODE, "reason": INVALID_KEY},
        "revoked": {"code": REFUSED_CLOSE_CODE, "reason": REVOKED_KEY},
    }
