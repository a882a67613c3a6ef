"""The `motcua` command.

  motcua up [--demo] [--port 8080]        the whole platform on one machine
  motcua api --service S | --all          serve the API(s) (gunicorn)
  motcua worker --service S               the service's nameko worker
  motcua relay --service S                the service's outbox relay
  motcua topology                         declare exchanges, queues and bindings
  motcua prepare --service S [--demo]     indexes, bootstrap admin, reference data
  motcua simulate --wards N --minutes M   play ward days against a running platform
  motcua audit verify [--service S]       check each service's hash-chained audit log

Heavy imports happen inside each command: the worker must monkey-patch with eventlet
before anything else is imported."""
from __future__ import annotations

import argparse
import os
import sys

from motcua_platform.preflight import EXIT_UNAVAILABLE, Unavailable, check_broker, check_database

SERVICES = ("identity", "dossier", "queue", "notify", "rating")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("motcua")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help names its default, where it has one worth naming."""

    def _get_help_string(self, action):
        if action.default in (None, False, []):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    fmt = _Help
    parser = argparse.ArgumentParser(
        prog="motcua", formatter_class=fmt,
        description="Một Cửa — the ward one-stop-shop platform. `motcua up --demo` tries it on one machine.",
        epilog="Settings come from the environment (MONGO_URL, AMQP_URL, MOTCUA_DATA_DIR, SMS_GATEWAY_URL, …): "
               "see README.md. Exit codes: 0 done, 1 failed, 2 bad usage, "
               f"{EXIT_UNAVAILABLE} the database or the broker is unreachable.")
    parser.add_argument("--version", action="version", version=f"motcua {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_up = sub.add_parser("up", formatter_class=fmt, help="run the whole platform on this machine",
                          description="Start the five services' APIs, workers and relays, the embedded database "
                                      "(unless MONGO_URL is set) and the local RabbitMQ if it is installed but "
                                      "stopped. Prints `motcua ready <url>` when every service is ready.")
    p_up.add_argument("--demo", action="store_true", help="load demo wards, queue services, counters, staff and the catalog")
    p_up.add_argument("--port", type=int, default=8080, help="the port every page and API is served on")
    p_up.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0: every interface)")
    p_up.add_argument("--profile", choices=["central", "edge"], default="central",
                      help="central: all five services; edge: one ward office's queue and rating")
    p_up.add_argument("--ward", metavar="WARD_ID", help="edge: the ward this office serves")
    p_up.add_argument("--upstream", metavar="AMQP_URL", help="edge: the central broker the office's events go to")
    p_up.add_argument("--central", metavar="URL", help="edge: the central platform's base URL (token keys, lookups)")
    p_up.add_argument("--api-processes", type=int, metavar="N",
                      help="API processes sharing the port (default: MOTCUA_API_PROCESSES, else 1); "
                           "one per core uses them all")
    p_up.add_argument("--service-workers", metavar="SPEC",
                      help="worker processes per service: N for every service, or e.g. queue=2,dossier=3 "
                           "(the others 1), at most 16 each (default: MOTCUA_SERVICE_WORKERS, else 1); "
                           "relays stay one per service")

    p_api = sub.add_parser("api", formatter_class=fmt, help="serve the HTTP API (gunicorn)")
    group = p_api.add_mutually_exclusive_group(required=True)
    group.add_argument("--service", choices=SERVICES, help="serve this service's API alone")
    group.add_argument("--all", action="store_true", help="serve every service's API on one port")
    p_api.add_argument("--host", default="0.0.0.0", help="the address to listen on")
    p_api.add_argument("--port", type=int, default=8080, help="the port to listen on")
    p_api.add_argument("--threads", type=int, default=16, help="request threads per worker process")
    p_api.add_argument("--workers", type=int, default=1,
                       help="API processes sharing the port (each builds its own app after the fork; "
                            "/metrics then sums them through PROMETHEUS_MULTIPROC_DIR)")

    for name, what in (("worker", "event handlers, RPC and timers (nameko)"),
                       ("relay", "the outbox relay: publishes stored events to the broker")):
        p = sub.add_parser(name, formatter_class=fmt, help=f"run a service's {name}: {what}")
        p.add_argument("--service", choices=SERVICES, required=True, help="which service")

    p_top = sub.add_parser("topology", formatter_class=fmt, help="declare the broker topology (exchanges, queues, bindings)")
    p_top.add_argument("--ward", action="append", default=[], metavar="WARD_ID",
                       help="at the centre: also keep this ward office's events in its downlink queue "
                            "(repeatable; the edge profile declares its own when it can reach the centre)")
    sub.add_parser("rotate-keys", formatter_class=fmt,
                   help="identity: new token signing key; prune keys no token still needs")
    p_keys = sub.add_parser("new-keys", formatter_class=fmt,
                            help="write the keys a cluster's API replicas share (for its Secrets)")
    p_keys.add_argument("directory", help="where to write result-ca.pem (dossier) and kiosk-device.key (queue)")
    p_prep = sub.add_parser("prepare", formatter_class=fmt, help="create indexes and reference data (safe to repeat)")
    p_prep.add_argument("--service", choices=SERVICES, required=True, help="which service's database")
    p_prep.add_argument("--demo", action="store_true", help="also load the demo wards, staff and queue set-up")

    p_wards = sub.add_parser("wards", formatter_class=fmt, help="open wards by official code, a province at a time",
                             description="Open communes and wards (the 3,321 in force since 1 July 2025) through "
                                         "identity's own use case; safe to run twice. Uses MONGO_URL, or the "
                                         "database of the `motcua up` running in MOTCUA_DATA_DIR.")
    wards_sub = p_wards.add_subparsers(dest="wards_command", required=True, metavar="ACTION")
    p_open = wards_sub.add_parser("open", formatter_class=fmt, help="open every commune and ward of a province")
    p_open.add_argument("--province", required=True, metavar="CODE", help="the province's code, e.g. 19 (Thái Nguyên)")
    p_import = wards_sub.add_parser("import", formatter_class=fmt,
                                    help="open the wards a CSV lists: official_code,ward_id,target_population")
    p_import.add_argument("file", help="a CSV file with a header line; ward_id and target_population may be empty")

    p_dead = sub.add_parser("dead-letters", formatter_class=fmt, help="what the consumers set aside, and replaying it",
                            description="Events a consumer could not handle: its retries failed, it was malformed, "
                                        "or it was delivered more than MOTCUA_CONSUMER_DELIVERY_LIMIT times without "
                                        "an acknowledgement (a handler that kills its worker).")
    dead_sub = p_dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    p_dead_list = dead_sub.add_parser("list", formatter_class=fmt, help="each dead-letter queue's events and why")
    p_dead_list.add_argument("--queue", help="one consumer queue (or its .dead queue) only")
    p_dead_replay = dead_sub.add_parser("replay", formatter_class=fmt,
                                        help="send a queue's dead letters back to its consumer (idempotent consumers)")
    p_dead_replay.add_argument("queue", help="the consumer queue or its .dead queue, e.g. notify.dossier.DossierSubmitted")
    p_dead_replay.add_argument("--event-id", help="only this event")

    p_backup = sub.add_parser("backup", formatter_class=fmt, help="write every service's database to a folder (while running)",
                              description="Every service's database into DIR (manifest.json, one .bson and one "
                                          ".indexes.json per collection), while the platform runs. Uses MONGO_URL, or "
                                          "the database of the `motcua up` in MOTCUA_DATA_DIR (or its files when stopped).")
    p_backup.add_argument("directory", help="a new or empty folder")
    p_restore = sub.add_parser("restore", formatter_class=fmt, help="load a backup into a stopped platform's empty data",
                               description="Load DIR (from `motcua backup`) into empty databases: MONGO_URL, or the "
                                           "embedded database in MOTCUA_DATA_DIR. Today's ticket numbering then "
                                           "continues past a gap, so no number issued after the backup is reissued.")
    p_restore.add_argument("directory", help="the backup's folder")

    p_sim = sub.add_parser("simulate", formatter_class=fmt,
                           help="play ward days against a running platform (load and demo)")
    p_sim.add_argument("--base-url", default="http://127.0.0.1:8080", help="the running platform")
    p_sim.add_argument("--wards", type=int, default=2, help="how many wards play at once")
    p_sim.add_argument("--minutes", type=float, default=2.0, help="wall-clock minutes for one office day")
    p_sim.add_argument("--rate", type=float, default=120, help="kiosk tickets per ward per day")
    p_sim.add_argument("--online-rate", type=float, default=30, help="online dossiers per ward per day")
    p_sim.add_argument("--seed", type=int, help="random seed, to replay a day exactly (default: a new day each run)")
    p_sim.add_argument("--concurrency", type=int, default=64, help="citizens acting at once, at most")
    p_sim.add_argument("--admin-password", help="to create wards beyond the demo ones (MOTCUA_ADMIN_PASSWORD)")
    p_sim.add_argument("--sms-sink-port", type=int,
                       help="be the SMS gateway on this port (SMS_GATEWAY_URL=http://127.0.0.1:PORT/sms) "
                            "and check every dossier's SMS")
    p_sim.add_argument("--province", metavar="CODE",
                       help="every commune and ward of this province by official code (01: Hà Nội's 126), "
                            "counters and day for each one's size (needs --admin-password)")
    p_sim.add_argument("--speed", type=float, metavar="X",
                       help="play the office day X times faster than real time (instead of --minutes)")
    p_sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    from motcua_platform import audit_cli

    audit_cli.add_parser(sub, fmt)
    parser.set_defaults(p_up=p_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except Unavailable as exc:
        print(f"motcua: error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


def _settings():
    """Settings from the environment; without MONGO_URL, the database of the `motcua up`
    running with this MOTCUA_DATA_DIR (it leaves its address in the data directory)."""
    import os
    from pathlib import Path

    from motcua_common.config import Settings

    env = dict(os.environ)
    running = Path(env.get("MOTCUA_DATA_DIR", ".motcua")) / "mongo-url"
    if not env.get("MONGO_URL") and running.exists():
        env["MONGO_URL"] = running.read_text().strip()
    return Settings.from_env(env)


def _dead_letters(args) -> int:
    from motcua_platform import dead_letters

    settings = _settings()
    check_broker(settings.amqp_url)
    try:
        if args.dead_command == "list":
            found = dead_letters.list_dead(settings, args.queue)
            for queue, letters in found.items():
                print(f"{queue}: {len(letters)}")
                for letter in letters:
                    print(f"  {letter.event_id}  {letter.dead_at}  {letter.reason}")
            if not found:
                print("no dead letters")
            return 0
        moved = dead_letters.replay(settings, args.queue, args.event_id)
        print(f"{moved} event(s) sent back to {args.queue.removesuffix('.dead')}")
        return 0
    except ValueError as exc:
        print(f"motcua: error: {exc}", file=sys.stderr)
        return 1


def _backup_or_restore(args) -> int:
    from pathlib import Path

    from pymongo.errors import PyMongoError

    from motcua_platform import backup

    settings = _settings()
    if args.command == "restore":
        # Read the backup before touching any database: a wrong folder is said at once.
        try:
            backup.read_manifest(Path(args.directory))
        except backup.BackupError as exc:
            print(f"motcua: error: {exc}", file=sys.stderr)
            return 1
    try:
        with backup.database_for(settings) as client:
            if args.command == "backup":
                manifest = backup.backup(settings, Path(args.directory), client)
                print(f"backup written to {args.directory} (taken at {manifest['taken_at']})")
            else:
                manifest = backup.restore(settings, Path(args.directory), client)
                print(f"restored the backup taken at {manifest['taken_at']}")
    except backup.BackupError as exc:
        print(f"motcua: error: {exc}", file=sys.stderr)
        return 1
    except PyMongoError as exc:
        print(f"motcua: error: the database refused the {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _wards(args) -> int:
    from pathlib import Path

    from motcua_platform import wards

    settings = _settings()
    check_database(settings.mongo_url)
    if args.wards_command == "open":
        rows = [wards.Row(0, code, None, None) for code in wards.province_units(args.province)]
        problems = []
    else:
        path = Path(args.file)
        if not path.is_file():
            print(f"motcua: error: {path}: no such file", file=sys.stderr)
            return 1
        rows, problems = wards.read_csv(path)
    tally = wards.open_many(settings, rows, wards.Progress(len(rows)))
    for line in problems + tally.refused:
        print(f"motcua: {line}", file=sys.stderr)
    print(tally.summary() + (f", {len(problems)} unreadable" if problems else ""))
    return 0 if not (problems or tally.refused) else 1


def _run(args) -> int:
    if args.command == "worker":
        import eventlet

        eventlet.monkey_patch()
        from motcua_platform.worker import run

        run(args.service)
        return 0
    if args.command == "up":
        if args.profile == "edge":
            missing = [f"--{name}" for name in ("ward", "upstream", "central") if not getattr(args, name)]
            if missing:
                args.p_up.error(f"--profile edge needs {', '.join(missing)}")
            if args.service_workers is not None:
                # One ward's load: the office's box keeps one worker per service.
                args.p_up.error("--service-workers is for the central platform, not --profile edge")
            from motcua_platform.edge import up_edge

            return up_edge(port=args.port, demo=args.demo, ward_id=args.ward, upstream=args.upstream,
                           central=args.central, host=args.host)
        from motcua_platform.launcher import service_workers, up

        if args.api_processes is not None:
            os.environ["MOTCUA_API_PROCESSES"] = str(args.api_processes)
        # Checked before anything starts: a bad SPEC is bad usage (exit 2), like a bad option.
        try:
            if args.service_workers is not None:
                workers = service_workers(args.service_workers, source="--service-workers")
            else:
                workers = service_workers(os.environ.get("MOTCUA_SERVICE_WORKERS"))
        except ValueError as exc:
            args.p_up.error(str(exc))
        return up(port=args.port, demo=args.demo, host=args.host, workers=workers)
    if args.command == "api":
        from motcua_platform.apiserver import combined_app, serve, service_app, service_modules
        from motcua_common.logs import configure_logging
        from motcua_common.tracing import configure_tracing

        settings = _settings()
        configure_logging(args.service or "platform", "api", settings.log_level)

        def build():
            # In each API process after gunicorn's fork: clients and tracing are per process.
            configure_tracing(args.service or "platform", "api")
            return combined_app(settings) if args.all else service_app(args.service, settings)

        serve(build, args.host, args.port, threads=args.threads, workers=args.workers,
              preload=service_modules(SERVICES if args.all else (args.service,)))
        return 0
    if args.command == "relay":
        from motcua_common.relay import main as relay_main

        relay_main(args.service)
        return 0
    if args.command == "topology":
        from motcua_common.topology import declare_with_url

        settings = _settings()
        check_broker(settings.amqp_url)
        declare_with_url(settings)
        if args.ward:
            from motcua_platform.edge import declare_downlinks

            for queue in declare_downlinks(settings.amqp_url, args.ward):
                print(f"declared {queue}")
        return 0
    if args.command == "new-keys":
        return _new_keys(args.directory)
    if args.command == "rotate-keys":
        from motcua_identity.deps import key_ring

        settings = _settings()
        check_database(settings.mongo_url)
        print(f"new signing key {key_ring(settings).rotate()}")
        return 0
    if args.command == "wards":
        return _wards(args)
    if args.command == "dead-letters":
        return _dead_letters(args)
    if args.command in ("backup", "restore"):
        return _backup_or_restore(args)
    if args.command == "audit":
        from motcua_platform import audit_cli

        settings = _settings()
        check_database(settings.mongo_url)
        return audit_cli.run(args, settings)
    if args.command == "simulate":
        from motcua_platform.simulate import main as simulate_main

        return simulate_main(args)
    if args.command == "prepare":
        import importlib

        settings = _settings()
        check_database(settings.mongo_url)
        importlib.import_module(f"motcua_{args.service}.bootstrap").prepare(settings, demo=args.demo)
        return 0
    return 1


def _new_keys(directory: str) -> int:
    """New shared keys, readable by the owner only; an existing file is never replaced
    (a new authority would make every result signed before it fail to verify)."""
    from pathlib import Path

    from motcua_common.keyfiles import write_new
    from motcua_dossier.signing_keys import new_authority_pem
    from motcua_queue.devices import new_device_key

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in (("result-ca.pem", new_authority_pem), ("kiosk-device.key", lambda: new_device_key().encode())):
        path = out / name
        if write_new(path, make()):
            print(f"wrote {path}")
        else:
            print(f"{path} exists; kept", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
