"""Relay's cursor connections over keyset paging: which slice of a list a request asks for, and the page.

A list is ordered by a keyset (a time and an id that breaks ties, or an id alone). A page is read with
one indexed query of at most `size + 1` rows: the extra row says whether more lie beyond the page in the
direction of travel. Whether edges lie on the other side of the cursor the client started from costs one
more query of one row, run only when the client asks for that flag.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.sql.elements import ColumnElement

from connectors.kit.errors import BadInput
from resolvers.ids import CursorCodec, Position

if TYPE_CHECKING:
    from resolvers.context import Caller

T = TypeVar("T")

MAX_PAGE = 100
DEFAULT_PAGE = 50


@dataclass(frozen=True)
class PageRequest:
    """The connection arguments as given: `first`/`after` reads forward, `last`/`before` backward.

    `wants_next`/`wants_previous`: whether the client selected `pageInfo.hasNextPage`/`hasPreviousPage`;
    a flag nobody reads is not worth a query.
    """

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None
    wants_next: bool = True
    wants_previous: bool = True

    @property
    def backward(self) -> bool:
        return self.last is not None

    @property
    def size(self) -> int:
        """The page size, after `check` has accepted the request."""
        if self.last is not None:
            return self.last
        return DEFAULT_PAGE if self.first is None else self.first

    def check(self, maximum: int = MAX_PAGE) -> None:
        if self.first is not None and self.last is not None:
            raise BadInput(
                "pass first (with after) to read forward or last (with before) to read backward, not both",
                field="last",
            )
        for name, value in (("first", self.first), ("last", self.last)):
            if value is not None and not 0 <= value <= maximum:
                raise BadInput(f"{name} must be between 0 and {maximum}, got {value}", field=name)


@dataclass(frozen=True)
class Bounds:
    """The decoded cursors of a request: the page lies strictly after `after` and strictly before `before`."""

    after: Position | None
    before: Position | None


@dataclass(frozen=True)
class PageOf(Generic[T]):
    edges: list[tuple[str, T]]
    has_next_page: bool
    has_previous_page: bool = False

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0][0] if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1][0] if self.edges else None


def decode_bounds(codec: CursorCodec, scope: str, request: PageRequest, valid: Callable[[Position], bool]) -> Bounds:
    """The request's cursors, checked: signed by us, for this list and ordering, of this list's key shape."""

    def decode(cursor: str | None, field: str) -> Position | None:
        if cursor is None:
            return None
        position = codec.decode(scope, cursor, field=field)
        if not valid(position):
            raise BadInput("the cursor belongs to another list", field=field)
        return position

    return Bounds(decode(request.after, "after"), decode(request.before, "before"))


@dataclass(frozen=True)
class Keyset:
    """How a list is ordered: by `columns` (a time then an id, or an id alone), newest or oldest first."""

    columns: tuple[ColumnElement[Any], ...]
    descending: bool

    def values(self, position: Position) -> tuple[Any, ...]:
        return (position.updated_at, position.key) if len(self.columns) == 2 else (position.key,)

    def beyond(self, values: Sequence[Any], *, inclusive: bool = False) -> ColumnElement[bool]:
        """Rows later in the list than the position `values` (or at it, when inclusive)."""
        return _compare(self.columns, values, greater=not self.descending, inclusive=inclusive)

    def short_of(self, values: Sequence[Any], *, inclusive: bool = False) -> ColumnElement[bool]:
        """Rows earlier in the list than the position `values` (or at it, when inclusive)."""
        return _compare(self.columns, values, greater=self.descending, inclusive=inclusive)

    def order(self, *, backward: bool) -> list[ColumnElement[Any]]:
        descending = self.descending != backward
        return [column.desc() if descending else column.asc() for column in self.columns]

    def window(self, after: Sequence[Any] | None, before: Sequence[Any] | None) -> list[ColumnElement[bool]]:
        conditions = []
        if after is not None:
            conditions.append(self.beyond(after))
        if before is not None:
            conditions.append(self.short_of(before))
        return conditions


def _compare(
    columns: Sequence[ColumnElement[Any]], values: Sequence[Any], *, greater: bool, inclusive: bool
) -> ColumnElement[bool]:
    """(columns) > (values) lexicographically (or <, or with equality), written so an index serves it."""
    column, value = columns[-1], values[-1]
    condition: ColumnElement[bool]
    if greater:
        condition = column >= value if inclusive else column > value
    else:
        condition = column <= value if inclusive else column < value
    for column, value in zip(reversed(columns[:-1]), reversed(values[:-1]), strict=True):
        strict: ColumnElement[bool] = column > value if greater else column < value
        condition = or_(strict, and_(column == value, condition))
    return condition


def settle(request: PageRequest, rows: list[T], cursor: Callable[[T], str]) -> tuple[list[tuple[str, T]], bool]:
    """The page's edges in list order from `size + 1` rows read in the direction of travel, and whether
    rows lie beyond the page in that direction."""
    size = request.size
    overflow = len(rows) > size
    rows = rows[:size]
    if request.backward:
        rows.reverse()
    return [(cursor(row), row) for row in rows], overflow


@dataclass(frozen=True)
class Probes:
    """Which sides of a page still need a query to say whether edges lie there."""

    next_at: Position | None
    previous_at: Position | None


def probes(request: PageRequest, bounds: Bounds, overflow: bool) -> Probes:
    """The page's own read says whether edges lie beyond it in the direction of travel. Edges at or short
    of `after`, or at or past `before`, take a query of one row: only for a flag the client selected and
    the read did not already settle."""
    if request.backward:
        next_at = bounds.before if request.wants_next else None
        previous_at = bounds.after if request.wants_previous and not overflow else None
    else:
        next_at = bounds.before if request.wants_next and not overflow else None
        previous_at = bounds.after if request.wants_previous else None
    return Probes(next_at, previous_at)


def page(
    request: PageRequest, edges: list[tuple[str, T]], overflow: bool, beyond_next: bool, beyond_previous: bool
) -> PageOf[T]:
    if request.backward:
        return PageOf(edges, has_next_page=beyond_next, has_previous_page=overflow or beyond_previous)
    return PageOf(edges, has_next_page=overflow or beyond_next, has_previous_page=beyond_previous)


async def keyset_page(
    caller: Caller,
    statement: Select[Any],
    keyset: Keyset,
    scope: str,
    request: PageRequest,
    position_of: Callable[[Any], Position],
    parse_key: Callable[[Any], Any],
) -> PageOf[Any]:
    """One page of `statement` (its filters and columns; ordering and limits are added here)."""
    request.check()
    codec = caller.services.cursors

    def valid(position: Position) -> bool:
        if (position.updated_at is None) != (len(keyset.columns) == 1):
            return False
        try:
            parse_key(position.key)
        except (ValueError, TypeError):
            return False
        return True

    bounds = decode_bounds(codec, scope, request, valid)

    def values(position: Position | None) -> tuple[Any, ...] | None:
        if position is None:
            return None
        return (*keyset.values(position)[:-1], parse_key(position.key))

    window = keyset.window(values(bounds.after), values(bounds.before))
    read = statement.where(*window).order_by(*keyset.order(backward=request.backward)).limit(request.size + 1)
    async with caller.store.reader.connect() as conn:
        rows = list((await conn.execute(read)).all())
        edges, overflow = settle(request, rows, lambda row: codec.encode(scope, position_of(row)))
        needed = probes(request, bounds, overflow)
        beyond_next = beyond_previous = False
        if (at := values(needed.next_at)) is not None:
            probe = statement.where(keyset.beyond(at, inclusive=True)).limit(1)
            beyond_next = (await conn.execute(probe)).first() is not None
        if (at := values(needed.previous_at)) is not None:
            probe = statement.where(keyset.short_of(at, inclusive=True)).limit(1)
            beyond_previous = (await conn.execute(probe)).first() is not None
    return page(request, edges, overflow, beyond_next, beyond_previous)


def int_key(key: Any) -> int:
    if not isinstance(key, int):
        raise ValueError(key)
    return key


def uuid_key(key: Any) -> uuid.UUID:
    return uuid.UUID(str(key))


def time_and_id(time: str, ident: str = "id") -> Callable[[Any], Position]:
    def position(row: Any) -> Position:
        stamp: datetime = getattr(row, time)
        key = getattr(row, ident)
        return Position(stamp, key if isinstance(key, int) else str(key))

    return position


def id_only(row: Any) -> Position:
    return Position(None, row.id)
