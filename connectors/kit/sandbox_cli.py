"""The command line every single-host sandbox shares: `python -m connectors.<provider>.sandbox`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TypeVar

import uvicorn
from starlette.types import ASGIApp

Size = TypeVar("Size")


def sandbox_parser(
    prog: str, description: str | None, port: int, size: object, counts: Sequence[str]
) -> argparse.ArgumentParser:
    """Host, port, seed, one option a seeded count (defaulting to `size`'s), rate limits, webhooks, logging."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--seed", type=int, default=42)
    for name in counts:
        parser.add_argument(f"--{name}", type=int, default=getattr(size, name), help=f"seeded {name}")
    parser.add_argument("--no-rate-limit", action="store_true", help="never answer 429 for volume")
    parser.add_argument("--webhook-url", help="send signed webhook events for every change to this URL")
    parser.add_argument("--log-level", default="warning")
    return parser


def seeded_size(size_type: type[Size], args: argparse.Namespace, counts: Sequence[str]) -> Size:
    return size_type(**{name: getattr(args, name) for name in counts})


def serve(app: ASGIApp, args: argparse.Namespace) -> None:
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
