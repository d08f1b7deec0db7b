"""The CRM search request: filter groups, operators, sorts and HubSpot's limits."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.hubspot.sandbox.errors import validation_error
from connectors.hubspot.sandbox.schema import ObjectType, PropertyDef
from connectors.hubspot.sandbox.store import ObjectStore, Record, property_value
from connectors.hubspot.sandbox.timestamps import parse_instant

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
MAX_RESULTS = 10_000
MAX_QUERY_LENGTH = 3000

# The fields of HubSpot's PublicObjectSearchRequest, Filter and FilterGroup (spec). Anything else is
# refused rather than ignored, so a misspelt key never silently widens a search.
REQUEST_KEYS = frozenset({"filterGroups", "sorts", "query", "properties", "limit", "after"})
GROUP_KEYS = frozenset({"filters"})
FILTER_KEYS = frozenset({"propertyName", "operator", "value", "highValue", "values"})

# What `query` searches: each object's default searchable properties, from HubSpot's search guide
# (contacts, companies and deals as listed there; notes, tasks and tickets search their text).
SEARCHABLE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": (
        "firstname",
        "lastname",
        "email",
        "phone",
        "hs_additional_emails",
        "fax",
        "mobilephone",
        "company",
        "hs_marketable_until_renewal",
    ),
    "companies": ("website", "phone", "name", "domain"),
    "deals": ("dealname", "pipeline", "dealstage", "description", "dealtype"),
    "notes": ("hs_note_body",),
    "tasks": ("hs_task_subject", "hs_task_body"),
    "tickets": ("subject", "content", "hs_pipeline_stage"),
}

VALUE_OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
OPERATORS = VALUE_OPERATORS | {"BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
_TOKEN_SPLIT = re.compile(r"[\s,;.:@/\-_()]+")
Comparable = float | int | str


@dataclass(frozen=True)
class Filter:
    property_name: str
    operator: str
    value: str | None = None
    high_value: str | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sort:
    property_name: str
    descending: bool


@dataclass(frozen=True)
class SearchRequest:
    groups: tuple[tuple[Filter, ...], ...]
    sorts: tuple[Sort, ...]
    properties: tuple[str, ...] | None
    limit: int
    offset: int
    query: str | None = None


def parse_search(body: Any) -> SearchRequest:
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: expected an object")
    _refuse_unknown_keys(body, REQUEST_KEYS)
    groups = tuple(tuple(_parse_filter(f) for f in _filters_of(group)) for group in _list(body, "filterGroups"))
    if len(groups) > MAX_GROUPS:
        raise validation_error(f"Too many filter groups: {len(groups)}. The limit is {MAX_GROUPS}.")
    for group in groups:
        if len(group) > MAX_FILTERS_PER_GROUP:
            raise validation_error(f"Too many filters in a group: {len(group)}. The limit is {MAX_FILTERS_PER_GROUP}.")
    total_filters = sum(len(group) for group in groups)
    if total_filters > MAX_FILTERS:
        raise validation_error(f"Too many filters: {total_filters}. The limit is {MAX_FILTERS} across all groups.")
    limit = _int(10 if body.get("limit") is None else body["limit"], "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise validation_error(f"limit must be between 1 and {MAX_LIMIT}, was {limit}")
    offset = _int(body.get("after") or 0, "after")
    if offset < 0:
        raise validation_error("after must not be negative")
    if offset >= MAX_RESULTS:
        raise validation_error(
            f"Paging past the first {MAX_RESULTS} results is not supported: after={offset}. "
            "Narrow the query, for example with a GTE filter on the last modified date."
        )
    properties = body.get("properties")
    if properties is not None and not (isinstance(properties, list) and all(isinstance(p, str) for p in properties)):
        raise validation_error("properties must be a list of property names")
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise _wrong_type("query", "a string", query)
    if query is not None and len(query) > MAX_QUERY_LENGTH:
        raise validation_error(f"query is {len(query)} characters long; the limit is {MAX_QUERY_LENGTH}.")
    return SearchRequest(
        groups=groups,
        sorts=tuple(_parse_sort(s) for s in _list(body, "sorts")),
        properties=tuple(properties) if properties is not None else None,
        limit=limit,
        offset=offset,
        query=query.strip() or None if query is not None else None,
    )


def _refuse_unknown_keys(raw: dict[str, Any], known: frozenset[str]) -> None:
    for key in raw:
        if key not in known:
            # HubSpot's JSON reader (Jackson) names the field it does not know.
            raise validation_error(
                f'Invalid input JSON: Unrecognized field "{key}", not marked as ignorable '
                f"(known fields: {', '.join(sorted(known))})"
            )


def _wrong_type(name: str, expected: str, value: Any) -> Exception:
    return validation_error(
        f"Invalid input JSON: Cannot deserialize {name}: expected {expected}, got {type(value).__name__} {value!r}"
    )


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong_type(key, "a list", value)
    return value


def _filters_of(group: Any) -> list[Any]:
    if not isinstance(group, dict):
        raise validation_error("each filter group must be an object with a filters list")
    _refuse_unknown_keys(group, GROUP_KEYS)
    return _list(group, "filters")


def _int(value: Any, name: str) -> int:
    """An integer, or a string of digits (as HubSpot reads `after`); booleans and fractions are refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise validation_error(f"{name} must be an integer, was {value!r}")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_filter(raw: Any) -> Filter:
    if not isinstance(raw, dict) or not isinstance(raw.get("propertyName"), str):
        raise validation_error("each filter needs a propertyName")
    _refuse_unknown_keys(raw, FILTER_KEYS)
    operator = str(raw.get("operator", "EQ")).upper()
    if operator not in OPERATORS:
        raise validation_error(f"Unknown filter operator {operator!r}; expected one of {', '.join(sorted(OPERATORS))}")
    for key in ("value", "highValue"):
        if isinstance(raw.get(key), dict | list):
            raise _wrong_type(key, "a string", raw[key])
    value, high_value = _text(raw.get("value")), _text(raw.get("highValue"))
    values = raw.get("values") or []
    if not isinstance(values, list):
        raise _wrong_type("values", "a list", values)
    if operator in VALUE_OPERATORS and value is None:
        raise validation_error(f"operator {operator} requires a value")
    if operator == "BETWEEN" and (value is None or high_value is None):
        raise validation_error("operator BETWEEN requires value and highValue")
    if operator in ("IN", "NOT_IN") and not (isinstance(values, list) and values):
        raise validation_error(f"operator {operator} requires a non-empty values list")
    return Filter(raw["propertyName"], operator, value, high_value, tuple(str(_text(v)) for v in values))


def _parse_sort(raw: Any) -> Sort:
    # The spec types sorts as strings; clients send {propertyName, direction}. Both are accepted.
    if isinstance(raw, str):
        return Sort(raw.lstrip("-"), raw.startswith("-"))
    if isinstance(raw, dict) and isinstance(raw.get("propertyName"), str):
        direction = str(raw.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise validation_error(f"sort direction must be ASCENDING or DESCENDING, was {direction!r}")
        return Sort(raw["propertyName"], direction == "DESCENDING")
    raise validation_error("each sort is a property name or {propertyName, direction}")


class _Matcher:
    """One filter compiled against one object type: filter values are parsed once, and the
    system dates compare as the integers they are stored as."""

    def __init__(self, object_type: ObjectType, definitions: Mapping[str, PropertyDef], flt: Filter) -> None:
        self.object_type = object_type
        self.filter = flt
        self.key = comparison_key(definitions.get(flt.property_name))
        self.timestamp_field = {
            object_type.created_property: "created_ms",
            object_type.modified_property: "updated_ms",
        }.get(flt.property_name)
        self.target = self.key(flt.value) if flt.value is not None else None
        self.high = self.key(flt.high_value) if flt.high_value is not None else None
        self.choices = {self.key(v) for v in flt.values}

    def __call__(self, record: Record) -> bool:
        op = self.filter.operator
        raw = property_value(self.object_type, record, self.filter.property_name)
        if op == "HAS_PROPERTY":
            return raw is not None
        if op == "NOT_HAS_PROPERTY":
            return raw is None
        if op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN"):
            return raw is None or not self._positive(record, raw)
        return raw is not None and self._positive(record, raw)

    def _positive(self, record: Record, raw: str) -> bool:
        op = self.filter.operator
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            return _contains_token(raw, str(self.filter.value))
        value: Comparable = getattr(record, self.timestamp_field) if self.timestamp_field else self.key(raw)
        if op in ("IN", "NOT_IN"):
            return value in self.choices
        if op in ("EQ", "NEQ"):
            return value == self.target
        if op == "BETWEEN":
            return _ordered(self.target, value) and _ordered(value, self.high)
        if op == "LT":
            return _ordered(value, self.target) and value != self.target
        if op == "LTE":
            return _ordered(value, self.target)
        if op == "GT":
            return _ordered(self.target, value) and value != self.target
        return _ordered(self.target, value)


def _matches_query(object_type: ObjectType, record: Record, query: str) -> bool:
    """HubSpot's guide: `query` finds records whose default searchable properties contain the string."""
    needle = query.lower()
    for name in SEARCHABLE_PROPERTIES.get(object_type.name, ()):
        value = property_value(object_type, record, name)
        if value is not None and needle in value.lower():
            return True
    return False


def _ordered(low: Comparable | None, high: Comparable | None) -> bool:
    """low <= high, and False when the two cannot be compared (a number against text)."""
    if low is None or high is None:
        return False
    if isinstance(low, str) != isinstance(high, str):
        return False
    return low <= high  # type: ignore[operator]


def _contains_token(raw: str, pattern: str) -> bool:
    needle = pattern.lower()
    haystack = raw.lower()
    tokens = [t for t in _TOKEN_SPLIT.split(haystack) if t]
    if "*" in needle:
        return fnmatch.fnmatchcase(haystack, needle) or any(fnmatch.fnmatchcase(t, needle) for t in tokens)
    return needle == haystack or needle in tokens


def comparison_key(definition: PropertyDef | None) -> Callable[[str], Comparable]:
    """How values of a property compare: dates as instants, numbers numerically, the rest as
    case-insensitive text. A value that does not parse falls back to text."""
    kind = definition.type if definition else "string"
    if kind in ("date", "datetime"):

        def instant(raw: str) -> Comparable:
            ms = parse_instant(raw)
            return raw.lower() if ms is None else ms

        return instant
    if kind == "number":

        def number(raw: str) -> Comparable:
            try:
                return float(raw)
            except ValueError:
                return raw.lower()

        return number
    return str.lower


def execute(
    store: ObjectStore, definitions: Mapping[str, PropertyDef], request: SearchRequest
) -> tuple[int, list[Record]]:
    """All matches' count, and the requested page of them; `definitions` are the portal's properties of
    the store's object type, which say how each filter and sort compares values."""
    object_type = store.object_type
    candidates, presorted, consumed = _candidates(store, request)
    groups = [[_Matcher(object_type, definitions, f) for f in group if f not in consumed] for group in request.groups]
    if any(groups):
        matches = [r for r in candidates if any(all(m(r) for m in group) for group in groups)]
    else:
        matches = list(candidates)
    if request.query is not None:
        matches = [r for r in matches if _matches_query(object_type, r, request.query)]
    if not presorted:
        matches = _sorted(object_type, definitions, matches, request.sorts)
    return len(matches), matches[request.offset : request.offset + request.limit]


def _candidates(store: ObjectStore, request: SearchRequest) -> tuple[Iterable[Record], bool, set[Filter]]:
    """Narrow a single-group search by its modified-date range through the index, the shape of
    every incremental sync. Returns the candidates, whether they are already in the requested
    order, and the filters the narrowing has fully applied."""
    modified = store.object_type.modified_property
    if len(request.groups) != 1:
        return store.active(), False, set()
    low: int | None = None
    high: int | None = None
    consumed: set[Filter] = set()
    for flt in request.groups[0]:
        bounds = _instant_bounds(flt) if flt.property_name == modified else None
        if bounds is None:
            continue
        consumed.add(flt)
        if bounds[0] is not None:
            low = bounds[0] if low is None else max(low, bounds[0])
        if bounds[1] is not None:
            high = bounds[1] if high is None else min(high, bounds[1])
    if not consumed:
        return store.active(), False, set()
    # Without sorts HubSpot's order is unspecified; ids keep paging stable, so only an explicit
    # ascending sort on the modified date can use the index order as it is.
    presorted = request.sorts == (Sort(modified, False),)
    return store.modified_between(low, high), presorted, consumed


def _instant_bounds(flt: Filter) -> tuple[int | None, int | None] | None:
    """Inclusive [low, high] in ms for a range filter on a date, or None if it is not one.
    Stored instants are whole milliseconds, so GT v is GTE v+1."""
    value = parse_instant(flt.value) if flt.value is not None else None
    if flt.operator == "BETWEEN":
        high = parse_instant(flt.high_value) if flt.high_value is not None else None
        return (value, high) if value is not None and high is not None else None
    if value is None:
        return None
    return {
        "GT": (value + 1, None),
        "GTE": (value, None),
        "LT": (None, value - 1),
        "LTE": (None, value),
        "EQ": (value, value),
    }.get(flt.operator)


def _sorted(
    object_type: ObjectType, definitions: Mapping[str, PropertyDef], records: list[Record], sorts: tuple[Sort, ...]
) -> list[Record]:
    ordered = sorted(records, key=lambda r: r.id)
    # Stable sorts applied from the last key to the first give a multi-key order; ties keep
    # ascending ids in both directions because `reverse=True` preserves the order of equals.
    for sort in reversed(sorts):
        key = comparison_key(definitions.get(sort.property_name))
        present = [r for r in ordered if property_value(object_type, r, sort.property_name) is not None]
        missing = [r for r in ordered if property_value(object_type, r, sort.property_name) is None]
        present.sort(
            key=lambda r: _sortable(key(property_value(object_type, r, sort.property_name) or "")),
            reverse=sort.descending,
        )
        ordered = present + missing
    return ordered


def _sortable(value: Comparable) -> tuple[int, Comparable]:
    # Numbers before text, so a stray unparsable value never breaks the comparison.
    return (0, value) if not isinstance(value, str) else (1, value)
