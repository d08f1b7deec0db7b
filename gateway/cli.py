"""`xkit`: dev, serve, worker, migrate, platforms, keys, documents, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from typing import TYPE_CHECKING

import uvicorn

from gateway.settings import Settings

if TYPE_CHECKING:
    from sync.storage.store import Store


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        k: v for k, v in {"port": getattr(args, "port", None), "host": getattr(args, "host", None)}.items() if v
    }
    return Settings(**overrides)


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx2 logs every request URL at INFO; URLs can carry tokens in query strings.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("httpcore2").setLevel(logging.WARNING)


async def _migrate(settings: Settings) -> None:
    from sync.storage.db import create_engine
    from sync.storage.migrate import upgrade

    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = _settings(args)
    asyncio.run(_migrate(settings))
    print("database is up to date")


def cmd_serve(args: argparse.Namespace) -> None:
    from gateway.app import create_app
    from gateway.runtime import Runtime
    from gateway.server import server_config

    settings = _settings(args)
    _configure_logging(settings)
    asyncio.run(_migrate(settings))
    runtime = Runtime.build(settings)
    server = uvicorn.Server(server_config(create_app(runtime), settings))
    server.run()
    if not server.started:  # the port was taken, or the app failed to start: say so in the exit status
        sys.exit(3)


def cmd_worker(args: argparse.Namespace) -> None:
    from gateway.runtime import Runtime
    from gateway.server import settle_garbage_collector
    from sync.cache.listen import change_listener

    settings = _settings(args)
    _configure_logging(settings)

    async def run() -> None:
        await _migrate(settings)
        runtime = Runtime.build(settings, run_worker=True)
        assert runtime.worker is not None
        settle_garbage_collector()
        try:
            # Woken by appends from every process (webhook intake, writebacks), not only at its next poll.
            async with change_listener(runtime.store):
                await runtime.worker.run_forever()
        finally:
            await runtime.close()

    asyncio.run(run())


def cmd_dev(args: argparse.Namespace) -> None:
    from gateway.dev import run_dev

    settings = _settings(args)
    _configure_logging(settings)
    run_dev(settings, contacts=args.contacts)


def cmd_platforms_create(args: argparse.Namespace) -> None:
    from gateway.runtime import Runtime
    from sync.tenancy.platforms import create_platform

    async def run() -> uuid.UUID:
        settings = _settings(args)
        await _migrate(settings)
        runtime = Runtime.build(settings, run_worker=False)
        try:
            return await create_platform(runtime.store, args.name)
        finally:
            await runtime.close()

    print(asyncio.run(run()))


def cmd_keys_create(args: argparse.Namespace) -> None:
    from gateway.runtime import Runtime
    from sync.tenancy.platforms import create_api_key

    async def run() -> str:
        settings = _settings(args)
        await _migrate(settings)
        runtime = Runtime.build(settings, run_worker=False)
        try:
            issued = await create_api_key(runtime.store, uuid.UUID(args.platform), args.name)
            return issued.key
        finally:
            await runtime.close()

    key = asyncio.run(run())
    print(key)
    print("Store it now: xkit keeps only its hash and cannot show it again.", file=sys.stderr)


def cmd_keys_list(args: argparse.Namespace) -> None:
    from sync.tenancy.platforms import list_api_keys

    async def run() -> list[str]:
        store = await _store(_settings(args))
        try:
            keys = await list_api_keys(store, _uuid(args.platform, "platform id"))
        finally:
            await store.engine.dispose()
        return [
            f"{key.id}  {key.prefix}...  {key.created_at:%Y-%m-%d %H:%M}  "
            f"{'revoked ' + format(key.revoked_at, '%Y-%m-%d %H:%M') if key.revoked_at else 'active'}  {key.name}"
            for key in keys
        ]

    lines = asyncio.run(run())
    print("\n".join(lines) if lines else "no keys")


def cmd_keys_revoke(args: argparse.Namespace) -> None:
    from sync.tenancy.platforms import revoke_api_key

    async def run() -> bool:
        store = await _store(_settings(args))
        try:
            return await revoke_api_key(store, _key_id(args.key_id)) is not None
        finally:
            await store.engine.dispose()

    if not asyncio.run(run()):
        sys.exit(f"no API key with id {args.key_id}")
    print(f"revoked {args.key_id}; every gateway refuses it within seconds")


async def _store(settings: Settings) -> Store:
    from sync.storage.crypto import Vault, parse_secret_key
    from sync.storage.db import create_engine
    from sync.storage.store import Store

    if settings.secret_key is None:
        sys.exit("XKIT_SECRET_KEY is not set")
    await _migrate(settings)
    return Store(
        create_engine(settings.resolved_database_url), Vault(parse_secret_key(settings.secret_key.get_secret_value()))
    )


def _uuid(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        sys.exit(f"{text!r} is not a {what}")


def _key_id(text: str) -> uuid.UUID:
    """A key id as `xkit keys list` prints it, or as the GraphQL API gives it (`apiKeys { id }`)."""
    from connectors.kit.errors import BadInput
    from resolvers.keys import parse_key_id

    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    try:
        return parse_key_id(text)
    except BadInput:
        sys.exit(f"{text!r} is not an API key id")


def cmd_redirect_uris(args: argparse.Namespace) -> None:
    from connectors.kit.errors import NotFound, XkitError
    from resolvers.redirect_uris import check_redirect_uri
    from sync.tenancy import redirect_uris as registry

    settings = _settings(args)
    platform_id = _uuid(args.platform, "platform id")

    async def run() -> list[str]:
        store = await _store(settings)
        try:
            if args.action == "add":
                uri = check_redirect_uri(args.uri)
                return await registry.add_redirect_uri(
                    store, platform_id, uri, limit=settings.redirect_uris_per_platform
                )
            if args.action == "remove" and not await registry.remove_redirect_uri(store, platform_id, args.uri):
                raise NotFound(f"{args.uri} is not registered for this platform")
            async with store.reader.connect() as conn:
                return await registry.list_redirect_uris(conn, platform_id)
        finally:
            await store.engine.dispose()

    try:
        uris = asyncio.run(run())
    except XkitError as refused:
        sys.exit(refused.message)
    print("\n".join(uris) if uris else "no redirect URIs")


def cmd_documents(args: argparse.Namespace) -> None:
    from pathlib import Path

    from connectors.kit.errors import NotFound, XkitError
    from gateway.documents import ManifestLimits, operation_summary, read_manifest
    from gateway.runtime import Runtime
    from sync.tenancy import documents

    settings = _settings(args)
    platform_id = _uuid(args.platform, "platform id")
    manifest = b""
    if args.action == "push":
        try:
            with Path(args.file).open("rb") as file:
                manifest = file.read(settings.documents_max_manifest_bytes + 1)  # one more: too large is refused
        except OSError as unreadable:
            sys.exit(f"cannot read {args.file}: {unreadable.strerror}")

    async def run() -> str:
        await _migrate(settings)
        runtime = Runtime.build(settings, run_worker=False)
        store = runtime.store
        try:
            if args.action == "push":
                limits = ManifestLimits(
                    max_bytes=settings.documents_max_manifest_bytes,
                    max_documents=settings.documents_per_platform,
                    max_document_bytes=settings.graphql_max_request_bytes,
                    request=runtime.services.limits,
                )
                checked = read_manifest(manifest, Path(args.file).name, limits)
                pushed = await documents.register_documents(
                    store, platform_id, checked, limit=settings.documents_per_platform
                )
                return f"added {pushed.added}, unchanged {pushed.unchanged}"
            if args.action == "remove":
                removed = await documents.remove_documents(store, platform_id, None if args.all else args.hashes)
                if not removed and not args.all:
                    raise NotFound("none of these hashes is registered for this platform")
                return f"removed {removed}"
            if args.action == "trusted-only":
                if not await documents.set_trusted_only(store, platform_id, args.state == "on"):
                    raise NotFound(f"no platform with id {platform_id}")
                said = f"trusted documents only: {args.state} (every gateway within {documents.CACHE_SECONDS:g} s)"
                if args.state == "on" and not await documents.list_documents(store, platform_id):
                    said += "; no document is registered yet, so every operation is refused"
                return said
            registered = await documents.list_documents(store, platform_id)
            mode = "on" if await documents.trusted_only(store, platform_id) else "off"
            lines = [
                f"{d.sha256}  {d.created_at:%Y-%m-%d %H:%M}  {operation_summary(d.operation_names)}" for d in registered
            ]
            return "\n".join([*lines, f"{len(registered)} documents; trusted documents only: {mode}"])
        finally:
            await runtime.close()

    try:
        print(asyncio.run(run()))
    except XkitError as refused:
        sys.exit(refused.message)


def cmd_export_schema(args: argparse.Namespace) -> None:
    from schema import schema

    sys.stdout.write(schema.as_str() + "\n")


def cmd_secret(args: argparse.Namespace) -> None:
    from sync.storage.crypto import generate_secret_key

    print(generate_secret_key())


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="xkit", description="GraphQL unified-API gateway")
    commands = root.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run everything locally: sandboxes, demo data, gateway")
    # No default here: XKIT_PORT, then Settings' own default (8000), apply unless --port is given.
    dev.add_argument("--port", type=int)
    dev.add_argument("--contacts", type=int, default=2000, help="size of the sandbox's seeded CRM")
    dev.set_defaults(func=cmd_dev)

    serve = commands.add_parser("serve", help="run the gateway (production, no sandboxes)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    commands.add_parser("worker", help="run a sync worker without the API").set_defaults(func=cmd_worker)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    commands.add_parser("export-schema", help="print the GraphQL schema").set_defaults(func=cmd_export_schema)
    commands.add_parser("secret", help="print a new XKIT_SECRET_KEY").set_defaults(func=cmd_secret)

    platforms = commands.add_parser("platforms", help="manage platforms").add_subparsers(dest="sub", required=True)
    create_platform = platforms.add_parser("create", help="create a platform and print its id")
    create_platform.add_argument("name")
    create_platform.set_defaults(func=cmd_platforms_create)
    redirects = platforms.add_parser(
        "redirect-uris", help="where a platform's end users may be sent back after connecting (connectUrl)"
    ).add_subparsers(dest="action", required=True)
    for action, help_text in (
        ("list", "list the registered redirect URIs"),
        ("add", "register one (absolute https; http only for localhost)"),
        ("remove", "unregister one; links already issued for it stop working"),
    ):
        command = redirects.add_parser(action, help=help_text)
        command.add_argument("--platform", required=True, help="platform id (xkit platforms create)")
        if action != "list":
            command.add_argument("uri")
        command.set_defaults(func=cmd_redirect_uris)

    documents = commands.add_parser(
        "documents", help="a platform's registered GraphQL documents (persisted queries, trusted documents mode)"
    ).add_subparsers(dest="action", required=True)
    push = documents.add_parser(
        "push",
        help="register the documents of a manifest: a JSON map of hash to document (relay-compiler, "
        "graphql-codegen), an Apollo persisted query manifest, or a .graphql file of named operations",
    )
    push.add_argument("file")
    documents.add_parser("list", help="list the registered documents by SHA-256, with their operations")
    remove = documents.add_parser("remove", help="unregister documents by SHA-256 (or --all)")
    remove_what = remove.add_mutually_exclusive_group(required=True)
    remove_what.add_argument("hashes", nargs="*", default=[], help="SHA-256 as `xkit documents list` prints it")
    remove_what.add_argument("--all", action="store_true", help="every document of the platform")
    trusted = documents.add_parser("trusted-only", help="run only registered documents for this platform (on/off)")
    trusted.add_argument("state", choices=("on", "off"))
    for command in (push, documents.choices["list"], remove, trusted):
        command.add_argument("--platform", required=True, help="platform id (xkit platforms create)")
        command.set_defaults(func=cmd_documents)

    keys = commands.add_parser("keys", help="manage secret API keys").add_subparsers(dest="sub", required=True)
    create_key = keys.add_parser("create", help="create a secret API key (shown once)")
    create_key.add_argument("--platform", required=True, help="platform id (xkit platforms create)")
    create_key.add_argument("--name", default="default")
    create_key.set_defaults(func=cmd_keys_create)
    list_keys = keys.add_parser("list", help="list a platform's keys (never the keys themselves)")
    list_keys.add_argument("--platform", required=True, help="platform id")
    list_keys.set_defaults(func=cmd_keys_list)
    revoke_key = keys.add_parser("revoke", help="revoke a key: refused everywhere within seconds")
    revoke_key.add_argument("key_id", help="the key's id, as `xkit keys list` prints it")
    revoke_key.set_defaults(func=cmd_keys_revoke)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":  # python -m gateway.cli, as the xkit script
    main()
