#!/usr/bin/env python3
"""The standby drill on one machine: how long the standby site takes to come up.

    python deploy/standby/drill.py [--tickets 200] [--keep]     (as root, from the repository)

What it does, timing each step (docs/runbooks/standby-site.md, "Setting the standby up" and
"Failover"):

  the central site (A)   `motcua up --demo` on a RabbitMQ node of its own and the embedded
                         database in a data dir of its own; a kiosk paired; tickets issued.
  the standby broker (B) a second RabbitMQ node on other ports (its data owned by `rabbitmq`),
                         with the federation and shovel plugins (both nodes have them, as the
                         chart's RabbitmqCluster); the federation upstream and policy of the
                         runbook's set-up step 6 pull A's five `*.events` exchanges, and
                         `motcua topology` declares the platform's queues there. Measured: the
                         links running, and an event's trip from A's API to B's queue.
  the backup             `motcua backup` from the running central site, then more tickets (on
                         slips: not in the backup), then A stops (the site is lost).
  the failover at B      federation stopped; what the standby's queues hold moved into
                         `motcua.standby.archive` by shovels (the runbook's step 2); `motcua
                         restore` into a fresh data dir; `motcua up` against B's broker; every
                         service's /readyz polled until all answer 200; a ticket issued, whose
                         number must be none of those A issued (before or after the backup).

Prints each step's time and a summary; exits 1 if a check fails. Needs root (the nodes run as
`rabbitmq`), Debian's rabbitmq-server (not running is fine: the machine's own broker is not
used) and the project installed (`motcua` importable). Nothing is downloaded; it cleans up
after itself unless --keep.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
SERVICES = ("identity", "dossier", "queue", "notify", "rating")
WARD = "tn-song-cong"  # a demo ward
FEDERATED = r"^(identity|dossier|queue|notify|rating)\.events$"
# <consumer>.<source>.<EventType>: not the retry and dead-letter queues, the federation's, the
# downlinks or the archive (whose events must not expire with the TTL policy).
CONSUMER_QUEUE = r"^(identity|dossier|queue|notify|rating)\.(identity|dossier|queue|notify|rating)\.[A-Za-z]+$"
ARCHIVE = "motcua.standby.archive"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Clock:
    """Named steps and their durations, printed as they finish."""

    def __init__(self):
        self.steps: list[tuple[str, float]] = []

    def step(self, name: str):
        clock = self

        class _Step:
            def __enter__(self):
                self.start = time.monotonic()
                print(f"... {name}", flush=True)
                return self

            def __exit__(self, kind, value, tb):
                if kind is None:
                    took = time.monotonic() - self.start
                    clock.steps.append((name, took))
                    print(f"{took:8.1f} s  {name}", flush=True)

        return _Step()


def rabbitmqctl(*args: str, node: str | None = None, plugins: Path | None = None, timeout: float = 60) -> str:
    command = ["rabbitmqctl", *(["-n", node] if node else []), *args]
    # The CLI finds the plugins' commands (federation_status) from the enabled-plugins file. It
    # listens on a distribution port of its own: by default one of 35672-35682, which the CLI
    # calls of a busy machine's other work can all hold at once ("nodistribution").
    port = str(free_port())
    env = dict(os.environ, RABBITMQ_CTL_DIST_PORT_MIN=port, RABBITMQ_CTL_DIST_PORT_MAX=port,
               **({"RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins)} if plugins else {}))
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}: {(result.stderr or result.stdout).strip()[:400]}")
    return result.stdout


class StandbyBroker:
    """A RabbitMQ node on ports of its own (the standby data centre's broker, or the drill's
    central one), with the federation and shovel plugins as the chart's RabbitmqCluster has."""

    def __init__(self, base: Path, role: str = "standby"):
        self.base = base
        self.name = f"motcua-{role}-{uuid.uuid4().hex[:6]}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        self.base.mkdir(parents=True)
        (self.base / "enabled_plugins").write_text("[rabbitmq_federation,rabbitmq_shovel].\n")
        (self.base / "rabbitmq.conf").write_text("")
        for path in (self.base, *self.base.iterdir()):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": "/var/lib/rabbitmq",
            "RABBITMQ_NODENAME": self.name, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"), "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"), "RABBITMQ_PID_FILE": str(self.base / "pid"),
        }
        with open(self.base / "server.out", "ab") as log:
            self.process = subprocess.Popen(
                ["runuser", "-u", "rabbitmq", "--", "env", *[f"{k}={v}" for k, v in env.items()], RABBITMQ_SERVER],
                stdout=log, stderr=log, cwd=self.base, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the standby node exited; see {self.base / 'server.out'}")
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=40)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        return rabbitmqctl(*args, node=self.name, plugins=self.base / "enabled_plugins", timeout=timeout)

    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def queues(self) -> dict[str, int]:
        rows = json.loads(self.ctl("list_queues", "name", "messages", "--formatter", "json"))
        return {row["name"]: int(row["messages"] or 0) for row in rows}

    def held(self, names) -> int:
        """Messages ready in these queues, asked over AMQP (a passive declare answers in
        milliseconds; rabbitmqctl takes a second to start)."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.url()))
        try:
            channel = connection.channel()
            return sum(channel.queue_declare(name, passive=True).method.message_count for name in names)
        finally:
            connection.close()

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.ctl("shutdown", timeout=60)
            self.process.wait(30)
        except Exception:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        self.process = None


class Platform:
    """`motcua up` as a child process; `ready_at`: when it printed `motcua ready`."""

    def __init__(self, env: dict, log: Path, demo: bool):
        self.env, self.log_path, self.demo = env, log, demo
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.ready_at: float | None = None

    def start(self) -> float:
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "motcua_platform.cli", "up", *(["--demo"] if self.demo else []),
             "--port", str(self.port)], env=self.env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        started = time.monotonic()

        def watch():
            for line in self.process.stdout:
                if line.startswith("motcua ready") and self.ready_at is None:
                    self.ready_at = time.monotonic()

        threading.Thread(target=watch, daemon=True).start()
        return started

    def all_ready(self) -> bool:
        for service in SERVICES:
            try:
                if requests.get(f"{self.base}/{service}/readyz", timeout=2).status_code != 200:
                    return False
            except requests.RequestException:
                return False
        return True

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not self.all_ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the platform did not become ready; log: {self.log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def motcua(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "motcua_platform.cli", *args], env=env, capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"motcua {' '.join(args)}: {result.stderr.strip()[-1500:]}")
    return result.stdout


def pair_kiosk(base: str, admin_password: str) -> requests.Session:
    """A kiosk paired to the ward as at a real office: the administrator makes a one-time
    link, the kiosk opens it and keeps the device credential (a cookie)."""
    token = requests.post(f"{base}/identity/api/v1/sessions", json={"username": "admin", "password": admin_password},
                          timeout=30)
    token.raise_for_status()
    link = requests.post(f"{base}/queue/api/v1/wards/{WARD}/kiosk-pairings", timeout=30,
                         headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    link.raise_for_status()
    kiosk = requests.Session()
    kiosk.get(link.json()["pairing_url"], timeout=30).raise_for_status()
    if not kiosk.cookies:
        raise RuntimeError("pairing left no device credential")
    return kiosk


def take_ticket(kiosk: requests.Session, base: str, service_code: str) -> str:
    answer = kiosk.post(f"{base}/queue/api/v1/wards/{WARD}/tickets",
                           json={"service_code": service_code, "priority": "normal"}, timeout=30)
    if answer.status_code != 201:
        raise RuntimeError(f"ticket refused: {answer.status_code} {answer.text[:300]}")
    return answer.json()["number"]


def wait_for(what: str, check, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def re_consumer_queue(name: str) -> bool:
    """A consumer queue of the platform's topology (<consumer>.<source>.<EventType>), not its
    retry or dead-letter queue, nor the federation's or the archive."""
    import re

    return re.fullmatch(CONSUMER_QUEUE[1:-1], name) is not None


def federate(broker: StandbyBroker, upstream: str, timeout: float = 120) -> None:
    """The runbook's set-up step 6 at the standby broker: the upstream (the central broker's
    URL), the policy federating the five event exchanges, the platform's topology declared
    (a federated exchange pulls only what its own bindings ask for), the two-day TTL on the
    consumer queues; returns once every exchange's link is running."""
    # A handshake the upstream does not answer is given up after 10 s and tried again a second
    # later (the client's default waits 60 s, then the link waits out its restart).
    uri = upstream + ("&" if "?" in upstream else "?") + "connection_timeout=10000"
    broker.ctl("set_parameter", "federation-upstream", "central",
               json.dumps({"uri": uri, "ack-mode": "on-confirm", "max-hops": 1, "reconnect-delay": 1}))
    broker.ctl("set_policy", "--apply-to", "exchanges", "motcua-federate", FEDERATED,
               json.dumps({"federation-upstream": "central"}))
    motcua(dict(os.environ, AMQP_URL=broker.url()), "topology")
    broker.ctl("set_policy", "--apply-to", "queues", "motcua-standby-ttl", CONSUMER_QUEUE,
               json.dumps({"message-ttl": 172800000}))

    def links_running():
        try:
            rows = json.loads(broker.ctl("federation_status", "--formatter", "json") or "[]")
        except RuntimeError:  # the CLI could not reach the node this time (a busy machine): ask again
            return False
        running = {row.get("exchange") for row in rows if row.get("status") == "running"}
        return len(running) >= len(SERVICES) and running

    wait_for("the federation links", links_running, timeout, interval=1.0)


def archive(broker: StandbyBroker, timeout: float = 120) -> int:
    """The failover's step 2: the links stopped, every consumer queue's messages moved by a
    self-deleting shovel into motcua.standby.archive; returns how many the archive holds."""
    broker.ctl("clear_policy", "motcua-federate")
    held = {q: n for q, n in broker.queues().items() if n and re_consumer_queue(q)}
    for queue_name in held:
        broker.ctl("set_parameter", "shovel", f"archive-{queue_name}", json.dumps({
            "src-protocol": "amqp091", "src-uri": "amqp://", "src-queue": queue_name,
            "dest-protocol": "amqp091", "dest-uri": "amqp://", "dest-queue": ARCHIVE,
            "src-delete-after": "queue-length"}))
    expected = sum(held.values())
    if not held:
        return 0

    def moved():  # asked over AMQP: the CLI is slow to start and busy machines run out of its ports
        try:
            return broker.held([ARCHIVE]) >= expected and broker.held(held) == 0
        except Exception:  # the archive queue is declared by the first shovel
            return False

    wait_for("the archive", moved, timeout)
    return broker.held([ARCHIVE])


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def drill(work: Path, tickets: int) -> dict:
    clock = Clock()
    figures: dict = {"steps": clock.steps}
    central: Platform | None = None
    standby_platform: Platform | None = None
    broker = StandbyBroker(work / "standby-broker")
    central_broker = StandbyBroker(work / "central-broker", role="central")
    try:
        # --- the central site (its broker a node of its own, like the standby's: the drill
        # never waits on the machine's shared broker) --------------------------------------
        with clock.step("central broker: a RabbitMQ node started"):
            central_broker.start()
        admin_password = uuid.uuid4().hex
        env_a = dict(os.environ, AMQP_URL=central_broker.url(),
                     MOTCUA_DATA_DIR=str(work / "site-a"), MOTCUA_RELAY_POLL_SECONDS="0.2",
                     MOTCUA_ADMIN_PASSWORD=admin_password)
        env_a.pop("MONGO_URL", None)
        central = Platform(env_a, work / "site-a.log", demo=True)
        with clock.step("central site: motcua up --demo until every readyz answers 200"):
            central.start()
            central.wait_ready()
        service = requests.get(f"{central.base}/queue/api/v1/wards/{WARD}/services", timeout=30).json()[0]
        # The ward's kiosk: paired at the centre, it must keep issuing at the standby (the
        # device key is in the backup).
        kiosk = pair_kiosk(central.base, admin_password)

        # --- the standby broker and the federation (runbook, set-up step 5) ---------------
        with clock.step("standby broker: a second RabbitMQ node started"):
            broker.start()
        upstream = central_broker.url()
        with clock.step("standby broker: federation upstream, policy, topology; all five links running"):
            federate(broker, upstream)

        issued = []
        consumer_queues = [q for q in broker.queues() if re_consumer_queue(q)]
        held_before = broker.held(consumer_queues)
        started = time.monotonic()
        issued.append(take_ticket(kiosk, central.base, service["code"]))
        wait_for("a ticket's events at the standby", lambda: broker.held(consumer_queues) > held_before, 60, 0.02)
        figures["federation_trip_s"] = time.monotonic() - started
        print(f"{figures['federation_trip_s']:8.2f} s  one ticket: from the central API to a standby queue "
              "(API, outbox, relay, central broker, federation link)", flush=True)

        with clock.step(f"central site: {tickets} more tickets issued"):
            issued += [take_ticket(kiosk, central.base, service["code"]) for _ in range(tickets)]

        # --- the backup, then the loss of the central site ------------------------------
        backup_dir = work / "backup"
        with clock.step("motcua backup (the central site running)"):
            motcua(env_a, "backup", str(backup_dir))
        manifest = json.loads((backup_dir / "manifest.json").read_text())
        figures["backup_bytes"] = directory_size(backup_dir)
        figures["backup_documents"] = sum(
            c.get("documents", c.get("count", 0)) if isinstance(c, dict) else int(c)
            for s in manifest.get("services", {}).values()
            for c in (s.get("collections", {}).values() if isinstance(s, dict) else []))
        issued += [take_ticket(kiosk, central.base, service["code"]) for _ in range(3)]  # on slips, not in the backup
        time.sleep(2)  # their events reach the standby before the site is lost
        central.stop()
        central = None
        figures["standby_held"] = sum(n for q, n in broker.queues().items() if not q.endswith((".retry", ".dead")))

        # --- the failover at the standby (runbook, "Failover", steps 2 to 5) ------------
        failover_started = time.monotonic()
        with clock.step("failover 2: federation stopped, the standby's queues shovelled into the archive"):
            figures["archived"] = archive(broker)
        env_b = dict(os.environ, AMQP_URL=broker.url(), MOTCUA_DATA_DIR=str(work / "site-b"),
                     MOTCUA_RELAY_POLL_SECONDS="0.2")
        env_b.pop("MONGO_URL", None)
        env_b.pop("MOTCUA_ADMIN_PASSWORD", None)  # the administrator comes back with the data
        with clock.step("failover 3: motcua restore into a fresh data dir"):
            motcua(env_b, "restore", str(backup_dir))
        standby_platform = Platform(env_b, work / "site-b.log", demo=False)
        with clock.step("failover 4-5: motcua up against the standby broker until every readyz answers 200"):
            started = standby_platform.start()
            standby_platform.wait_ready()
        if standby_platform.ready_at:
            figures["motcua_ready_line_s"] = standby_platform.ready_at - started
        with clock.step("first ticket at the standby"):
            number = take_ticket(kiosk, standby_platform.base, service["code"])
        figures["failover_total_s"] = time.monotonic() - failover_started
        figures["issued_at_centre"] = len(issued)
        figures["first_number_at_standby"] = number
        figures["reissued"] = number in issued
        more = [take_ticket(kiosk, standby_platform.base, service["code"]) for _ in range(5)]
        figures["reissued"] = figures["reissued"] or bool(set(more) & set(issued))
        return figures
    finally:
        for platform in (central, standby_platform):
            if platform is not None:
                platform.stop()
        broker.stop()
        central_broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=200, help="tickets issued at the centre before the backup")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs, logs and the backup")
    args = parser.parse_args()
    if os.geteuid() != 0 or not os.path.exists(RABBITMQ_SERVER) or not shutil.which("runuser"):
        print("the drill needs root, RabbitMQ's server and runuser (the standby node runs as `rabbitmq`)",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="motcua-standby-drill-"))
    os.chmod(work, 0o755)  # the standby node, as `rabbitmq`, reaches its data dir below
    try:
        figures = drill(work, args.tickets)
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\nsummary")
    for name, took in figures["steps"]:
        print(f"  {took:7.1f} s  {name}")
    print(f"  {figures['federation_trip_s']:7.2f} s  an event from the central API to a standby queue")
    print(f"  {figures['failover_total_s']:7.1f} s  failover steps 2 to 5 and the first ticket, in all")
    if "motcua_ready_line_s" in figures:
        print(f"  {figures['motcua_ready_line_s']:7.1f} s  `motcua up` printed `motcua ready`")
    print(f"  backup: {figures['backup_bytes'] / 1e6:.1f} MB, {figures['backup_documents']} documents; "
          f"{figures['archived']} events archived at the standby")
    print(f"  tickets issued at the centre: {figures['issued_at_centre']}; first at the standby: "
          f"{figures['first_number_at_standby']}; a number issued twice: {'YES' if figures['reissued'] else 'no'}")
    return 1 if figures["reissued"] else 0


if __name__ == "__main__":
    sys.exit(main())
