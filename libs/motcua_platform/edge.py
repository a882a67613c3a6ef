"""The ward edge: one ward's office on its own broker (`motcua up --profile edge`).

A ward's kiosks, counters and board must keep working when the WAN link to the city's
data centre drops (DESIGN.md R14). The edge runs queue and rating (APIs with their
pages, workers, relays) against the office's local RabbitMQ (AMQP_URL) and a local
database, and carries what they publish to the central broker with a RabbitMQ dynamic
shovel per exchange:

    queue.events  --#-->  motcua.uplink.queue.events  --shovel-->  queue.events (centre)
    rating.events --#-->  motcua.uplink.rating.events --shovel-->  rating.events (centre)

The uplink queues are durable quorum queues, so events wait in the office while the link
is down. The shovel acknowledges a message in the office only after the central broker
confirmed it (`ack-mode: on-confirm`) and reconnects forever; a message confirmed
upstream whose ack was lost with the link is sent again, which the centre's idempotent
consumers absorb (they remember event ids). One shovel per exchange keeps each exchange's
events in publication order. These are the same names the Helm chart's edge broker uses.

Officers sign in at the office's own address with the link up or down (office_gate.py):
the centre's identity answers when it can, the office's own key signs a working day's
token when it cannot. The office's services verify tokens with the centre's keys and the
office key, kept on disk (jwks_cache) so that an edge restarted during an outage still
lets officers work.

The centre's events the office needs (topology.downlink_event_types: queue's appointments
from DossierSubmitted, rating's dossier ratings) come down the other way:

    dossier.events (centre) --type--> motcua.downlink (headers, centre)
        --ward_id=<ward>--> motcua.downlink.<ward> (quorum queue at the centre)
        --shovel, on the office's node--> motcua.downlink.in (office) --type--> dossier.events (office)

The queue at the centre keeps the ward's events while the link is down; the shovel runs in
the office (it pulls), acknowledges at the centre only after the office's broker confirmed,
and the office's consumers are idempotent for what a lost ack sends twice. The office
declares its queue at the centre when it starts (retrying in the background while the
link is down): events published before the office first declared it are not kept for it.

Counter intake while the link is down (office_intake.py): the dossiers the office takes go
up the same way, one uplink more, to the centre's dossier worker (never onto the public
event exchanges: they carry the citizen's national id):

    motcua.office-filings --#--> motcua.uplink.motcua.office-filings --shovel-->
        motcua.office-filings (centre) --#--> dossier.office-filings (quorum queue)"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlparse, urlunparse

from motcua_common import wards
from motcua_common.events import EVENT_TYPES, exchange_for
from motcua_platform.launcher import Child, LaunchError, Platform, say
from motcua_common.topology import (DOWNLINK_EXCHANGE, EDGE_SERVICES, WARD_HEADER, QueueBounds, declare_bounded_queue,
                                    downlink_event_types)

# motcua_dossier.office_filings' exchange and queue, and its declare() below
# (tests/platform/test_api_processes.py checks they agree): importing that module brings in
# dossier's whole domain, 70 MB kept all day in the office's supervisor and API.
FILINGS_EXCHANGE = "motcua.office-filings"
FILINGS_QUEUE = "dossier.office-filings"


def declare_filings(channel) -> None:
    """office_filings.declare, without importing dossier's domain."""
    channel.exchange_declare(FILINGS_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(FILINGS_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(FILINGS_QUEUE, FILINGS_EXCHANGE, routing_key="#")
SHOVEL_PLUGIN = "rabbitmq_shovel"
JWKS_PATH = "/identity/.well-known/jwks.json"
WARD_ID = wards.WARD_ID


@dataclass(frozen=True)
class Uplink:
    """One exchange of the office carried to the same exchange at the centre."""

    exchange: str

    @property
    def queue(self) -> str:
        return f"motcua.uplink.{self.exchange}"

    @property
    def shovel(self) -> str:
        return f"motcua-uplink-{self.exchange}"


UPLINKS = tuple(Uplink(exchange_for(service)) for service in EDGE_SERVICES)
# The dossiers taken at the office while cut off, to the centre's dossier service alone.
FILINGS_UPLINK = Uplink(FILINGS_EXCHANGE)


@dataclass(frozen=True)
class Downlink:
    """The centre's events for one ward, from a queue at the centre to the office."""

    ward_id: str
    exchange: str = "motcua.downlink.in"  # the office's entry point, bound to the source exchanges

    @property
    def queue(self) -> str:
        return f"motcua.downlink.{self.ward_id}"

    shovel = "motcua-downlink"


# ---------------------------------------------------------------- definitions (pure)
def upstream_uri(url: str, heartbeat: int = 10) -> str:
    """The central broker's address for the shovel, with a heartbeat unless one is given:
    a WAN that drops packets silently is noticed in seconds, not at TCP's pace."""
    parsed = urlparse(url)
    if parsed.scheme not in ("amqp", "amqps") or not parsed.hostname:
        raise ValueError("the upstream must be an amqp:// or amqps:// URL with a host")
    query = dict(parse_qsl(parsed.query))
    query.setdefault("heartbeat", str(heartbeat))
    return urlunparse(parsed._replace(query=urlencode(query)))


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return urlunparse(parsed._replace(netloc=netloc))


def local_uri(vhost: str) -> str:
    """The shovel's source: the node it runs on (a direct connection, no credentials)."""
    return "amqp://" if vhost == "/" else f"amqp:///{quote(vhost, safe='')}"


def shovel_value(uplink: Uplink, vhost: str, upstream: str, reconnect_delay: int = 5,
                 prefetch: int = 100) -> dict:
    return {
        "src-protocol": "amqp091",
        "src-uri": local_uri(vhost),
        "src-queue": uplink.queue,
        "src-prefetch-count": prefetch,
        "dest-protocol": "amqp091",
        "dest-uri": upstream,
        # No dest-exchange-key: each event keeps its routing key (its type) at the centre.
        "dest-exchange": uplink.exchange,
        "ack-mode": "on-confirm",
        "reconnect-delay": reconnect_delay,
        "src-delete-after": "never",
    }


def downlink_shovel_value(downlink: Downlink, vhost: str, upstream: str, reconnect_delay: int = 5,
                          prefetch: int = 100) -> dict:
    return {
        "src-protocol": "amqp091",
        "src-uri": upstream,
        "src-queue": downlink.queue,
        "src-prefetch-count": prefetch,
        "dest-protocol": "amqp091",
        "dest-uri": local_uri(vhost),
        "dest-exchange": downlink.exchange,
        "ack-mode": "on-confirm",
        "reconnect-delay": reconnect_delay,
        "src-delete-after": "never",
    }


def shovel_definitions(vhost: str, upstream: str, reconnect_delay: int = 5, ward_id: str | None = None) -> dict:
    """The shovels as RabbitMQ definitions (the format `rabbitmqctl import_definitions` reads):
    the uplinks, and the downlink of `ward_id` when given."""
    parameters = [{"component": "shovel", "vhost": vhost, "name": u.shovel,
                   "value": shovel_value(u, vhost, upstream, reconnect_delay)} for u in UPLINKS + (FILINGS_UPLINK,)]
    if ward_id is not None:
        downlink = Downlink(ward_id)
        parameters.append({"component": "shovel", "vhost": vhost, "name": downlink.shovel,
                           "value": downlink_shovel_value(downlink, vhost, upstream, reconnect_delay)})
    return {"parameters": parameters}


def declare_downlink_entry(channel, downlink: Downlink) -> None:
    """In the office: where the shovel delivers, routed by event type to the exchange the
    office's consumers are bound to (declared by topology, as at the centre)."""
    channel.exchange_declare(downlink.exchange, exchange_type="topic", durable=True)
    for event_type in downlink_event_types():
        source = exchange_for(EVENT_TYPES[event_type][0])
        channel.exchange_declare(source, exchange_type="topic", durable=True)
        channel.exchange_bind(source, downlink.exchange, routing_key=event_type)


def declare_downlink_queue(connection, downlink: Downlink, bounds: QueueBounds | None = None) -> None:
    """At the centre (a pika connection): the ward's queue, bounded (topology.QueueBounds:
    one office offline for months must not fill the central broker's disk), bound to the
    headers exchange for this ward only. If the office's shovel got there first while the
    link came back, it declared a plain durable queue of that name: it is kept (still
    durable) and bound, and the log says how to bound it."""
    connection.channel().exchange_declare(DOWNLINK_EXCHANGE, exchange_type="headers", durable=True)
    channel = declare_bounded_queue(connection, downlink.queue, (bounds or QueueBounds.from_env()).downlink_arguments())
    channel.queue_bind(downlink.queue, DOWNLINK_EXCHANGE,
                       arguments={"x-match": "all", WARD_HEADER: downlink.ward_id})


def declare_uplinks(channel, bounds: QueueBounds | None = None) -> None:
    """The office's exchanges (as topology declares them) and a durable queue per exchange
    that keeps every event until the centre has confirmed it, bounded (topology.QueueBounds:
    beyond it the office's relays keep events pending in the office's outbox)."""
    arguments = (bounds or QueueBounds.from_env()).uplink_arguments()
    for uplink in UPLINKS + (FILINGS_UPLINK,):
        channel.exchange_declare(uplink.exchange, exchange_type="topic", durable=True)
        channel = declare_bounded_queue(channel.connection, uplink.queue, arguments)
        channel.queue_bind(uplink.queue, uplink.exchange, routing_key="#")


def uplink_backlog(channel) -> dict[str, int]:
    """Events waiting in the office for the link, per exchange."""
    return {u.exchange: channel.queue_declare(u.queue, passive=True).method.message_count for u in UPLINKS}


def declare_downlinks(amqp_url: str, ward_ids: list[str]) -> list[str]:
    """At the centre (`motcua topology --ward ...`): each office's downlink queue."""
    import pika

    for ward_id in ward_ids:
        if not WARD_ID.match(ward_id):
            raise SystemExit(f"--ward {ward_id!r} is not a ward id (lower-case letters, digits, '-')")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        for ward_id in ward_ids:
            declare_downlink_queue(connection, Downlink(ward_id))
    finally:
        connection.close()
    return [Downlink(ward_id).queue for ward_id in ward_ids]


# ---------------------------------------------------------------- the local broker
class BrokerToolTimeout(RuntimeError, subprocess.TimeoutExpired):
    """A rabbitmqctl / rabbitmq-plugins call killed when its timeout ran out; the message
    names the command. A RuntimeError like the tools' other failures (and a TimeoutExpired,
    as subprocess.run raised before)."""

    def __init__(self, message: str, command: list[str], timeout: float):
        RuntimeError.__init__(self, message)
        self.cmd, self.timeout, self.output, self.stderr = command, timeout, None, None

    def __str__(self) -> str:
        return self.args[0]


def _kill_process_tree(pid: int) -> None:
    """`pid`, its process group and every process under it, wherever their sessions: each is
    stopped first (so that none starts another, or is reparented out of sight, meanwhile),
    then all are killed."""
    def children() -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        found.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
        return found

    stopped: list[int] = []
    for _ in range(3):  # until no new one shows up
        tree, todo = [pid], [pid]
        below = children()
        while todo:
            for child in below.get(todo.pop(), []):
                tree.append(child)
                todo.append(child)
        more = [p for p in tree if p not in stopped]
        if not more:
            break
        for p in more:
            try:
                os.kill(p, signal.SIGSTOP)
            except OSError:  # gone already
                pass
        stopped += more
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:  # gone already
        pass
    for p in stopped:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:  # gone already
            pass


class BrokerControl:
    """rabbitmqctl / rabbitmq-plugins against the office's node (RABBITMQ_NODENAME, or the
    tools' default). No management plugin needed: shovels are runtime parameters."""

    def __init__(self, node: str | None = None):
        self.node = node

    def _tool(self, name: str) -> str:
        path = shutil.which(name) or f"/usr/sbin/{name}"
        if not os.path.exists(path):
            raise LaunchError(f"{name} not found: the edge needs the local RabbitMQ's tools "
                              "(apt-get install rabbitmq-server)")
        return path

    def run(self, tool: str, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        """The tool's standard output; RuntimeError when it exits non-zero, BrokerToolTimeout
        (a RuntimeError too) when it has not finished in `timeout` seconds. A call that runs
        out of time is killed with every process it started: as root, rabbitmqctl runs the
        tool through `su rabbitmq -c`, which puts the Erlang VM in a session of its own, where
        neither killing the script nor its process group reaches it; left running, the VM
        keeps one of the eleven CLI distribution ports every rabbitmqctl on the machine shares,
        and a few of them make every later call fail with `nodistribution`."""
        argv = [self._tool(tool)] + (["-n", self.node] if self.node else []) + list(args)
        process = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else None,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except BaseException as exc:  # out of time, or interrupted: leave no tool running
            _kill_process_tree(process.pid)
            process.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                shown = " ".join([tool] + argv[1:])
                raise BrokerToolTimeout(f"`{shown}` did not finish in {timeout:g} s; killed with every process "
                                        "it had started", argv, timeout) from None
            raise
        if process.returncode != 0:
            raise RuntimeError(f"{tool} {args[0]} failed: {(err or out).strip()[:500]}")
        return out

    def shovel_plugin_running(self) -> bool:
        return f"{{{SHOVEL_PLUGIN}," in self.run("rabbitmqctl", "eval", "application:which_applications().")

    def enable_shovel_plugin(self) -> None:
        if not self.shovel_plugin_running():
            self.run("rabbitmq-plugins", "enable", SHOVEL_PLUGIN)

    def install_shovels(self, definitions: dict) -> None:
        # Through stdin, so that the upstream's password never shows on a command line.
        self.run("rabbitmqctl", "import_definitions", "--format", "json", stdin=json.dumps(definitions))

    def shovel_states(self) -> dict[str, str]:
        """name -> running | starting | terminated, as the shovel plugin reports them."""
        out = self.run("rabbitmqctl", "eval", "rabbit_shovel_status:status().", timeout=30)
        return {name: state for name, state in re.findall(r'<<"([^"]+)">>\},\s*dynamic,\s*\{?(\w+)', out)}


# ---------------------------------------------------------------- serving one ward
class OneWard:
    """WSGI middleware: the office serves its own ward only. A path naming another ward is
    answered 404 with a clear problem instead of an empty queue that looks real."""

    WARD_IN_PATH = re.compile(r"^/(?:queue|rating)/(?:api/v1/wards|kiosk|board|counter|rate)/([^/]+)")

    def __init__(self, app, ward_id: str):
        self.app, self.ward_id = app, ward_id

    def __call__(self, environ, start_response):
        match = self.WARD_IN_PATH.match(environ.get("PATH_INFO", ""))
        if match and match.group(1) != self.ward_id:
            from werkzeug.wrappers import Response

            body = json.dumps({
                "type": "about:blank", "title": "Không phục vụ phường này", "status": 404,
                "code": "ward_not_served_here",
                "detail": f"Máy chủ này chỉ phục vụ phường {self.ward_id}. / This office serves ward {self.ward_id} only.",
            }, ensure_ascii=False)
            return Response(body, status=404, mimetype="application/problem+json")(environ, start_response)
        return self.app(environ, start_response)


def serve_api(host: str, port: int, ward_id: str) -> None:
    from motcua_platform.apiserver import serve
    from motcua_common.config import Settings
    from motcua_common.logs import configure_logging

    settings = Settings.from_env()
    configure_logging("edge", "api", settings.log_level)

    def build():
        # In gunicorn's worker, after the fork: the gate's and the services' database clients
        # are not fork-safe, and gunicorn's parent then holds no copy of the app (its memory).
        from motcua_common.mongo import service_database
        from motcua_platform import office_desk, office_intake
        from motcua_platform.apiserver import combined_app
        from motcua_platform.office_gate import CentreLookups, OfficeGate, OfficeRouter, gate_app

        central = os.environ["MOTCUA_CENTRAL_URL"]
        gate = OfficeGate(settings, ward_id, central, Path(os.environ["MOTCUA_CENTRAL_JWKS_CACHE"]))
        services = OneWard(combined_app(settings, services=EDGE_SERVICES), ward_id)
        catalog_cache = Path(settings.data_dir) / "catalog-cache.json"
        lookups = CentreLookups(central, catalog_cache)
        gate_wsgi = gate_app(gate, lookups)
        # Counter intake while cut off: the journal in the office's database; the centre's
        # confirmations are the appointments the office's queue records from DossierSubmitted.
        office_intake.ensure_indexes(gate.db)
        desk = office_intake.OfficeDesk(gate.db, ward_id, office_intake.kept_catalog(catalog_cache),
                                        appointments=service_database(gate.db.client, settings, "queue")["appointments"])
        office_desk.register(gate_wsgi, gate, desk, central)
        return OfficeRouter(gate_wsgi, services)

    serve(build, host, port)


class EdgePlatform(Platform):
    def __init__(self, port: int, demo: bool, ward_id: str, upstream: str, central: str,
                 host: str = "127.0.0.1", reconnect_delay: int = 5):
        super().__init__(port=port, demo=demo, host=host, services=EDGE_SERVICES)
        if not WARD_ID.match(ward_id):
            raise LaunchError(f"--ward {ward_id!r} is not a ward id (lower-case letters, digits, '-')")
        try:
            self.upstream = upstream_uri(upstream)
        except ValueError as exc:
            raise LaunchError(f"--upstream: {exc}") from None
        parsed = urlparse(central)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise LaunchError("--central must be the central platform's http(s) base URL")
        self.ward_id, self.central = ward_id, central.rstrip("/")
        self.reconnect_delay = reconnect_delay
        self.broker = BrokerControl(os.environ.get("RABBITMQ_NODENAME") or None)

    def _environment(self) -> dict:
        env = super()._environment()
        env["IDENTITY_URL"] = self.central
        env["MOTCUA_CENTRAL_URL"] = self.central
        # The centre's keys, kept on disk by the office gate (office_gate.py) ...
        env["MOTCUA_CENTRAL_JWKS_CACHE"] = str(Path(env["MOTCUA_DATA_DIR"]) / "jwks-cache.json")
        # ... and what the office's services trust: those keys and the office's own key,
        # published by the gate at the office's address (also kept on disk).
        env["JWKS_URL"] = f"http://127.0.0.1:{self.port}{JWKS_PATH}"
        env["MOTCUA_JWKS_CACHE_FILE"] = str(Path(env["MOTCUA_DATA_DIR"]) / "jwks-office-cache.json")
        env["MOTCUA_EDGE_WARD"] = self.ward_id
        return env

    def _prepare(self, settings) -> None:
        import pika

        super()._prepare(settings)
        try:
            self.broker.enable_shovel_plugin()
        except RuntimeError as exc:
            raise LaunchError(f"could not enable {SHOVEL_PLUGIN} on the local broker: {exc}") from None
        downlink = Downlink(self.ward_id)
        connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
        try:
            declare_uplinks(connection.channel())
            declare_downlink_entry(connection.channel(), downlink)
            vhost = pika.URLParameters(settings.amqp_url).virtual_host
        finally:
            connection.close()
        # The queue at the centre first: a shovel finding none would declare a plain one.
        self._declare_at_centre(downlink)
        self.broker.install_shovels(shovel_definitions(vhost, self.upstream, self.reconnect_delay, self.ward_id))
        say(f"ward {self.ward_id}: events go up to {redacted(self.upstream)} through "
            f"{', '.join(u.shovel for u in UPLINKS + (FILINGS_UPLINK,))} (on-confirm, reconnecting every {self.reconnect_delay} s); "
            f"the centre's events for this ward come down from {downlink.queue} through {downlink.shovel}")
        self._prime_keys()
        self._prime_catalog()

    def _declare_at_centre(self, downlink: Downlink, retry_seconds: float = 15) -> None:
        """The ward's queue at the centre, now if the link works, else as soon as it does
        (in the background: the office serves meanwhile; until then the shovel retries)."""
        import threading

        import pika

        def declare() -> bool:
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.upstream))
            except Exception:
                return False
            try:
                declare_downlink_queue(connection, downlink)
                # Where the office's intake journal goes (the dossier worker declares it too).
                declare_filings(connection.channel())
                return True
            except Exception as exc:
                say(f"warning: could not declare {downlink.queue} at the centre: {exc.__class__.__name__}")
                return False
            finally:
                try:
                    connection.close()
                except Exception:
                    pass

        if declare():
            return
        say(f"warning: the centre's broker is unreachable; {downlink.queue} will be declared there when the "
            "link works (the centre's events for this ward are kept from then on)")

        def keep_trying() -> None:
            while not declare():
                time.sleep(retry_seconds)
            say(f"ward {self.ward_id}: {downlink.queue} declared at the centre")

        threading.Thread(target=keep_trying, name="downlink-declare", daemon=True).start()

    def _prime_keys(self) -> None:
        """Fetch the centre's keys now, so the office can verify tokens from its first
        minute even if the link drops right after; say so when only the disk copy is left."""
        import requests

        from motcua_common.jwks_cache import on_disk, read_cached

        cache = Path(self.env["MOTCUA_CENTRAL_JWKS_CACHE"])

        def fetch() -> dict:
            response = requests.get(self.central + JWKS_PATH, timeout=5)
            response.raise_for_status()
            return response.json()

        try:
            on_disk(fetch, cache)()
        except Exception:
            if read_cached(cache) is None:
                say(f"warning: {self.central} is unreachable and no keys are cached yet: officers "
                    "cannot sign in at this office until the link to the centre works once")

    def _prime_catalog(self) -> None:
        """The procedure catalog, kept at the office from its first minute: counter intake
        while cut off (office_intake.py) offers the procedures of this copy."""
        from motcua_platform.office_gate import CentreLookups

        _, status, headers = CentreLookups(self.central, Path(self.env["MOTCUA_DATA_DIR"]) / "catalog-cache.json").catalog()
        if status != 200:
            say("warning: no procedure catalog from the centre yet: counter intake at this office needs the link "
                "to work once")
        elif headers:
            say(f"the centre is unreachable: counter intake uses the catalog kept since {headers.get('X-Motcua-Kept-At')}")

    def _children(self) -> list[Child]:
        cli = [sys.executable, "-m", "motcua_platform.cli"]
        children = [Child("api", [sys.executable, "-m", "motcua_platform.edge", "api", "--host", self.host,
                                  "--port", str(self.port), "--ward", self.ward_id])]
        for service in self.services:
            children.append(Child(f"{service}-worker", cli + ["worker", "--service", service]))
            children.append(Child(f"{service}-relay", cli + ["relay", "--service", service]))
        # Hands the dossiers taken while cut off to the filings uplink (office_intake.py).
        children.append(Child("office-intake-courier", [sys.executable, "-m", "motcua_platform.office_intake",
                                                        "courier"]))
        return children


def up_edge(port: int, demo: bool, ward_id: str, upstream: str, central: str, host: str = "127.0.0.1") -> int:
    return EdgePlatform(port=port, demo=demo, ward_id=ward_id, upstream=upstream, central=central, host=host).run()


def wait_for_shovels(broker: BrokerControl, timeout: float = 30) -> dict[str, str]:
    """Until every uplink shovel reports running (for tests and the ops team)."""
    deadline = time.monotonic() + timeout
    while True:
        states = broker.shovel_states()
        if all(states.get(u.shovel) == "running" for u in UPLINKS + (FILINGS_UPLINK,)) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="motcua-edge-api")
    sub = parser.add_subparsers(dest="command", required=True)
    p_api = sub.add_parser("api", help="serve queue and rating for one ward")
    p_api.add_argument("--host", default="127.0.0.1")
    p_api.add_argument("--port", type=int, default=8080)
    p_api.add_argument("--ward", required=True)
    args = parser.parse_args(argv)
    serve_api(args.host, args.port, args.ward)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
