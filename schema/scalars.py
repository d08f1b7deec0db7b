from __future__ import annotations

from typing import Any, NewType

import orjson
import strawberry

# The cached payload is JSON text already; embedding it as an orjson Fragment skips a parse and a dump.
RawJSON = NewType("RawJSON", object)


def _embed_json_text(value: Any) -> Any:
    return orjson.Fragment(value) if isinstance(value, str | bytes) else value


SCALARS: dict[object, Any] = {
    RawJSON: strawberry.scalar(
        name="JSON",
        description="A JSON value: the provider's payload exactly as xkit received it.",
        serialize=_embed_json_text,
        parse_value=lambda value: value,
    )
}
