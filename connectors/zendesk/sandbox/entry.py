"""The sandbox's entry in the kit's registry (connectors/kit/registry.py): what `xkit dev` and the
conformance suite start. Kept apart from the driver because it needs the connector's declaration."""

from __future__ import annotations

from connectors.kit.registry import SandboxEntry
from connectors.zendesk import ZENDESK
from connectors.zendesk.sandbox.driver import conformance_driver, dev_driver, writeback_driver

SANDBOX = SandboxEntry(ZENDESK, dev=dev_driver, conformance=conformance_driver, writeback=writeback_driver)
