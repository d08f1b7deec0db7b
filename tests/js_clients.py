"""Run the JavaScript clients our users run (tests/js, pinned by its lock file) against a live gateway.

A test writes its client as a small ES module under tests/js/ and runs it with `run_node`; the module
prints one JSON document on stdout, which the test asserts on. `make test` installs the packages
(`make clients`); a missing install is a failure with the command to run, never a skip.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).parent / "js"


class ClientFailed(AssertionError):
    pass


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / ".installed").exists():
        raise ClientFailed("the JavaScript clients are not installed: run `make clients`")
    return node


async def run_node(script: str, *args: str, timeout: float = 60, env: dict[str, str] | None = None) -> Any:
    """Run tests/js/`script` with `args`; return the JSON it printed last on stdout."""
    process = await asyncio.create_subprocess_exec(
        _node(),
        str(JS_DIR / script),
        *args,
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ClientFailed(f"{script} did not finish within {timeout} s") from None
    if process.returncode != 0:
        raise ClientFailed(f"{script} exited with {process.returncode}:\n{stderr.decode()[-4000:]}")
    lines = [line for line in stdout.decode().splitlines() if line.strip()]
    if not lines:
        raise ClientFailed(f"{script} printed nothing:\n{stderr.decode()[-4000:]}")
    return json.loads(lines[-1])
