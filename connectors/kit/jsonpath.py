from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1024)
def path_parts(dotted: str) -> tuple[str, ...]:
    return tuple(dotted.split("."))


def dig(data: Any, dotted: str) -> Any:
    """Follow a dotted path ("paging.next.after") through nested dicts; None when any step is missing."""
    for part in path_parts(dotted):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data
