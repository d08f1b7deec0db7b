"""`/_sandbox/` on the instance host: the HTTP twin of the Python control API, for tools in
another process (the ingest benchmark runs the sandbox with `python -m`)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.salesforce.sandbox.responses import json_response
from connectors.salesforce.sandbox.sandbox import SalesforceSandbox


class ControlRoutes:
    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/faults", self.get_faults, methods=["GET"]),
            Route("/_sandbox/faults", self.patch_faults, methods=["PATCH"]),
            Route("/_sandbox/tokens", self.mint_tokens, methods=["POST"]),
            Route("/_sandbox/stats", self.get_stats, methods=["GET"]),
            Route("/_sandbox/expire-sessions", self.expire_sessions, methods=["POST"]),
        ]

    async def get_faults(self, request: Request) -> Response:
        return json_response(self.sandbox.faults.as_dict())

    async def patch_faults(self, request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of knob names to values")
            self.sandbox.faults.update(changes)
        except (orjson.JSONDecodeError, ValueError) as problem:
            return json_response({"message": str(problem)}, 400)
        return json_response(self.sandbox.faults.as_dict())

    async def mint_tokens(self, request: Request) -> Response:
        raw = await request.body()
        try:
            scopes = orjson.loads(raw).get("scopes") if raw.strip() else None
        except (orjson.JSONDecodeError, AttributeError):
            return json_response({"message": 'send nothing, or {"scopes": ["api", "refresh_token"]}'}, 400)
        return json_response(self.sandbox.mint_tokens(scopes))

    async def get_stats(self, request: Request) -> Response:
        return json_response({**self.sandbox.stats.snapshot(), "api_usage": self.sandbox.usage.used()})

    async def expire_sessions(self, request: Request) -> Response:
        return json_response({"expired": self.sandbox.expire_sessions()})
