"""A local emulator of the HubSpot API endpoints the HubSpot connector uses."""

from __future__ import annotations

from connectors.hubspot.sandbox.app import create_app
from connectors.hubspot.sandbox.data import SandboxSize
from connectors.hubspot.sandbox.driver import SANDBOX
from connectors.hubspot.sandbox.errors import HubSpotError
from connectors.hubspot.sandbox.sandbox import HubSpotSandbox

__all__ = ["SANDBOX", "HubSpotError", "HubSpotSandbox", "SandboxSize", "create_app"]
