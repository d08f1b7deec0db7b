"""A local emulator of the Zendesk Support API endpoints the Zendesk connector uses.

One sandbox serves several accounts, each under its subdomain as a path prefix: `base_url_for(url, "acme")`
is the stand-in for `https://acme.zendesk.com`.
"""

from __future__ import annotations

from connectors.zendesk.sandbox.app import create_app
from connectors.zendesk.sandbox.data import SandboxSize
from connectors.zendesk.sandbox.errors import ZendeskError
from connectors.zendesk.sandbox.sandbox import DEFAULT_SUBDOMAIN, ZendeskSandbox, base_url_for

__all__ = ["DEFAULT_SUBDOMAIN", "SandboxSize", "ZendeskError", "ZendeskSandbox", "base_url_for", "create_app"]
