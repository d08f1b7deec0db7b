"""One kind of object of one account, in creation order: what the list endpoints page through.

Stripe lists newest first with `starting_after`/`ending_before` cursors naming an object. Each object keeps
its position in creation order, so a page costs what it returns (plus what filters skip), never the size of
the collection. Ids sort in creation order too (`new_id`), as the creation order is what a list shows.
"""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# Base 62 in ASCII order, so that string order of ids is numeric order of their serials.
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SERIAL_WIDTH = 8  # 62**8: more objects than any sandbox holds
_SUFFIX_WIDTH = 6
_NOISE_POOL = 1021  # a prime: the noise of consecutive ids does not repeat with any short period


_PAIRS = tuple(a + b for a in _DIGITS for b in _DIGITS)  # ids are made by the hundred thousand: two digits a step


def base62(number: int, width: int) -> str:
    """`number` in `width` base-62 digits, most significant first; higher digits are dropped."""
    pairs = []
    for _ in range((width + 1) // 2):
        number, pair = divmod(number, 3844)
        pairs.append(_PAIRS[pair])
    pairs.reverse()
    return "".join(pairs)[-width:]


class IdMaker:
    """Ids of one prefix (`cus_`, `in_`, ...): a serial in base 62 then random-looking characters, so they look
    like Stripe's, never repeat, and sort in creation order."""

    def __init__(self, prefix: str, salt: int) -> None:
        self.prefix = prefix
        self._serial = 0
        self._high = -1
        self._high_digits = ""
        rng = random.Random(f"{prefix}{salt}")
        self._noise = tuple(base62(rng.getrandbits(36), _SUFFIX_WIDTH) for _ in range(_NOISE_POOL))
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._serial += 1
            serial = self._serial
            high, low = divmod(serial, len(_PAIRS))
            if high != self._high:
                self._high, self._high_digits = high, base62(high, _SERIAL_WIDTH - 2)
            return self.prefix + self._high_digits + _PAIRS[low] + self._noise[serial % _NOISE_POOL]


Match = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Window:
    """Which part of a list is asked for: `created` bounds (inclusive, in seconds) and a cursor."""

    created_from: int | None = None
    created_to: int | None = None
    starting_after: str | None = None
    ending_before: str | None = None


class Collection:
    """Objects of one kind by id, in creation order. Deleted objects keep their place (a cursor may name one) but
    no list shows them."""

    def __init__(self, kind: str, time_field: str = "created") -> None:
        self.kind = kind  # the word Stripe's errors use: "customer", "invoice", ...
        self.time_field = time_field  # what `created` filters read (an invoice item's is `date`)
        self.objects: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._created: list[int] = []
        self._position: dict[str, int] = {}
        self.deleted: set[str] = set()
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.objects) - len(self.deleted)

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Append a new object; its `created` is raised to the latest one's so creation order stays sorted."""
        with self.lock:
            if self._created and obj[self.time_field] < self._created[-1]:
                obj[self.time_field] = self._created[-1]
            self._position[obj["id"]] = len(self._order)
            self._order.append(obj["id"])
            self._created.append(obj[self.time_field])
            self.objects[obj["id"]] = obj
        return obj

    def get(self, object_id: str) -> dict[str, Any] | None:
        """A live object (None when unknown or deleted)."""
        return None if object_id in self.deleted else self.objects.get(object_id)

    def delete(self, object_id: str) -> None:
        self.deleted.add(object_id)

    def live(self) -> Iterator[dict[str, Any]]:
        """Every live object, oldest first."""
        return (self.objects[i] for i in self._order if i not in self.deleted)

    def page(self, window: Window, limit: int, match: Match | None = None, oldest: int = 0) -> tuple[list[str], bool]:
        """Up to `limit` ids newest first within `window`, and whether more follow in the direction of paging.
        Objects before position `oldest` are out of reach (e.g. events past their retention)."""
        with self.lock:
            low = max(oldest, self._bound(window.created_from, left=True))
            high = self._bound(window.created_to, left=False)  # one past the newest in range
            if window.ending_before is not None:
                found = self._position_of(window.ending_before, low)
                ids, more = self._walk(max(found + 1, low), high, 1, limit, match)
                return list(reversed(ids)), more
            if window.starting_after is not None:
                high = min(high, self._position_of(window.starting_after, low))
            return self._walk(high - 1, low - 1, -1, limit, match)

    def position(self, object_id: str) -> int | None:
        return self._position.get(object_id)

    def first_at_or_after(self, created: int) -> int:
        """The position of the oldest object created at `created` or later."""
        return bisect.bisect_left(self._created, created)

    def _bound(self, created: int | None, *, left: bool) -> int:
        if created is None:
            return 0 if left else len(self._order)
        return bisect.bisect_left(self._created, created) if left else bisect.bisect_right(self._created, created)

    def _position_of(self, object_id: str, oldest: int) -> int:
        found = self._position.get(object_id)
        if found is None or found < oldest:
            raise KeyError(object_id)
        return found

    def _walk(self, start: int, stop: int, step: int, limit: int, match: Match | None) -> tuple[list[str], bool]:
        ids: list[str] = []
        for index in range(start, stop, step):
            object_id = self._order[index]
            if object_id in self.deleted or (match is not None and not match(self.objects[object_id])):
                continue
            if len(ids) == limit:
                return ids, True
            ids.append(object_id)
        return ids, False
