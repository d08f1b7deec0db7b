from __future__ import annotations

from typing import Any, NewType

import orjson
import strawberry

# The cached payload is JSON text already; embedding it as an orjson Fragment skips a parse and a dump.
RawJSON = strawberry.scalar(
    NewType("RawJSON", object),
    name="JSON",
    description="A JSON value: the provider's payload exactly as xkit received it.",
    serialize=lambda text: orjson.Fragment(text) if isinstance(text, str | bytes) else text,
    parse_value=lambda value: value,
)

JSONValue = strawberry.scalar(
    NewType("JSONValue", object),
    name="JSONObject",
    description="Any JSON value.",
    serialize=lambda value: value,
    parse_value=lambda value: value,
)
