"""Every registered connector passes the conformance suite (tests/conformance.py) against its sandbox."""

from __future__ import annotations

from tests.conformance import ConnectorConformance


class TestConformance(ConnectorConformance):
    pass
