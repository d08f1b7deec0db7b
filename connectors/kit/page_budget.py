"""How far one sync run follows a provider's pages: a bounded number of pages, and never one cursor twice.

A provider that pages forever, or hands back a cursor it already gave, would otherwise hold a worker's slot
for good. Every pagination asks its chain before each request; the run stops with a `PaginationStopped`
after storing what came before, and the next run resumes from the last page stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from connectors.kit.errors import PageBudgetSpent, PaginationStopped

Token = TypeVar("Token", bound=Hashable)
Body = TypeVar("Body")


class PageBudget:
    """The pages one run may fetch, over every pagination it walks (records, then deletions)."""

    def __init__(self, max_pages: int | None) -> None:
        self.max_pages = max_pages
        self.fetched = 0

    def chain(self) -> PageChain:
        """A new walk through one pagination: its cursors are compared with each other only."""
        return PageChain(self)

    def spend(self) -> None:
        if self.max_pages is not None and self.fetched >= self.max_pages:
            raise PageBudgetSpent(
                f"stopped after {self.max_pages} pages, the most one run reads; the next run resumes after "
                "the last page stored"
            )
        self.fetched += 1


class PageChain:
    def __init__(self, budget: PageBudget) -> None:
        self.budget = budget
        self._followed: set[Hashable] = set()

    def follow(self, token: Hashable | None) -> None:
        """Before asking for the page `token` names (None: the first page, without a cursor)."""
        if token is not None:
            if token in self._followed:
                raise PaginationStopped(
                    "the provider handed back a page cursor already followed in this run; stopped rather than "
                    "loop, the next run resumes after the last page stored"
                )
            self._followed.add(token)
        self.budget.spend()

    def fetching(self, fetch: Callable[[Token | None], Awaitable[Body]]) -> Callable[[Token | None], Awaitable[Body]]:
        """`fetch`, refused past the budget or for a repeated cursor when it is awaited: a page already in
        hand is still handed over before the refusal."""

        async def guarded(token: Token | None) -> Body:
            self.follow(token)
            return await fetch(token)

        return guarded
