"""The sandbox's entry in the kit's registry (connectors/kit/registry.py): what `xkit dev` and the
conformance suite start. Kept apart from the driver because it needs the connector's declaration."""

from __future__ import annotations

from connectors.kit.registry import SandboxEntry
from connectors.stripe.connector import STRIPE
from connectors.stripe.sandbox.driver import conformance_driver, dev_driver, writeback_driver

SANDBOX = SandboxEntry(STRIPE, dev=dev_driver, conformance=conformance_driver, writeback=writeback_driver)
