"""Run the Zendesk sandbox on its own: `python -m connectors.zendesk.sandbox --port 8103`.

Each account is served under its subdomain: `http://127.0.0.1:8103/acme` stands for `https://acme.zendesk.com`.
With `--webhook-url`, every change on the first account is sent there, signed with the printed secret."""

from __future__ import annotations

import time

from connectors.kit.sandbox_cli import sandbox_parser, seeded_size, serve
from connectors.zendesk.sandbox import SandboxSize, ZendeskSandbox, base_url_for, create_app
from connectors.zendesk.sandbox.sandbox import DEFAULT_SUBDOMAIN

COUNTS = ("tickets", "users", "agents", "organizations")


def main(argv: list[str] | None = None) -> None:
    parser = sandbox_parser("python -m connectors.zendesk.sandbox", __doc__, 8103, SandboxSize(), COUNTS)
    parser.add_argument("--subdomain", action="append", help=f"an account to serve (default {DEFAULT_SUBDOMAIN})")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    size = seeded_size(SandboxSize, args, COUNTS)
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
    serve(create_app(sandbox), args)


if __name__ == "__main__":
    main()
