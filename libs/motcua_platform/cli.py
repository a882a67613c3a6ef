"""The `motcua` command.

  motcua up [--demo] [--port 8080]        the whole platform on one machine
  motcua api --service S | --all          serve the API(s) (gunicorn)
  motcua worker --service S               the service's nameko worker
  motcua relay --service S                the service's outbox relay
  motcua topology                         declare exchanges, queues and bindings
  motcua prepare --service S [--demo]     indexes, bootstrap admin, reference data
  motcua simulate --wards N --minutes M   play ward days against a running platform

Heavy imports happen inside each command: the worker must monkey-patch with eventlet
before anything else is imported."""
from __future__ import annotations

import argparse
import sys

SERVICES = ("identity", "dossier", "queue", "notify", "rating")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="motcua", description="Một Cửa — the ward one-stop-shop platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p_up = sub.add_parser("up", help="run the whole platform on this machine")
    p_up.add_argument("--demo", action="store_true", help="load demo wards, queue services, counters and the catalog")
    p_up.add_argument("--port", type=int, default=8080)
    p_up.add_argument("--host", default="127.0.0.1")
    p_up.add_argument("--profile", choices=["central", "edge"], default="central")
    p_up.add_argument("--ward")
    p_up.add_argument("--upstream")
    p_up.add_argument("--central")

    p_api = sub.add_parser("api", help="serve the HTTP API")
    group = p_api.add_mutually_exclusive_group(required=True)
    group.add_argument("--service", choices=SERVICES)
    group.add_argument("--all", action="store_true")
    p_api.add_argument("--host", default="0.0.0.0")
    p_api.add_argument("--port", type=int, default=8080)
    p_api.add_argument("--threads", type=int, default=16)
    p_api.add_argument("--workers", type=int, default=1)

    for name in ("worker", "relay"):
        p = sub.add_parser(name, help=f"run a service's {name}")
        p.add_argument("--service", choices=SERVICES, required=True)

    p_top = sub.add_parser("topology", help="declare the broker topology")
    p_top.add_argument("--ward", action="append", default=[], metavar="WARD_ID",
                       help="at the centre: also keep this ward office's events in its downlink queue "
                            "(repeatable; the edge profile declares its own when it can reach the centre)")
    sub.add_parser("rotate-keys", help="identity: new token signing key; prune keys no token still needs")
    p_keys = sub.add_parser("new-keys", help="write the keys a cluster's API replicas share (for its Secrets)")
    p_keys.add_argument("directory", help="where to write result-ca.pem (dossier) and kiosk-device.key (queue)")
    p_prep = sub.add_parser("prepare", help="create indexes and reference data")
    p_prep.add_argument("--service", choices=SERVICES, required=True)
    p_prep.add_argument("--demo", action="store_true")

    p_sim = sub.add_parser("simulate", help="play ward days against a running platform (load and demo)")
    p_sim.add_argument("--base-url", default="http://127.0.0.1:8080")
    p_sim.add_argument("--wards", type=int, default=2)
    p_sim.add_argument("--minutes", type=float, default=2.0, help="wall-clock minutes for one office day")
    p_sim.add_argument("--rate", type=float, default=120, help="kiosk tickets per ward per day")
    p_sim.add_argument("--online-rate", type=float, default=30, help="online dossiers per ward per day")
    p_sim.add_argument("--seed", type=int)
    p_sim.add_argument("--concurrency", type=int, default=64, help="citizens acting at once, at most")
    p_sim.add_argument("--admin-password", help="to create wards beyond the demo ones (MOTCUA_ADMIN_PASSWORD)")
    p_sim.add_argument("--mongo-url", help="the platform's database, for the queue set-up of created wards")
    p_sim.add_argument("--sms-sink-port", type=int,
                       help="be the SMS gateway on this port (SMS_GATEWAY_URL=http://127.0.0.1:PORT/sms) and check every dossier's SMS")
    p_sim.add_argument("--json", action="store_true", help="print the summary as JSON")

    args = parser.parse_args(argv)

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
                p_up.error(f"--profile edge needs {', '.join(missing)}")
            from motcua_platform.edge import up_edge

            return up_edge(port=args.port, demo=args.demo, ward_id=args.ward, upstream=args.upstream,
                           central=args.central, host=args.host)
        from motcua_platform.launcher import up

        return up(port=args.port, demo=args.demo, host=args.host)
    if args.command == "api":
        from motcua_platform.apiserver import combined_app, serve, service_app
        from motcua_common.config import Settings
        from motcua_common.logs import configure_logging
        from motcua_common.tracing import configure_tracing

        settings = Settings.from_env()
        configure_logging(args.service or "platform", "api", settings.log_level)
        configure_tracing(args.service or "platform", "api")
        app = combined_app(settings) if args.all else service_app(args.service, settings)
        serve(app, args.host, args.port, threads=args.threads, workers=args.workers)
        return 0
    if args.command == "relay":
        from motcua_common.relay import main as relay_main

        relay_main(args.service)
        return 0
    if args.command == "topology":
        from motcua_common.config import Settings
        from motcua_common.topology import declare_with_url

        settings = Settings.from_env()
        declare_with_url(settings)
        if args.ward:
            from motcua_platform.edge import declare_downlinks

            for queue in declare_downlinks(settings.amqp_url, args.ward):
                print(f"declared {queue}")
        return 0
    if args.command == "new-keys":
        return _new_keys(args.directory)
    if args.command == "rotate-keys":
        from motcua_identity.api import key_ring

        from motcua_common.config import Settings

        print(f"new signing key {key_ring(Settings.from_env()).rotate()}")
        return 0
    if args.command == "simulate":
        from motcua_platform.simulate import main as simulate_main

        return simulate_main(args)
    if args.command == "prepare":
        import importlib

        from motcua_common.config import Settings

        importlib.import_module(f"motcua_{args.service}.bootstrap").prepare(Settings.from_env(), demo=args.demo)
        return 0
    return 1


def _new_keys(directory: str) -> int:
    """New shared keys, readable by the owner only; an existing file is never replaced
    (a new authority would make every result signed before it fail to verify)."""
    import os
    from pathlib import Path

    from motcua_dossier.signing_keys import new_authority_pem
    from motcua_queue.devices import new_device_key

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in (("result-ca.pem", new_authority_pem), ("kiosk-device.key", lambda: new_device_key().encode())):
        path = out / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            print(f"{path} exists; kept", file=sys.stderr)
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(make())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
