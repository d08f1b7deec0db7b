"""Run the HubSpot sandbox on its own: `python -m connectors.hubspot.sandbox --port 8101`.

With `--webhook-url`, every change to contacts, companies, deals and tickets is sent there as HubSpot sends
an app's webhooks, signed (v3) with the printed client_secret."""

from __future__ import annotations

import time

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.kit.sandbox_cli import sandbox_parser, seeded_size, serve

COUNTS = ("contacts", "companies", "deals", "owners", "notes", "tasks", "tickets")


def main(argv: list[str] | None = None) -> None:
    parser = sandbox_parser("python -m connectors.hubspot.sandbox", __doc__, 8101, SandboxSize(), COUNTS)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    size = seeded_size(SandboxSize, args, COUNTS)
    sandbox = HubSpotSandbox(seed=args.seed, size=size)
    if args.no_rate_limit:
        sandbox.faults.rate_limit_enabled = False
    if args.webhook_url:
        try:
            sandbox.configure_webhooks(args.webhook_url)
        except ValueError as problem:
            parser.error(str(problem))
    print(f"HubSpot sandbox seeded in {time.perf_counter() - started:.1f}s: {size}", flush=True)
    print(f"  base URL       http://{args.host}:{args.port}", flush=True)
    print(f"  client_id      {sandbox.client_id}", flush=True)
    print(f"  client_secret  {sandbox.client_secret}", flush=True)
    print("  tokens         POST /_sandbox/tokens mints a fresh pair", flush=True)
    if args.webhook_url:
        print(f"  webhooks       {args.webhook_url} (portalId {sandbox.hub_id}, appId {sandbox.app_id})", flush=True)
    else:
        print("  webhooks       off; PUT /_sandbox/webhooks {targetUrl} turns them on", flush=True)
    serve(create_app(sandbox), args)


if __name__ == "__main__":
    main()
