"""What every benchmark needs: a database and a broker of its own, the platform started
the way an operator starts it, a recording SMS gateway, percentiles, process memory."""
from __future__ import annotations

import os
import platform as host_platform
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from motcua_common.config import Settings
from motcua_platform.embedded import EmbeddedMongo, free_port
from motcua_platform.simulate import RecordingGateway, percentile  # noqa: F401  (re-exported)
from motcua_testing.fixtures import RunningPlatform
from motcua_testing.fixtures import create_vhost, delete_vhost
from motcua_testing.rabbitcli import run_cli

ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "bench-quan-tri-2026"


@contextmanager
def database():
    """A SecantusDB server in a temporary directory: the embedded database `motcua up` uses."""
    with tempfile.TemporaryDirectory(prefix="motcua-bench-db-") as path:
        server = EmbeddedMongo(Path(path) / "db").start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def vhost():
    """A vhost of its own on the local broker; MOTCUA_BENCH_AMQP_URL names a broker (or vhost)
    to use as it is instead (a node of the benchmark's own, when the shared one is busy)."""
    given = os.environ.get("MOTCUA_BENCH_AMQP_URL")
    if given:
        yield given
        return
    name = f"motcua-bench-{uuid.uuid4().hex[:8]}"
    url = create_vhost(name)
    try:
        yield url
    finally:
        delete_vhost(name)


def bench_settings(mongo_url: str, amqp_url: str) -> Settings:
    return replace(Settings.from_env({}), mongo_url=mongo_url, amqp_url=amqp_url,
                   db_prefix=f"b{uuid.uuid4().hex[:6]}_", relay_poll_seconds=0.05)


@contextmanager
def running_platform(mongo_url: str, amqp_url: str, sms_gateway_url: str, extra_env: dict | None = None):
    """`motcua up --demo` as a subprocess on the given database and broker; yields
    (base_url, process)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="motcua-bench-data-") as data_dir:
        env = dict(os.environ, MONGO_URL=mongo_url, AMQP_URL=amqp_url, SMS_GATEWAY_URL=sms_gateway_url,
                   MOTCUA_DATA_DIR=data_dir, MOTCUA_ADMIN_PASSWORD=ADMIN_PASSWORD,
                   MOTCUA_RELAY_POLL_SECONDS="0.05", MOTCUA_LOG_LEVEL="WARNING",
                   # every simulated citizen registers from this one address
                   MOTCUA_REGISTRATIONS_PER_CLIENT_HOUR="100000", **(extra_env or {}))
        # MOTCUA_BENCH_LOG keeps the platform's log after the run (it is in a temporary directory otherwise).
        log_path = Path(os.environ.get("MOTCUA_BENCH_LOG") or Path(data_dir) / "platform.log")
        running = RunningPlatform(env, log_path, port=port)
        base = running.start()
        try:
            yield base, running.process
        finally:
            running.stop()


def children_of() -> dict[int, list[int]]:
    """Every running process's children, by parent id (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree_rss_mb(pid: int) -> float:
    """Sum of the resident set sizes of a process and all its descendants, in MiB."""
    children = children_of()
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(current, []))
    return total / 1024


def machine() -> dict:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    try:
        rabbit = run_cli("rabbitmqctl", "-q", "version", timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        rabbit = "unknown"
    from importlib.metadata import version

    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1), "cpu": model,
            "kernel": host_platform.release(), "python": host_platform.python_version(), "rabbitmq": rabbit,
            **{name: version(name) for name in ("SecantusDB", "pymongo", "pika", "aiormq", "Flask", "gunicorn", "nameko")}}
