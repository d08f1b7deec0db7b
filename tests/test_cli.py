"""The `xkit` command line: what its flags and the environment decide."""

from __future__ import annotations

import pytest

from gateway.cli import _settings, parser


@pytest.mark.parametrize("command", ["dev", "serve"])
def test_the_port_comes_from_the_flag_then_xkit_port_then_the_default(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.delenv("XKIT_PORT", raising=False)
    assert _settings(parser().parse_args([command])).port == 8000
    monkeypatch.setenv("XKIT_PORT", "8123")
    assert _settings(parser().parse_args([command])).port == 8123
    assert _settings(parser().parse_args([command, "--port", "9001"])).port == 9001
