from __future__ import annotations

from typing import Any


def dig(data: Any, dotted: str) -> Any:
    """Follow a dotted path ("paging.next.after") through nested dicts; None when any step is missing."""
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data
