"""Run the Stripe sandbox on its own: `python -m connectors.stripe.sandbox --port 8104`.

It stands for both `api.stripe.com` (`/v1/…`) and `connect.stripe.com` (`/oauth/…`). With `--webhook-url`,
every account's events are sent there, signed with the printed secret."""

from __future__ import annotations

import time

from connectors.kit.sandbox_cli import sandbox_parser, seeded_size, serve
from connectors.stripe.sandbox import SandboxSize, StripeSandbox, create_app
from connectors.stripe.sandbox.errors import StripeError

COUNTS = ("customers", "invoices", "subscriptions", "payment_intents")


def main(argv: list[str] | None = None) -> None:
    parser = sandbox_parser("python -m connectors.stripe.sandbox", __doc__, 8104, SandboxSize(), COUNTS)
    parser.add_argument("--live-keys", action="store_true", help="accept the accounts' sk_live_ keys too")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    size = seeded_size(SandboxSize, args, COUNTS)
    sandbox = StripeSandbox(seed=args.seed, size=size)
    sandbox.faults.rate_limit_enabled = not args.no_rate_limit
    sandbox.faults.live_keys_enabled = args.live_keys
    secret = None
    if args.webhook_url:
        try:
            secret = sandbox.send_events_to(args.webhook_url)
        except StripeError as problem:
            parser.error(str(problem))
    print(f"Stripe sandbox seeded in {time.perf_counter() - started:.1f}s: {size}", flush=True)
    for account in sandbox.accounts.values():
        role = "platform" if account is sandbox.platform else "connected"
        print(f"  {account.id} ({role}, {account.identity.name})  secret key {account.identity.secret_key}", flush=True)
    print(f"  client_id      {sandbox.client_id}", flush=True)
    print(f"  webhooks       {f'{args.webhook_url} (secret {secret})' if secret else 'off'}", flush=True)
    serve(create_app(sandbox), args)


if __name__ == "__main__":
    main()
