"""Connectors: one package per provider, each a declaration plus its sandbox.

Registering a connector is one line here (its declaration in `CONNECTORS`); its sandbox package exports a
`SANDBOX` entry (connectors/kit/registry.py) that `xkit dev`, the conformance and writeback suites pick up.
"""

from __future__ import annotations

import importlib

from connectors.hubspot import HUBSPOT
from connectors.kit.declaration import Connector
from connectors.kit.errors import BadInput
from connectors.kit.registry import SandboxEntry
from connectors.salesforce import SALESFORCE
from connectors.stripe import STRIPE
from connectors.zendesk import ZENDESK

CONNECTORS: dict[str, Connector] = {c.name: c for c in (HUBSPOT, SALESFORCE, STRIPE, ZENDESK)}


def get_connector(name: str) -> Connector:
    try:
        return CONNECTORS[name]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise BadInput(f"unknown provider {name!r}; known providers: {known}", field="provider") from None


def sandbox_entries() -> dict[str, SandboxEntry]:
    """Every registered connector's sandbox, by provider. Imported on demand: serving the gateway loads none."""
    entries: dict[str, SandboxEntry] = {}
    for name in CONNECTORS:
        entry = getattr(importlib.import_module(f"connectors.{name}.sandbox"), "SANDBOX", None)
        if not isinstance(entry, SandboxEntry) or entry.connector is not CONNECTORS[name]:
            raise LookupError(f"connectors/{name}/sandbox/__init__.py must export SANDBOX, a SandboxEntry for {name}")
        entries[name] = entry
    return entries
