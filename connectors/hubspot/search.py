"""HubSpot's incremental reads: the search API on the modified-date property, the archived listing for
deletions, the properties API for custom fields and the v4 associations API for what search leaves out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.kit.convert import epoch_millis, iso_millis, parse_datetime, read_datetime
from connectors.kit.declaration import Cursor, Stream, StreamContext
from connectors.kit.errors import PaginationStopped, ProviderError
from connectors.kit.http import ProviderSession
from connectors.kit.jsonpath import dig
from connectors.kit.pagination import CursorPagination, ListRequest
from connectors.kit.records import Page
from connectors.kit.strategies import ListedDeletions

# Rounds of v4 association pages one read follows: 500 links a page, so 50,000 links per record and type.
MAX_ASSOCIATION_ROUNDS = 100
# Paging a search with `after` at or past this offset is refused with a 400.
SEARCH_RESULT_CAP = 10_000
# How long after a write the incremental sync trusts search to show it (see SearchIncremental).
SEARCH_SETTLE = timedelta(seconds=60)


@dataclass(frozen=True)
class AllProperties:
    """Ask for every property the account defines, custom ones included, so they land in `raw`."""

    object_type: str

    async def params(self, session: ProviderSession, stream: Stream) -> dict[str, Any]:
        body = await session.get_json(f"/crm/v3/properties/{self.object_type}")
        return {"properties": sorted(p["name"] for p in body.get("results", []) if not p.get("archived"))}


@dataclass(frozen=True)
class SearchIncremental:
    """Search sorted ascending on the modified date, `GTE` the cursor, under search's indexing lag.

    HubSpot indexes writes for search some time after the write (its search guide: "a few moments";
    Okta's HubSpot connector waits 10 s after a create and 60 s after an update before searching), while
    the modified date is the time of the write. So a run reads everything modified since the cursor and
    then moves the cursor to `settle` before the run started, never further: a write older than that had
    time to be indexed and was read; a younger one is read again by the next run (unchanged content is
    dropped by the cache's hash, so the re-read window emits no events). The cursor never moves back, so
    idle runs keep the window at `settle` plus the sync interval.

    Pages follow each other by the last modified date seen (keyset), not by offset: a record updated
    during the run moves to the end of the order, and an offset would then skip the record after it.
    Only records sharing one instant are paged by offset, up to search's 10,000-result cap.
    """

    object_type: str
    modified_property: str
    page_size: int = 200
    settle: timedelta = SEARCH_SETTLE

    def initial_cursor(self, backfill_started_at: datetime) -> Cursor:
        return {"since": iso_millis(backfill_started_at - self.settle), "after": 0}

    async def pages(self, ctx: StreamContext, cursor: Cursor) -> AsyncIterator[Page]:
        start = parse_datetime(cursor["since"])
        assert start is not None
        settled = datetime.now(UTC) - self.settle
        since, after = start, int(cursor.get("after", 0))
        chain = ctx.page_budget.chain()
        while True:
            chain.follow((iso_millis(since), after))
            body = await ctx.session.post_json(
                f"/crm/v3/objects/{self.object_type}/search", self._query(ctx, since, after)
            )
            results: list[dict[str, Any]] = body.get("results", [])
            await attach_associations(ctx, self.object_type, results)
            records = [ctx.to_record(raw) for raw in results]
            if dig(body, "paging.next.after") is None:
                done = max(start, settled)
                yield Page(records, {"since": iso_millis(done), "after": 0}, high_water=done)
                return
            seen = [modified for raw in results if (modified := self._modified(raw)) is not None]
            last = max(seen, default=None)
            if last is not None and last > since:
                since, after = last, 0
            else:  # the whole page shares one instant: page through it by offset
                after += len(results)
                if after + self.page_size > SEARCH_RESULT_CAP:
                    raise ProviderError(
                        f"more than {SEARCH_RESULT_CAP} {self.object_type} share one modified date; "
                        "HubSpot search cannot page past them"
                    )
            # A run cut short resumes here; past the settled instant only from it, since younger writes
            # may still be missing from the index.
            resume = {"since": iso_millis(since), "after": after} if since <= settled else None
            yield Page(records, resume or {"since": iso_millis(max(start, settled)), "after": 0})

    def _modified(self, raw: dict[str, Any]) -> datetime | None:
        return read_datetime(dig(raw, f"properties.{self.modified_property}"))

    def _query(self, ctx: StreamContext, since: datetime, after: int) -> dict[str, Any]:
        prop = self.modified_property
        return {
            "filterGroups": [
                {"filters": [{"propertyName": prop, "operator": "GTE", "value": str(epoch_millis(since))}]}
            ],
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
            "properties": ctx.discovered_params.get("properties", []),
            "limit": self.page_size,
            "after": str(after),
        }


async def attach_associations(ctx: StreamContext, object_type: str, results: list[dict[str, Any]]) -> None:
    """Search results carry no associations; read them in one batch per target type and put them where
    the list API puts them, so `raw` and the mapping look the same whichever API fetched the record."""
    put_associations(results, await read_associations(ctx, object_type, [raw["id"] for raw in results]))


# target type -> record id -> the list API's association rows: {"id", "type"}, one per association type
Linked = dict[str, dict[str, list[dict[str, str]]]]

# The list API names an association type `<from>_to_<to>` in the singular; on the pairs that carry HubSpot's
# "Primary" label, an association without a label is `<from>_to_<to>_unlabeled`.
SINGULAR = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "notes": "note",
    "tasks": "task",
    "tickets": "ticket",
}
PRIMARY_LABELLED = frozenset(
    {
        ("contacts", "companies"),
        ("companies", "contacts"),
        ("deals", "companies"),
        ("companies", "deals"),
        ("tickets", "companies"),
        ("companies", "tickets"),
    }
)


def association_name(from_type: str, to_type: str, label: str | None) -> str:
    base = f"{SINGULAR.get(from_type, from_type)}_to_{SINGULAR.get(to_type, to_type)}"
    return f"{base}_unlabeled" if label is None and (from_type, to_type) in PRIMARY_LABELLED else base


async def read_associations(ctx: StreamContext, object_type: str, ids: list[Any]) -> Linked:
    """The stream's associations of these records, one v4 batch read per target type, concurrently."""
    targets = [t for t in str(ctx.stream.params.get("associations", "")).split(",") if t]
    if not ids or not targets:
        return {}
    found = await asyncio.gather(*(_read_target(ctx, object_type, target, ids) for target in targets))
    return dict(zip(targets, found, strict=True))


async def _read_target(
    ctx: StreamContext, object_type: str, target: str, ids: list[Any]
) -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = {}
    inputs: list[dict[str, str]] = [{"id": str(i)} for i in ids]
    asked: set[tuple[str, str]] = set()
    # Each record's associations come in pages of their own (HubSpot's reference for this endpoint): a
    # record with more than a page names the `after` of its next page, asked for with its id next time.
    # Every round counts against the run's page budget, and rounds are capped besides (a lookup outside a
    # sync run has no budget): a provider handing out fresh cursors for ever cannot hold the caller.
    chain = ctx.page_budget.chain()
    for _ in range(MAX_ASSOCIATION_ROUNDS):
        if not inputs:
            return rows
        chain.follow(None)
        body = await ctx.session.post_json(
            f"/crm/v4/associations/{object_type}/{target}/batch/read", {"inputs": inputs}
        )
        inputs = []
        for item in body.get("results", []):
            from_id = str(item["from"]["id"])
            rows.setdefault(from_id, []).extend(
                {"id": str(to["toObjectId"]), "type": association_name(object_type, target, kind.get("label"))}
                for to in item.get("to", [])
                for kind in to.get("associationTypes") or [{}]
            )
            if after := dig(item, "paging.next.after"):
                if (from_id, str(after)) in asked:
                    raise ProviderError(f"HubSpot repeated a page of {object_type} {from_id}'s {target}")
                asked.add((from_id, str(after)))
                inputs.append({"id": from_id, "after": str(after)})
    if inputs:
        raise PaginationStopped(
            f"HubSpot kept paging {object_type} associations to {target} past {MAX_ASSOCIATION_ROUNDS} pages"
        )
    return rows


async def complete_listed_associations(ctx: StreamContext, object_type: str, results: list[dict[str, Any]]) -> None:
    """Read whole the association blocks the list API cut short, in place.

    The v3 list and get answer at most 100 associated records per target type and name the rest with a
    `paging.next` inside that type's block (HubSpot's changelog "Announcing a change to how v3 CRM APIs
    return association data"). Those blocks are read again through the v4 batch read, which every other
    path reads, and written as `put_associations` writes, without the cursor: one batch read (and its own
    pages past 500 links) per target type that was cut short, no request when nothing was.
    """
    cut_short: dict[str, list[dict[str, Any]]] = {}
    for raw in results:
        for target, block in (raw.get("associations") or {}).items():
            if "paging" in block:
                cut_short.setdefault(target, []).append(raw)
    if not cut_short:
        return
    found = await asyncio.gather(
        *(_read_target(ctx, object_type, target, [raw["id"] for raw in cut]) for target, cut in cut_short.items())
    )
    for (target, cut), by_record in zip(cut_short.items(), found, strict=True):
        for raw in cut:
            associations = raw["associations"]
            rows = by_record.get(str(raw["id"]))
            if rows:
                associations[target] = {"results": rows}
            else:  # unlinked between the two requests: stored as any other path stores no links
                del associations[target]
                if not associations:
                    del raw["associations"]


def put_associations(results: list[dict[str, Any]], linked: Linked) -> None:
    """Put the associations where the list API puts them, as it writes them, so `raw` is the same
    whichever API read the record."""
    for target, by_record in linked.items():
        for raw in results:
            rows = by_record.get(str(raw["id"]))
            if rows:
                raw.setdefault("associations", {})[target] = {"results": rows}


# Deletions: `archived=true` lists every archived record with its `archivedAt`, paged like any listing but
# without the stream's properties or associations.
ARCHIVED_LISTING = ListedDeletions(
    CursorPagination(request=ListRequest(params={"archived": "true"}, stream_params=False, deleted=True))
)
