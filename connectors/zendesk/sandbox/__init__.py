"""A local emulator of the Zendesk Support API endpoints the Zendesk connector uses.

One sandbox serves several accounts, each under its subdomain as a path prefix: `base_url_for(url, "acme")`
is the stand-in for `https://acme.zendesk.com`.
"""

from __future__ import annotations

from typing import Any

from connectors.zendesk.sandbox.app import create_app
from connectors.zendesk.sandbox.data import SandboxSize
from connectors.zendesk.sandbox.errors import ZendeskError
from connectors.zendesk.sandbox.sandbox import DEFAULT_SUBDOMAIN, ZendeskSandbox, base_url_for


def __getattr__(name: str) -> Any:
    # The registry entry is loaded on first use: it imports the connector, which the sandbox itself never needs
    # (tools and benchmarks serve the sandbox without it).
    if name == "SANDBOX":
        from connectors.zendesk.sandbox.entry import SANDBOX

        return SANDBOX
    raise AttributeError(name)


__all__ = ["DEFAULT_SUBDOMAIN", "SandboxSize", "ZendeskError", "ZendeskSandbox", "base_url_for", "create_app"]
