"""A local emulator of the Stripe API (version 2024-06-20) the Stripe connector uses: a Connect platform and
its connected accounts, with their keys, objects, events, webhooks and Connect OAuth."""

from __future__ import annotations

from typing import Any

from connectors.stripe.sandbox.app import create_app
from connectors.stripe.sandbox.data import SandboxSize
from connectors.stripe.sandbox.errors import StripeError
from connectors.stripe.sandbox.sandbox import StripeSandbox


def __getattr__(name: str) -> Any:
    # The registry entry is loaded on first use: it imports the connector, which the sandbox itself never needs
    # (tools and benchmarks serve the sandbox without it).
    if name == "SANDBOX":
        from connectors.stripe.sandbox.entry import SANDBOX

        return SANDBOX
    raise AttributeError(name)


__all__ = ["SandboxSize", "StripeError", "StripeSandbox", "create_app"]
