"""Pieces every provider sandbox needs besides the HTTP machinery in connectors/kit/sandbox.py:
strictly increasing write times, fast timestamp rendering, seeded sample data (its time span, draws,
company domains), and the `/_sandbox/` control routes."""

from __future__ import annotations

import functools
import html
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import httpx2
import orjson
from faker import Faker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class WriteClock:
    """Hands out write timestamps that strictly increase, so two writes in the same millisecond still
    order correctly by their modification time."""

    def __init__(self, floor_ms: int = 0) -> None:
        self._last = floor_ms
        self._lock = threading.Lock()

    def next_ms(self) -> int:
        with self._lock:
            self._last = max(int(time.time() * 1000), self._last + 1)
            return self._last


def ms_of(year: int, month: int, day: int) -> int:
    """Epoch milliseconds of a UTC midnight."""
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


DAY_MS = 86_400_000
# Every sandbox seeds records created and modified within these two years (epoch milliseconds).
SEED_START_MS = ms_of(2024, 1, 1)
SEED_END_MS = ms_of(2026, 1, 1)

_T = TypeVar("_T")


class Seeder:
    """The random draws a sandbox's seed makes: the same seed always draws the same values."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, options: Sequence[_T]) -> _T:
        # random.choice is exact but slow; a float index is uniform enough for sample data.
        return options[int(self.rng.random() * len(options))]

    def maybe(self, chance: float, options: Sequence[_T]) -> _T | None:
        """One of `options` with probability `chance`, otherwise None."""
        return self.pick(options) if self.rng.random() < chance else None


def slug(text: str) -> str:
    """Lowercase letters and digits only, for sample email addresses and domains."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


# Bounded in practice: a sandbox's timestamps span a few thousand days at most.
_DAY_PREFIXES: dict[int, str] = {}
_CLOCK = tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))


def iso_day(epoch_seconds: int) -> str:
    """The UTC date as `YYYY-MM-DD`, four-digit years included (strftime's %Y leaves years before 1000
    unpadded, which no ISO 8601 reader takes)."""
    day = time.gmtime(epoch_seconds)
    return f"{day.tm_year:04d}-{day.tm_mon:02d}-{day.tm_mday:02d}"


def millis_formatter(zone_suffix: str) -> Callable[[int], str]:
    """Render epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmm<zone_suffix>` in UTC.

    Seeding renders hundreds of thousands of these, so it is table lookups: the date part once per day,
    the clock and the milliseconds from precomputed strings."""
    millis_parts = tuple(f".{m:03d}{zone_suffix}" for m in range(1000))

    def render(ms: int) -> str:
        seconds, millis = divmod(ms, 1000)
        day, second_of_day = divmod(seconds, 86_400)
        prefix = _DAY_PREFIXES.get(day)
        if prefix is None:
            prefix = _DAY_PREFIXES[day] = iso_day(day * 86_400) + "T"
        return prefix + _CLOCK[second_of_day] + millis_parts[millis]

    return render


_DOMAIN_NOISE = {"and", "inc", "llc", "ltd", "plc", "group", "the"}


def domain_for(name: str, tld: str, taken: set[str]) -> str:
    """A plausible, unique domain for a company name ("Pearson and Sons" -> "pearsonsons.com")."""
    words = [w for w in re.findall(r"[a-z0-9]+", name.lower()) if w not in _DOMAIN_NOISE] or ["company"]
    stem = "".join(words[:3])
    domain = f"{stem}.{tld}"
    suffix = 2
    while domain in taken:
        domain = f"{stem}{suffix}.{tld}"
        suffix += 1
    taken.add(domain)
    return domain


class Controllable(Protocol):
    """What the `/_sandbox/` routes drive."""

    @property
    def faults(self) -> Any: ...

    def mint_tokens(self, scopes: Sequence[str] | None = None) -> dict[str, Any]: ...

    def control_stats(self) -> dict[str, Any]: ...


class ControlRoutes:
    """`/_sandbox/`: the HTTP twin of a sandbox's Python control API, for tools in another process."""

    def __init__(self, sandbox: Controllable, expire_route: str, expire: Callable[[], int]) -> None:
        self.sandbox = sandbox
        self.expire_route = expire_route
        self.expire = expire

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/faults", self.get_faults, methods=["GET"]),
            Route("/_sandbox/faults", self.patch_faults, methods=["PATCH"]),
            Route("/_sandbox/tokens", self.mint_tokens, methods=["POST"]),
            Route("/_sandbox/stats", self.get_stats, methods=["GET"]),
            Route(f"/_sandbox/{self.expire_route}", self.expire_credentials, methods=["POST"]),
        ]

    async def get_faults(self, request: Request) -> Response:
        return json_response(self.sandbox.faults.as_dict())

    async def patch_faults(self, request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of knob names to values")
            self.sandbox.faults.update(changes)
        except (orjson.JSONDecodeError, ValueError) as problem:
            return json_response({"message": str(problem)}, 400)
        return json_response(self.sandbox.faults.as_dict())

    async def mint_tokens(self, request: Request) -> Response:
        raw = await request.body()
        try:
            scopes = orjson.loads(raw).get("scopes") if raw.strip() else None
        except (orjson.JSONDecodeError, AttributeError):
            return json_response({"message": 'send nothing, or {"scopes": [...]}'}, 400)
        return json_response(self.sandbox.mint_tokens(scopes))

    async def get_stats(self, request: Request) -> Response:
        return json_response(self.sandbox.control_stats())

    async def expire_credentials(self, request: Request) -> Response:
        return json_response({"expired": self.expire()})


@dataclass(frozen=True)
class NamePools:
    """Realistic names to combine with a seeded random: Faker runs once per seed, not once per record."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    companies: tuple[str, ...]
    cities: tuple[str, ...]
    job_titles: tuple[str, ...]


@functools.lru_cache(maxsize=8)
def name_pools(seed: int, company_pool_size: int) -> NamePools:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    # Sets are sorted before use: string hashing is salted per process, set order is not.
    return NamePools(
        first_names=tuple(sorted({fake.first_name() for _ in range(600)})),
        last_names=tuple(sorted({fake.last_name() for _ in range(600)})),
        companies=tuple(sorted({fake.company() for _ in range(company_pool_size)})),
        cities=tuple(sorted({fake.city() for _ in range(250)})),
        job_titles=tuple(sorted({fake.job() for _ in range(300)})),
    )


COMPANY_SUFFIXES = ("Holdings", "Labs", "Partners", "International", "Systems", "Group")


def unique_company_names(pool: tuple[str, ...], count: int) -> list[str]:
    """`count` distinct names: the pool first, then the pool again with suffixes ("Acme Labs", ...)."""
    names: list[str] = []
    seen: set[str] = set()
    index = 0
    while len(names) < count:
        name = pool[index % len(pool)]
        round_number = index // len(pool)
        if round_number:
            cycle, suffix = divmod(round_number - 1, len(COMPANY_SUFFIXES))
            name = f"{name} {COMPANY_SUFFIXES[suffix]}" + (f" {cycle + 1}" if cycle else "")
        index += 1
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


@dataclass(frozen=True)
class ConsentLook:
    """How a sandbox's consent page looks: the provider's colours, its words for the two buttons, and
    the line that says no real account is involved."""

    footer: str
    approve: str  # the approving button's value and class, e.g. "approve" or "allow"
    colours: tuple[str, str, str, str]  # background, text, accent (the approving button), borders


def consent_page(look: ConsentLook, title: str, body: str) -> str:
    background, text, accent, border = look.colours
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
  body {{ background: {background}; color: {text}; font: 15px/1.5 system-ui, sans-serif;
         max-width: 34rem; margin: 4rem auto; padding: 0 1rem; }}
  h1 {{ font-size: 1.3rem; }}
  button {{ font: inherit; padding: .5rem 1.2rem; margin-right: .5rem; border-radius: 4px; cursor: pointer; }}
  .{look.approve} {{ background: {accent}; color: #fff; border: 1px solid {accent}; }}
  .deny {{ background: #fff; color: {text}; border: 1px solid {border}; }}
</style></head>
<body><h1>{html.escape(title)}</h1>{body}
<p><small>{html.escape(look.footer)}</small></p></body></html>"""


def consent_form(look: ConsentLook, intro: str, scopes: Sequence[str], action: str, fields: dict[str, str]) -> str:
    """The approval form: `intro` (HTML, already escaped), the scopes asked for, and the authorize request's
    fields carried over as hidden inputs to the decision POST at `action`."""
    scope_items = "".join(f"<li><code>{html.escape(scope)}</code></li>" for scope in scopes) or "<li>(no scopes)</li>"
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value, quote=True)}">'
        for name, value in fields.items()
    )
    label = look.approve.capitalize()
    return f"""
<p>{intro}</p>
<ul>{scope_items}</ul>
<form method="post" action="{html.escape(action, quote=True)}">{hidden}
  <button type="submit" name="decision" value="{look.approve}" class="{look.approve}">{label}</button>
  <button type="submit" name="decision" value="deny" class="deny">Deny</button>
</form>"""


Item = TypeVar("Item")


class DeliveryQueue(Generic[Item]):
    """A sandbox's outgoing webhook deliveries, posted in order on one background thread (started at the first
    delivery) with one HTTP client: `deliver(client, item)` posts one, retrying as its provider does."""

    def __init__(self, deliver: Callable[[httpx2.Client, Item], None], *, thread_name: str) -> None:
        self._deliver = deliver
        self._thread_name = thread_name
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, item: Item) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True, name=self._thread_name)
                self._thread.start()
        self._queue.put(item)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued delivery is done; False when `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=5.0)

    def _run(self) -> None:
        with httpx2.Client(timeout=10.0) as client:
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    self._deliver(client, item)
                finally:
                    self._queue.task_done()
