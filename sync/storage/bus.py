"""In-process wake-ups for readers of the change log."""

from __future__ import annotations

import asyncio
import contextlib


class ChangeBus:
    """In-process wake-ups for readers of the log: `wait` returns when something may have been appended."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ticket(self) -> asyncio.Event:
        """Take one before reading the log; waiting on it then cannot miss an append made meanwhile."""
        return self._event

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    @staticmethod
    async def wait(ticket: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), timeout)
