"""Run the HubSpot sandbox on its own: `python -m connectors.hubspot.sandbox --port 8101`.

With `--webhook-url`, every change to contacts, companies, deals and tickets is sent there as HubSpot sends
an app's webhooks, signed (v3) with the printed client_secret."""

from __future__ import annotations

import argparse
import time

import uvicorn

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app


def main(argv: list[str] | None = None) -> None:
    defaults = SandboxSize()
    parser = argparse.ArgumentParser(prog="python -m connectors.hubspot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--seed", type=int, default=42)
    for name in ("contacts", "companies", "deals", "owners", "notes", "tasks", "tickets"):
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name), help=f"seeded {name}")
    parser.add_argument("--no-rate-limit", action="store_true", help="never answer 429 for volume")
    parser.add_argument("--webhook-url", help="send signed webhook events for every change to this URL")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    size = SandboxSize(
        contacts=args.contacts,
        companies=args.companies,
        deals=args.deals,
        owners=args.owners,
        notes=args.notes,
        tasks=args.tasks,
        tickets=args.tickets,
    )
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
    uvicorn.run(create_app(sandbox), host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
