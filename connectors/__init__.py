"""Connectors: one package per provider, each a declaration plus its sandbox."""

from __future__ import annotations

from connectors.hubspot import HUBSPOT
from connectors.kit.declaration import Connector
from connectors.kit.errors import BadInput
from connectors.salesforce import SALESFORCE

CONNECTORS: dict[str, Connector] = {c.name: c for c in (HUBSPOT, SALESFORCE)}


def get_connector(name: str) -> Connector:
    try:
        return CONNECTORS[name]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise BadInput(f"unknown provider {name!r}; known providers: {known}", field="provider") from None
