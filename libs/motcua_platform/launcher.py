"""`motcua up`: the whole platform on one machine.

Starts the embedded database (unless MONGO_URL is set), makes sure the local RabbitMQ runs
(unless AMQP_URL is set), declares the broker topology, prepares every service's database
(indexes, bootstrap admin, demo data), then runs and supervises the child processes: the
five APIs on one port, and a worker (or several: --service-workers) and a relay per
service. A child that dies is restarted. SIGINT/SIGTERM stop everything cleanly."""
from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests

from motcua_common.config import SERVICES, Settings
from motcua_platform.embedded import EmbeddedMongo, free_port
from motcua_platform.preflight import EXIT_FAILED, EXIT_UNAVAILABLE, Unavailable, check_broker, check_database


def say(message: str) -> None:
    print(f"motcua: {message}", file=sys.stderr, flush=True)


class LaunchError(SystemExit):
    """The platform cannot start: said in one line; exits with its own code (never
    argparse's 2): EXIT_UNAVAILABLE when a backing service is down, else EXIT_FAILED."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        say(f"error: {message}")
        super().__init__(code)


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_local_rabbitmq(amqp_url: str, wait_seconds: float = 90) -> None:
    parsed = urlparse(amqp_url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 5672
    if _reachable(host, port):
        return
    if host not in ("127.0.0.1", "localhost"):
        raise LaunchError(f"the broker at {host}:{port} (AMQP_URL) is not reachable: check that it runs "
                          "and that this machine may reach it", EXIT_UNAVAILABLE)
    server = shutil.which("rabbitmq-server") or ("/usr/sbin/rabbitmq-server" if os.path.exists("/usr/sbin/rabbitmq-server") else None)
    if server is None:
        raise LaunchError("RabbitMQ is not running on 127.0.0.1:5672 and is not installed. "
                          "Install the Debian package: apt-get install rabbitmq-server (or set AMQP_URL).",
                          EXIT_UNAVAILABLE)
    say("starting the local RabbitMQ (rabbitmq-server -detached)")
    subprocess.run([server, "-detached"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + wait_seconds
    while not _reachable(host, port):
        if time.monotonic() > deadline:
            raise LaunchError("RabbitMQ did not start; see /var/log/rabbitmq/", EXIT_UNAVAILABLE)
        time.sleep(1)
    time.sleep(2)  # the listener opens slightly before the broker accepts logins


def demo_environment(env: dict) -> dict:
    """What `--demo` adds to the environment. A demo without an SMS gateway writes texts to
    notify's log and never logs a one-time code, so a web registration could never be
    finished: proof of the phone stays on wherever texts are really sent, or when asked for."""
    added = {"MOTCUA_DEMO": "true"}
    if "MOTCUA_WEB_PHONE_PROOF" not in env and not (env.get("SMS_GATEWAY_URL") or env.get("SMS_GATEWAY")):
        added["MOTCUA_WEB_PHONE_PROOF"] = "false"
        say("demo without an SMS gateway: web registrations need no code sent to the phone")
    return added


# More worker processes than this for one service on one machine is a typing mistake, not
# a plan: each holds its own database client and broker connections.
MAX_SERVICE_WORKERS = 16
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def service_workers(spec: str | None, source: str = "MOTCUA_SERVICE_WORKERS",
                    services=SERVICES) -> dict[str, int]:
    """Worker processes per service from SPEC: a number for every service ("2"), or some
    services by name ("queue=2,dossier=3", the others one). Empty or None: one each, as
    always. A ValueError names `source` (the option or the variable it came from) and says
    what is wrong, so that `motcua up` refuses it before anything starts.

    Several workers of one service compete for the same consumer queues and RPC requests
    (their handlers are idempotent, their timers claim their work atomically), so nothing
    else changes. Relays are never multiplied: one relay publishes a ward's events in order."""
    counts = {service: 1 for service in services}
    spec = (spec or "").strip()
    if not spec:
        return counts
    if "=" not in spec:
        if not WHOLE_NUMBER.fullmatch(spec):
            raise ValueError(f"{source}: {spec!r} is neither a number of worker processes for every service "
                             "nor a list like queue=2,dossier=3")
        count = _worker_count(spec, source, "every service")
        return {service: count for service in services}
    named: set[str] = set()
    for item in spec.split(","):
        service, equals, number = (part.strip() for part in item.partition("="))
        if not service or not equals:
            what = repr(item.strip()) if item.strip() else "an empty item"
            raise ValueError(f"{source}: {what} is not SERVICE=N (e.g. queue=2,dossier=3)")
        if service not in counts:
            raise ValueError(f"{source}: no service is called {service!r} (the services: {', '.join(services)})")
        if service in named:
            raise ValueError(f"{source}: {service} is named twice")
        named.add(service)
        counts[service] = _worker_count(number, source, service)
    return counts


def _worker_count(text: str, source: str, whose: str) -> int:
    if not WHOLE_NUMBER.fullmatch(text):  # int() would also take "1_6" and "١٦"
        raise ValueError(f"{source}: {whose}'s worker processes must be a whole number, not {text!r}")
    count = int(text)
    if not 1 <= count <= MAX_SERVICE_WORKERS:
        raise ValueError(f"{source}: {whose}'s worker processes must be between 1 and {MAX_SERVICE_WORKERS}, "
                         f"not {count}")
    return count


def free_ports_besides(count: int, taken: set[int]) -> list[int]:
    """`count` distinct free ports, none of them in `taken`. The API's port is not bound yet
    when the workers' metrics ports are chosen: the operating system may hand it out again,
    and a worker's metrics server on it answered every request to the platform (405 to a
    POST, 200 to the readiness check)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in taken and port not in ports:
            ports.append(port)
    return ports

@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    metrics_port: int | None = None
    # Its scrape target's labels: whose process it is, what it does, and which of the
    # service's workers when there are several (None when there is one).
    service: str | None = None
    role: str | None = None
    worker: int | None = None

    def start(self, env: dict) -> None:
        if self.metrics_port is not None:
            env = {**env, "METRICS_PORT": str(self.metrics_port)}
        # Children write to our stderr only: stdout carries just the "motcua ready" line,
        # so a caller that stops reading it can never block a child on a full pipe.
        self.process = subprocess.Popen(self.argv, env=env, stdout=sys.stderr)
        self.started_at = time.monotonic()


class Platform:
    def __init__(self, port: int, demo: bool, host: str = "127.0.0.1", services=SERVICES,
                 workers: dict[str, int] | None = None):
        self.port, self.demo, self.host, self.services = port, demo, host, services
        # Worker processes per service (service_workers); a service not named runs one.
        self.workers = workers or {}
        self.children: list[Child] = []
        self.database: EmbeddedMongo | None = None
        self.stopping = False

    def _environment(self) -> dict:
        env = dict(os.environ)
        data_dir = Path(env.get("MOTCUA_DATA_DIR", ".motcua")).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        env["MOTCUA_DATA_DIR"] = str(data_dir)
        if not env.get("MONGO_URL"):
            self.database = EmbeddedMongo(data_dir / "db", port=free_ports_besides(1, taken={self.port})[0],
                                          sync_on_commit=True)
            say(f"starting the embedded database in {data_dir / 'db'}")
            self.database.start()
            env["MONGO_URL"] = self.database.url
            # For `motcua wards`, `prepare` and the like run beside this platform.
            self._url_file = data_dir / "mongo-url"
            self._url_file.write_text(self.database.url + "\n", encoding="utf-8")
            self._url_file.chmod(0o600)
        env.setdefault("AMQP_URL", Settings.amqp_url)
        env.setdefault("IDENTITY_URL", f"http://127.0.0.1:{self.port}")
        if self.demo:
            env.update(demo_environment(env))
        return env

    def _prepare(self, settings: Settings) -> None:
        """Declare the broker topology and prepare every service's database, in a child process:
        the bootstraps import the services' code, which the supervisor never needs again and
        would otherwise keep in memory all day (a ward office's box counts every MiB)."""
        import multiprocessing

        child = multiprocessing.get_context("fork").Process(target=_prepare_services,
                                                            args=(settings, self.services, self.demo))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise LaunchError("preparing the databases failed (see above)",
                              EXIT_UNAVAILABLE if child.exitcode == EXIT_UNAVAILABLE else EXIT_FAILED)

    def _wait_ready(self, timeout: float = 120, report_every: float = 3.0) -> None:
        """Wait for every service's /readyz, saying every few seconds which are still
        waiting and why (the API not answering yet, or the check that fails)."""
        started = time.monotonic()
        deadline, next_report = started + timeout, started + report_every
        pending = {service: "the API is starting" for service in self.services}
        while pending and not self.stopping:
            for service in sorted(pending):
                pending[service] = self._readiness(service)
                if pending[service] == "":
                    del pending[service]
            if not pending:
                return
            now = time.monotonic()
            if now > deadline:
                raise LaunchError(f"not ready after {timeout:.0f} s: "
                                  + "; ".join(f"{s} ({why})" for s, why in sorted(pending.items())))
            if now >= next_report:
                ready = [s for s in self.services if s not in pending]
                waiting = {}
                for service, why in sorted(pending.items()):
                    waiting.setdefault(why, []).append(service)
                say(f"waiting {now - started:.0f} s: "
                    + "; ".join(f"{why} ({', '.join(names)})" for why, names in waiting.items())
                    + (f" — ready: {', '.join(ready)}" if ready else ""))
                next_report = now + report_every
            self._supervise_once()
            time.sleep(0.3)

    def _readiness(self, service: str) -> str:
        """'' when the service is ready, else what it is waiting for."""
        try:
            answer = requests.get(f"http://127.0.0.1:{self.port}/{service}/readyz", timeout=2)
        except requests.RequestException:
            return "the API is starting"
        if answer.status_code == 200:
            return ""
        try:
            checks = answer.json().get("checks") or {}
        except ValueError:
            checks = {}
        down = [name for name, ok in checks.items() if not ok]
        return f"{', '.join(down)} not reachable" if down else f"readyz answers {answer.status_code}"

    def _supervise_once(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.process is None or child.process.poll() is None:
                continue
            if child.next_start == 0.0:
                # A child that ran a while gets restarted at once; a crash loop backs off.
                quick_crash = now - child.started_at < 10
                delay = min(30.0, 2.0 ** min(child.restarts, 5)) if quick_crash else 0.5
                child.next_start = now + delay
                say(f"{child.name} exited with code {child.process.returncode}; restarting in {delay:.0f} s")
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                child.start(self.env)
                say(f"{child.name} restarted (restart {child.restarts} of this child, "
                    f"{sum(c.restarts for c in self.children)} in all)")
                self._write_restart_counts()

    def _write_restart_counts(self) -> None:
        """Restarts per child as a Prometheus textfile ($MOTCUA_DATA_DIR/supervisor.prom),
        for node_exporter's textfile collector or a glance by the ops team."""
        lines = ["# HELP motcua_supervisor_restarts_total Child processes restarted by motcua up.",
                 "# TYPE motcua_supervisor_restarts_total counter"]
        lines += [f'motcua_supervisor_restarts_total{{child="{c.name}"}} {c.restarts}' for c in self.children]
        path = Path(self.env["MOTCUA_DATA_DIR"]) / "supervisor.prom"
        try:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            say(f"could not write {path}: {exc}")

    def _children(self) -> list[Child]:
        cli = [sys.executable, "-m", "motcua_platform.cli"]
        from motcua_platform.apiserver import api_processes

        api = cli + ["api", "--all", "--host", self.host, "--port", str(self.port)]
        children = [Child("api", api + ["--workers", str(api_processes(self.env))])]
        counts = {service: self.workers.get(service, 1) for service in self.services}
        ports = free_ports_besides(sum(counts.values()) + len(self.services), taken={self.port})
        for service in self.services:
            # Workers and relays count events and SMS; each exposes /metrics on its own port.
            worker = cli + ["worker", "--service", service]
            if counts[service] == 1:
                children.append(Child(f"{service}-worker", worker, metrics_port=ports.pop(),
                                      service=service, role="worker"))
            else:
                # Each its own supervised child, restarted alone; they compete for the
                # service's queues. Numbered from 1, in the child's name and scrape target.
                children += [Child(f"{service}-worker-{number}", worker, metrics_port=ports.pop(),
                                   service=service, role="worker", worker=number)
                             for number in range(1, counts[service] + 1)]
            children.append(Child(f"{service}-relay", cli + ["relay", "--service", service], metrics_port=ports.pop(),
                                  service=service, role="relay"))
        several = [f"{service} {count}" for service, count in counts.items() if count > 1]
        if several:
            say(f"worker processes: {', '.join(several)} (the other services one each)")
        self._write_scrape_targets(children)
        return children

    def _write_scrape_targets(self, children: list[Child]) -> None:
        """Every process's metrics endpoint as a Prometheus file_sd list
        ($MOTCUA_DATA_DIR/prometheus-targets.json): point a file_sd_configs job at it."""
        targets = [{"targets": [f"127.0.0.1:{self.port}"],
                    "labels": {"service": svc, "role": "api", "__metrics_path__": f"/{svc}/metrics"}}
                   for svc in self.services]
        for child in children:
            if child.metrics_port is not None:
                labels = {"service": child.service, "role": child.role}
                if child.worker is not None:
                    # Several workers of one service: each its own series, whatever
                    # the scrape job does with the target's address.
                    labels["worker"] = str(child.worker)
                targets.append({"targets": [f"127.0.0.1:{child.metrics_port}"], "labels": labels})
        path = Path(self.env["MOTCUA_DATA_DIR"]) / "prometheus-targets.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(targets, indent=2), encoding="utf-8")
        os.replace(tmp, path)

    def run(self) -> int:
        settings_env = self._environment()
        self.env = settings_env
        try:
            if self.database is None:
                check_database(settings_env["MONGO_URL"])
            ensure_local_rabbitmq(settings_env["AMQP_URL"])
            check_broker(settings_env["AMQP_URL"])
        except Unavailable as exc:
            if self.database is not None:
                self.database.stop()
            raise LaunchError(str(exc), EXIT_UNAVAILABLE) from None
        settings = Settings.from_env(settings_env)
        self._prepare(settings)
        if _reachable(self.host if self.host != "0.0.0.0" else "127.0.0.1", self.port, 0.5):
            raise LaunchError(f"port {self.port} is already in use; choose another with --port")
        self.children = self._children()

        def _stop(*_args):
            self.stopping = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        for child in self.children:
            child.start(self.env)
        self._write_restart_counts()
        try:
            self._wait_ready()
            if not self.stopping:
                print(f"motcua ready http://127.0.0.1:{self.port}", flush=True)
            while not self.stopping:
                self._supervise_once()
                time.sleep(0.5)
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        say("stopping")
        for child in self.children:
            if child.process and child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + 20
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        if self.database is not None:
            self.database.stop()
            getattr(self, "_url_file", Path("/nonexistent")).unlink(missing_ok=True)
        restarted = {c.name: c.restarts for c in self.children if c.restarts}
        say("stopped" + (f"; restarts: {', '.join(f'{n} {k}' for n, k in restarted.items())}" if restarted else ""))


def _prepare_services(settings: Settings, services, demo: bool) -> None:
    """Platform._prepare's child: the topology, then each service's indexes and reference data."""
    from motcua_common import topology

    try:
        topology.declare_with_url(settings)
        for service in services:
            importlib.import_module(f"motcua_{service}.bootstrap").prepare(settings, demo=demo)
    except Unavailable as exc:
        say(f"error: {exc}")
        sys.exit(EXIT_UNAVAILABLE)


def up(port: int, demo: bool, host: str = "127.0.0.1", workers: dict[str, int] | None = None) -> int:
    return Platform(port=port, demo=demo, host=host, workers=workers).run()
