"""Zendesk's two ways of paging a list: offset (`page`, `per_page`, `next_page`, `count`; 400 past the
first 100 pages) and cursor (`page[size]` at most 100, `page[after]`/`page[before]`, `meta` and `links`)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request

from connectors.zendesk.sandbox.errors import bad_request

T = TypeVar("T")
MAX_PAGE_SIZE = 100
MAX_OFFSET_PAGES = 100


def page_of(
    request: Request, key: str, items: Sequence[T], render: Callable[[T], dict[str, Any]], default_size: int = 100
) -> dict[str, Any]:
    """One page of `items` (in list order), by cursor when `page[size]` or `page[after]` is asked, else by offset."""
    params = request.query_params
    if any(name.startswith("page[") for name in params):
        return _cursor_page(request, key, items, render)
    page = _positive(params.get("page", "1"), "page")
    size = min(_positive(params.get("per_page", str(default_size)), "per_page"), MAX_PAGE_SIZE)
    if page > MAX_OFFSET_PAGES:
        raise bad_request(
            "Offset pagination is limited to the first 100 pages; use cursor pagination (page[size]) instead"
        )
    start = (page - 1) * size
    chunk = items[start : start + size]
    last = len(items) <= start + size
    return {
        key: [render(item) for item in chunk],
        "next_page": None if last else _url(request, page=str(page + 1), per_page=str(size)),
        "previous_page": None if page == 1 else _url(request, page=str(page - 1), per_page=str(size)),
        "count": len(items),
    }


def _cursor_page(
    request: Request, key: str, items: Sequence[T], render: Callable[[T], dict[str, Any]]
) -> dict[str, Any]:
    params = request.query_params
    size = _positive(params.get("page[size]", str(MAX_PAGE_SIZE)), "page[size]")
    if size > MAX_PAGE_SIZE:
        raise bad_request(f"page[size] must be at most {MAX_PAGE_SIZE}")
    if "page[before]" in params:
        end = _decode(params["page[before]"])
        start = max(end - size, 0)
    else:
        start = _decode(params["page[after]"]) if "page[after]" in params else 0
        end = start + size
    chunk = items[start:end]
    has_more = end < len(items) if "page[before]" not in params else start > 0
    after = _encode(start + len(chunk)) if chunk else None
    before = _encode(start) if chunk else None
    base = {name: value for name, value in params.items() if not name.startswith("page[")}
    return {
        key: [render(item) for item in chunk],
        "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": before},
        "links": {
            "next": _url(request, **base, **{"page[size]": str(size), "page[after]": after}) if after else None,
            "prev": _url(request, **base, **{"page[size]": str(size), "page[before]": before}) if before else None,
        },
    }


def _encode(position: int) -> str:
    return base64.urlsafe_b64encode(f"o:{position}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("o:") and int(text[2:]) >= 0:
            return int(text[2:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise bad_request("The cursor is invalid")


def _positive(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise bad_request(f"{name} must be a positive integer")
    return number


def _url(request: Request, **params: str) -> str:
    merged = {**dict(request.query_params), **params}
    return str(request.url.replace_query_params(**merged))
