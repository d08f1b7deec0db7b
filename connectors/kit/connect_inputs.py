"""What a provider must be told before an account can be connected: Zendesk's subdomain, the host each
account lives on.

A connector declares its inputs and the URL they name; `connectUrl` and `createConnection` take them as a
JSON object, check every value against its pattern before any request leaves, and the account host they
name becomes the connection's base URL and fills the authorize URL's template (`{subdomain}`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.kit.errors import BadInput


@dataclass(frozen=True)
class ConnectInput:
    name: str  # as clients pass it, e.g. "subdomain"
    pattern: str  # a full match is required
    # What a valid value looks like, in words an end user understands.
    hint: str

    def check(self, value: Any, *, field: str) -> str:
        if not isinstance(value, str) or re.fullmatch(self.pattern, value) is None:
            shown = repr(value)[:80] if value not in (None, "") else "empty"
            raise BadInput(f"{field} is {shown}: {self.hint}", field=field)
        return value


@dataclass(frozen=True)
class ConnectInputs:
    """The inputs a connection needs, and the account host they name (`https://{subdomain}.zendesk.com`)."""

    inputs: tuple[ConnectInput, ...]
    base_url: str

    def __post_init__(self) -> None:
        named = {name for _, name, _, _ in string.Formatter().parse(self.base_url) if name}
        if named != {i.name for i in self.inputs}:
            raise ValueError(f"the base URL template {self.base_url!r} must name exactly the declared inputs")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    def values(self, given: object, *, field: str = "inputs") -> dict[str, str]:
        """The checked values of `given` (a JSON object); anything missing, unknown or malformed is refused."""
        if not isinstance(given, Mapping):
            raise BadInput(f"{field} must be a JSON object with {', '.join(self.names)}", field=field)
        unknown = sorted(str(k) for k in given if k not in self.names)
        if unknown:
            raise BadInput(
                f"{field} has unknown keys {', '.join(unknown)}; expected {', '.join(self.names)}", field=field
            )
        return {i.name: i.check(given.get(i.name), field=f"{field}.{i.name}") for i in self.inputs}

    def fill(self, template: str, values: Mapping[str, str]) -> str:
        """`template` with each `{name}` of an input replaced by its checked value (other text left as is,
        so an operator's own URL, e.g. a sandbox's `http://127.0.0.1:9000/{subdomain}`, may name them too)."""
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template

    def account_url(self, values: Mapping[str, str]) -> str:
        return self.fill(self.base_url, values)


def refuse_inputs(provider: str, given: object, *, field: str = "inputs") -> None:
    """A provider that asks for no inputs refuses any, so a typo is not silently ignored."""
    if given not in (None, {}):
        raise BadInput(f"{provider} takes no {field}", field=field)
