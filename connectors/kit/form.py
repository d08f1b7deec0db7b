"""Form encoding with bracket nesting, as Stripe's API parses request bodies (docs.stripe.com/api, its
"Form-encoded" requests; the same `a[b][c]=v` convention as Rack and PHP): nested objects as
`metadata[order_id]=6735`, arrays as `items[0][price]=p` (stripe-python writes indexes) or `expand[]=x`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from connectors.kit.errors import BadInput

ArrayStyle = Literal["indexed", "brackets"]


def form_encode(data: Mapping[str, Any], *, arrays: ArrayStyle = "indexed") -> str:
    """`data` as an `application/x-www-form-urlencoded` body. None sends an empty value (Stripe unsets a
    field given empty), booleans go as `true`/`false`, an empty object or list sends nothing."""
    return urlencode(list(_pairs(data, "", arrays)))


def _pairs(value: Any, key: str, arrays: ArrayStyle) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for name, item in value.items():
            yield from _pairs(item, f"{key}[{name}]" if key else str(name), arrays)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _pairs(item, f"{key}[{index if arrays == 'indexed' else ''}]", arrays)
    elif value is None:
        yield key, ""
    elif isinstance(value, bool):
        yield key, "true" if value else "false"
    else:
        yield key, str(value)


_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def form_decode(body: str) -> dict[str, Any]:
    """A bracket-nested form body back into objects and lists (what a provider's sandbox reads): `a[b]=1`
    nests, `a[0]=x` and `a[]=x` make lists; every leaf stays a string, as the provider receives it."""
    decoded: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            raise BadInput(f"malformed form key {key!r}")
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        _put(decoded, parts, value, key)
    return decoded


def _put(container: Any, parts: list[str], value: str, key: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(container, list):
        if head == "":
            index = len(container)
        elif head.isdigit() and int(head) <= len(container):
            index = int(head)
        else:
            raise BadInput(f"form key {key!r} skips array positions")
        if index == len(container):
            container.append(None)
        if not rest:
            container[index] = value
            return
        if container[index] is None:
            container[index] = [] if rest[0] == "" or rest[0].isdigit() else {}
        _put(container[index], rest, value, key)
        return
    if not rest:
        container[head] = value
        return
    child = container.setdefault(head, [] if rest[0] == "" or rest[0].isdigit() else {})
    if not isinstance(child, list | dict):
        raise BadInput(f"form key {key!r} nests under a plain value")
    _put(child, rest, value, key)
