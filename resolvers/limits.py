"""What one caller may ask of this process: the limits on a GraphQL document and its inputs, and the
per-key budgets (requests, cost, open subscriptions) that keep one key from starving the others.

Budgets live in this process's memory: with several gateway processes each keeps its own, so a key
gets up to that many times the budget in total.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from connectors.kit.errors import BadInput, XkitError


@dataclass(frozen=True)
class RequestLimits:
    """Ceilings on one GraphQL document and its inputs (see the README's "Limits on what callers send")."""

    max_tokens: int
    max_aliases: int
    max_depth: int
    max_operations: int
    max_string_length: int
    max_list_length: int
    max_cost: int


class LimitExceeded(XkitError):
    """A request over one of the limits; `extensions.limit` names it and `extensions.max` gives its value."""

    def __init__(self, message: str, *, limit: str, maximum: float | None, **extensions: Any) -> None:
        super().__init__(message, limit=limit, max=maximum, **extensions)
        self.limit = limit


class QueryTooComplex(LimitExceeded):
    code = "QUERY_TOO_COMPLEX"


class InputTooLarge(LimitExceeded):
    code = "INPUT_TOO_LARGE"


class OverBudget(LimitExceeded):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, limit: str, maximum: float, retry_after: float) -> None:
        super().__init__(message, limit=limit, maximum=maximum, retryAfterSeconds=math.ceil(retry_after))
        self.retry_after = retry_after


def check_input_values(value: object, limits: RequestLimits, path: str = "variables") -> None:
    """Refuse over-long strings and lists and NUL characters (which PostgreSQL cannot store in text) in
    the variables of a request, at any depth."""
    if isinstance(value, str):
        check_text(value, limits, path)
    elif isinstance(value, list):
        if len(value) > limits.max_list_length:
            raise InputTooLarge(
                f"{path} has {len(value)} items, more than the {limits.max_list_length} allowed",
                limit="listLength",
                maximum=limits.max_list_length,
            )
        for index, item in enumerate(value):
            check_input_values(item, limits, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), limits, path)
            check_input_values(item, limits, f"{path}.{key}")


def check_text(text: str, limits: RequestLimits, path: str) -> None:
    if len(text) > limits.max_string_length:
        raise InputTooLarge(
            f"{path} is {len(text)} characters long, more than the {limits.max_string_length} allowed",
            limit="stringLength",
            maximum=limits.max_string_length,
        )
    if "\x00" in text:
        raise BadInput(f"{path} contains a NUL character, which text cannot hold", field=path)


class KeyedBuckets:
    """A token bucket per key: `capacity` at most, refilled at `per_second`. Only the `max_keys` most
    recently used keys are remembered; a forgotten key starts again with a full bucket, so the bound
    on memory can only ever make the limit more lenient, never refuse a key wrongly."""

    def __init__(
        self,
        capacity: float,
        per_second: float,
        *,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self.max_keys = max_keys
        self._clock = clock
        self._levels: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def take(self, key: Hashable, amount: float = 1.0) -> float:
        """Take `amount` from the key's bucket and return 0, or take nothing and return the seconds until
        the bucket will hold `amount`."""
        now = self._clock()
        level, then = self._levels.pop(key, (self.capacity, now))
        level = min(self.capacity, level + (now - then) * self.per_second)
        # A take larger than the whole bucket is granted from a full one and leaves a debt, so no amount
        # is refused for ever.
        needed = min(amount, self.capacity)
        wait = 0.0 if level >= needed else (needed - level) / self.per_second
        self._levels[key] = (level - amount if wait == 0.0 else level, now)
        if len(self._levels) > self.max_keys:
            self._levels.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._levels)


class SubscriptionSlots:
    """How many subscriptions each key holds open in this process, at most `per_key`."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._held: dict[Hashable, int] = {}

    @contextlib.contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        held = self._held.get(key, 0)
        if held >= self.per_key:
            raise OverBudget(
                f"this key already holds {held} open subscriptions, the most allowed; close one first",
                limit="subscriptions",
                maximum=self.per_key,
                retry_after=1.0,
            )
        self._held[key] = held + 1
        try:
            yield
        finally:
            remaining = self._held[key] - 1
            if remaining:
                self._held[key] = remaining
            else:
                del self._held[key]

    def held(self, key: Hashable) -> int:
        return self._held.get(key, 0)
