"""Run the Zendesk sandbox on its own: `python -m connectors.zendesk.sandbox --port 8103`.

Each account is served under its subdomain: `http://127.0.0.1:8103/acme` stands for `https://acme.zendesk.com`.
With `--webhook-url`, every change on the first account is sent there, signed with the printed secret."""

from __future__ import annotations

import argparse
import time

import uvicorn

from connectors.zendesk.sandbox import SandboxSize, ZendeskSandbox, base_url_for, create_app
from connectors.zendesk.sandbox.sandbox import DEFAULT_SUBDOMAIN


def main(argv: list[str] | None = None) -> None:
    defaults = SandboxSize()
    parser = argparse.ArgumentParser(prog="python -m connectors.zendesk.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--subdomain", action="append", help=f"an account to serve (default {DEFAULT_SUBDOMAIN})")
    for name in ("tickets", "users", "agents", "organizations"):
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name), help=f"seeded {name}")
    parser.add_argument("--no-rate-limit", action="store_true", help="never answer 429 for volume")
    parser.add_argument("--webhook-url", help="send signed webhook events for every change to this URL")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    size = SandboxSize(tickets=args.tickets, users=args.users, agents=args.agents, organizations=args.organizations)
    try:
        sandbox = ZendeskSandbox(seed=args.seed, size=size, subdomains=args.subdomain or (DEFAULT_SUBDOMAIN,))
    except ValueError as problem:
        parser.error(str(problem))
    if args.no_rate_limit:
        sandbox.faults.rate_limit_enabled = False
    secret = None
    if args.webhook_url:
        try:
            secret = sandbox.configure_webhooks(args.webhook_url)
        except ValueError as problem:
            parser.error(str(problem))
    url = f"http://{args.host}:{args.port}"
    print(f"Zendesk sandbox seeded in {time.perf_counter() - started:.1f}s: {size}", flush=True)
    for subdomain in sandbox.accounts:
        email, token = sandbox.api_token(subdomain)
        print(f"  {subdomain:<14} {base_url_for(url, subdomain)}   API token {email}/token:{token}", flush=True)
    print(f"  client_id      {sandbox.client_id}", flush=True)
    print(f"  client_secret  {sandbox.client_secret}", flush=True)
    print(f"  webhooks       {f'{args.webhook_url} (secret {secret})' if secret else 'off'}", flush=True)
    uvicorn.run(create_app(sandbox), host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
