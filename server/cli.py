"""The `colloque` command: serve, worker, migrate, demo, purge, rotate-keys."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from server.settings import Settings, SettingsError, load_settings


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    if settings.embedded:
        # One process owns the embedded database: bring it up to date before serving.
        asyncio.run(_migrate(settings))
    from server.live.serving import LiveServer

    config = uvicorn.Config(
        "server.live.serving:create_app",
        factory=True,
        host=args.host,
        port=args.port or settings.port,
        proxy_headers=True,
        # Both come with uvicorn[standard]; named so that a missing one fails loudly instead
        # of silently halving live throughput.
        loop="uvloop",
        http="httptools",
        ws=args.ws,
        # uvicorn negotiates permessage-deflate by default: zlib state for each direction of
        # each connection, tens of KiB an idle connection, for fragments of a few KiB.
        ws_per_message_deflate=False,
        # Inbound frames are small JSON commands; a large frame is an attack, not a message.
        ws_max_size=64 * 1024,
        log_level="info",
        access_log=not args.no_access_log,
    )
    # Password reset links carry their token in the path: keep it out of the access log.
    from server import log_redaction

    log_redaction.install()
    LiveServer(config).run()


async def _migrate(settings: Settings) -> None:
    from server import db

    await db.migrate(settings)


async def _worker(settings: Settings) -> None:
    from server import db, streams
    from server.broker import broker_for
    from server.jobs import job_queue_for, use_job_queue
    from workers.runner import run_workers

    await db.open_database(settings)
    broker = broker_for(settings.redis_url)
    await broker.connect()
    # Changes made by jobs reach the web processes' live streams through the same broker.
    streams.use_broker(broker, settings.secret_key)
    job_queue = job_queue_for(settings.redis_url, settings.triage_reclaim_seconds)
    use_job_queue(job_queue)
    try:
        await run_workers()
    finally:
        await job_queue.close()
        await broker.disconnect()
        await db.close_database()


async def _demo(settings: Settings, patients: int) -> None:
    from server import db
    from server.demo import create_demo

    await db.migrate(settings)
    await db.open_database(settings)
    try:
        summary = await create_demo(patients)
    finally:
        await db.close_database()
    print(summary)


async def _purge(settings: Settings) -> None:
    from server import db
    from server.actions.retention import purge

    await db.open_database(settings)
    try:
        purged = await purge()
    finally:
        await db.close_database()
    print(purged)


async def _rotate_keys(settings: Settings, batch_size: int) -> int:
    from server import crypto, db
    from server.actions.key_rotation import RotationError, rotate_keys

    keyring = crypto.Keyring(settings.data_keys)
    crypto.use_keyring(keyring)
    await db.open_database(settings)
    try:
        rotations = await rotate_keys(keyring, batch_size)
    except RotationError as error:
        print(f"colloque: {error}", file=sys.stderr)
        return 1
    finally:
        await db.close_database()
    print(f"current key: {keyring.current_id}")
    for rotation in rotations:
        line = f"{rotation.column.context}: {rotation.reencrypted} re-encrypted"
        line += f" ({rotation.from_plaintext} were plaintext"
        line += f", {rotation.changed_meanwhile} changed meanwhile and kept as written)"
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="colloque", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--ws",
        default="websockets-sansio",
        choices=("websockets-sansio", "websockets", "wsproto"),
        help="WebSocket implementation (memory per connection: see bench/RESULTS.md)",
    )
    serve.add_argument("--no-access-log", action="store_true", help="do not log each request")
    commands.add_parser("worker", help="run the background workers against REDIS_URL")
    commands.add_parser("migrate", help="bring the database schema up to date")
    demo = commands.add_parser("demo", help="create the demo practice and accounts")
    demo.add_argument("--patients", type=int, default=0, help="also create N load-test patients")
    commands.add_parser(
        "purge", help="delete what is past its retention period (audit lines, sessions, resets)"
    )
    rotate = commands.add_parser(
        "rotate-keys", help="re-encrypt stored data under the first key of COLLOQUE_DATA_KEYS"
    )
    rotate.add_argument("--batch-size", type=int, default=500, help="rows per transaction")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"colloque: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        _serve(settings, args)
    elif args.command == "worker":
        if settings.embedded:
            print(
                "colloque: worker needs REDIS_URL (the embedded server runs its own)",
                file=sys.stderr,
            )
            return 2
        asyncio.run(_worker(settings))
    elif args.command == "purge":
        asyncio.run(_purge(settings))
    elif args.command == "rotate-keys":
        if args.batch_size < 1:
            print("colloque: --batch-size must be at least 1", file=sys.stderr)
            return 2
        return asyncio.run(_rotate_keys(settings, args.batch_size))
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command == "demo":
        if args.patients < 0:
            print("colloque: --patients must be zero or more", file=sys.stderr)
            return 2
        asyncio.run(_demo(settings, args.patients))
    return 0


if __name__ == "__main__":
    sys.exit(main())
