"""Run the Salesforce sandbox on its own:
`python -m connectors.salesforce.sandbox --login-port 8201 --instance-port 8202 --contacts 100000 [--no-limits]`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time

import uvicorn

from connectors.kit.sandbox import bind_socket
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, create_instance_app, create_login_app
from connectors.salesforce.sandbox.app import INSTANCE_HOST, LOGIN_HOST


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m connectors.salesforce.sandbox", description=__doc__)
    parser.add_argument("--login-port", type=int, default=8201)
    parser.add_argument("--instance-port", type=int, default=8202)
    parser.add_argument("--seed", type=int, default=42)
    for count in dataclasses.fields(SalesforceSize):
        parser.add_argument(f"--{count.name}", type=int, default=count.default, help=f"seeded {count.name}")
    parser.add_argument("--no-limits", action="store_true", help="never refuse a call for the daily API allocation")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    size = SalesforceSize(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SalesforceSize)})
    sandbox = SalesforceSandbox(seed=args.seed, size=size)
    sandbox.faults.daily_limit_enabled = not args.no_limits
    sandbox.login_url = f"http://{LOGIN_HOST}:{args.login_port}"
    sandbox.instance_url = f"http://{INSTANCE_HOST}:{args.instance_port}"
    print(f"Salesforce sandbox seeded in {time.perf_counter() - started:.1f}s: {size}", flush=True)
    print(f"  login host     {sandbox.login_url}  (OAuth: /services/oauth2/authorize, /services/oauth2/token)")
    print(f"  instance host  {sandbox.instance_url}  (REST: /services/data/v60.0/...)")
    print(f"  client_id      {sandbox.client_id}")
    print(f"  client_secret  {sandbox.client_secret}")
    print("  tokens         POST /_sandbox/tokens on the instance host mints a session", flush=True)
    asyncio.run(_serve(sandbox, args.login_port, args.instance_port, args.log_level))


async def _serve(sandbox: SalesforceSandbox, login_port: int, instance_port: int, log_level: str) -> None:
    servers = [
        uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off"))
        for app in (create_login_app(sandbox), create_instance_app(sandbox))
    ]
    sockets = [bind_socket(LOGIN_HOST, login_port), bind_socket(INSTANCE_HOST, instance_port)]
    running = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in zip(servers, sockets, strict=True)]
    # Each server installs its own signal handlers and the last one wins, so Ctrl+C stops one:
    # the other follows it.
    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*running)


if __name__ == "__main__":
    main()
