"""A ward office's box: `motcua up --profile edge`, its time to ready and its idle memory.

The office is started as an operator starts it (tests/chaos/conftest.py's Office does the
same): its own RabbitMQ node (the office's broker, with the shovel plugin), the centre's
broker as a fresh vhost of the main broker, and a central URL that serves the JWKS
document. MONGO_URL is left unset, so the office starts its embedded database itself, as a
ward's box does; that database is then part of the measured process tree.

Measured: wall seconds from Popen to the "motcua ready" line on the office's stdout; then,
IDLE_SECONDS later, the resident set of the office's whole process tree (supervisor,
embedded database, API, workers, relays, courier), with each process's share. The office's
RabbitMQ node runs outside that tree; its resident set is reported beside it, not in it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench.harness import children_of, process_tree_rss_mb, vhost
from motcua_common import topology
from motcua_common.auth import SigningKey
from motcua_common.config import Settings
from motcua_platform.embedded import free_port
from motcua_testing.centre_keys import JwksServer
from motcua_testing.chaos import RabbitNode

WARD = "dn-hai-chau"
TARGETS = {"ready_seconds": 20, "idle_rss_mib": 600}
IDLE_SECONDS = 10
READY_TIMEOUT = 180


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared pages (forked API workers, the interpreter's
    libraries) divided among the processes sharing them, so these add up to what the
    box really holds; resident sets summed count shared pages once per process."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def short_name(pid: int) -> str:
    """A process's command, short: `motcua_platform.cli worker --service queue` becomes
    "cli worker queue"; options and their values are left out except the service's name."""
    try:
        argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0") if a]
    except OSError:
        return "?"
    if not argv:
        return "?"
    if "-m" in argv[:3]:
        at = argv.index("-m")
        words, rest = [argv[at + 1].rsplit(".", 1)[-1]], argv[at + 2:]
    else:
        words, rest = [Path(argv[0]).name], argv[1:]
    skip_value = False
    for arg in rest:
        if arg.startswith("-"):
            # "--service queue" keeps "queue"; any other option drops its value, if it has one
            skip_value = arg != "--service"
            continue
        if skip_value:
            skip_value = False
            continue
        words.append(arg)
    return " ".join(words)


def process_tree(pid: int) -> list[dict]:
    """Every process of the tree rooted at `pid` with its resident and proportional set
    sizes (KiB), largest first, from one walk of /proc."""
    children, found, todo = children_of(), [], [pid]
    while todo:
        current = todo.pop()
        rss = _status_kib(current, "VmRSS")
        if rss or Path(f"/proc/{current}").exists():
            found.append({"name": short_name(current), "pid": current, "rss_kib": rss, "pss_kib": _pss_kib(current)})
        todo.extend(children.get(current, []))
    return sorted(found, key=lambda p: p["rss_kib"], reverse=True)


def _centre(amqp_url: str) -> None:
    """The centre's topology on its broker, as the centre's own `motcua up` would declare it:
    the office's shovels publish into its exchanges."""
    topology.declare_with_url(replace(Settings.from_env({}), amqp_url=amqp_url))


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass


def run() -> dict:
    if not RabbitNode.available():
        raise RuntimeError("the edge benchmark needs a second RabbitMQ node of its own: run it as root, "
                           "with the rabbitmq-server package and runuser installed")
    node = office = jwks = None
    with tempfile.TemporaryDirectory(prefix="motcua-bench-edge-") as tmp, vhost() as centre_url:
        try:
            node = RabbitNode()
            node.start()  # assigned first: a node that fails half-way is still removed below
            _centre(centre_url)
            keys = SigningKey.load_or_create(Path(tmp) / "centre-signing.pem")
            jwks = JwksServer(keys.jwks()).start()
            central = jwks.url

            env = {k: v for k, v in os.environ.items() if k not in ("MONGO_URL", "MOTCUA_DB_PREFIX")}
            env.update(AMQP_URL=node.url(), RABBITMQ_NODENAME=node.name, MOTCUA_DATA_DIR=str(Path(tmp) / "office"),
                       MOTCUA_LOG_LEVEL="WARNING")
            log_path = Path(os.environ.get("MOTCUA_BENCH_LOG") or Path(tmp) / "office.log")
            port = free_port()
            # Taken here, not before the node starts: the load the office's start-up competes with.
            load_at_start = round(os.getloadavg()[0], 2)
            with open(log_path, "w") as log:
                started = time.monotonic()
                office = subprocess.Popen(
                    [sys.executable, "-m", "motcua_platform.cli", "up", "--profile", "edge", "--demo", "--ward", WARD,
                     "--port", str(port), "--upstream", centre_url, "--central", central],
                    env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
            ready_seconds = _wait_ready(office, started, log_path)
            time.sleep(IDLE_SECONDS)
            if office.poll() is not None:
                raise RuntimeError(f"the office exited with code {office.returncode} while idle:\n{_tail(log_path)}")
            processes = process_tree(office.pid)
            load_at_measure = round(os.getloadavg()[0], 2)
            broker_rss = round(process_tree_rss_mb(node.process.pid), 1) if node.process else None
        finally:
            if office is not None:
                _stop(office)
            if jwks is not None:
                jwks.stop()
            if node is not None:
                node.remove()
    return {
        "ready_seconds": ready_seconds,
        "idle_rss_mib": round(sum(p["rss_kib"] for p in processes) / 1024, 1),
        "idle_pss_mib": round(sum(p["pss_kib"] for p in processes) / 1024, 1),
        "process_count": len(processes),
        "processes": [{"name": p["name"], "rss_mib": round(p["rss_kib"] / 1024, 1),
                       "pss_mib": round(p["pss_kib"] / 1024, 1)} for p in processes],
        "broker_rss_mib": broker_rss,
        "idle_seconds": IDLE_SECONDS,
        "load_at_start": load_at_start,
        "load_at_measure": load_at_measure,
        "targets": TARGETS,
    }


def _wait_ready(office: subprocess.Popen, started: float, log_path: Path) -> float:
    """Seconds from `started` to the "motcua ready" line; RuntimeError with the log's tail
    if the office exits or never gets there. Its stdout is read to the end on a thread of its
    own, so that the office never blocks on a full pipe while idle."""
    ready = threading.Event()
    at: list[float] = []

    def read():
        for line in office.stdout:
            if line.startswith("motcua ready") and not ready.is_set():
                at.append(time.monotonic())
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = started + READY_TIMEOUT
    while not ready.wait(0.2):
        if office.poll() is not None:
            raise RuntimeError(f"the office exited with code {office.returncode} before ready:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the office was not ready after {READY_TIMEOUT} s:\n{_tail(log_path)}")
    return round(at[0] - started, 1)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
