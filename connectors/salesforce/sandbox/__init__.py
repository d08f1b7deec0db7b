"""A local emulator of the Salesforce REST API and OAuth endpoints the Salesforce connector uses."""

from __future__ import annotations

from connectors.salesforce.sandbox.app import create_instance_app, create_login_app, serve_sandbox
from connectors.salesforce.sandbox.data import SalesforceSize
from connectors.salesforce.sandbox.driver import SANDBOX
from connectors.salesforce.sandbox.errors import SalesforceError
from connectors.salesforce.sandbox.sandbox import SalesforceFaults, SalesforceSandbox

__all__ = [
    "SANDBOX",
    "SalesforceError",
    "SalesforceFaults",
    "SalesforceSandbox",
    "SalesforceSize",
    "create_instance_app",
    "create_login_app",
    "serve_sandbox",
]
