"""Test fixtures (a pytest plugin, loaded by the root conftest.py).

  mongo_url      a SecantusDB server on a free port, one per test session
  amqp_url       a fresh RabbitMQ virtual host on the local broker, one per test
  settings       Settings pointing at both, with a database prefix of the test's own
  service_db     a factory: service name -> that service's Database for this test

The local RabbitMQ must run (the CI script starts it); each test gets its own vhost so
that queues, messages and a running `motcua up` never meet."""
from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from motcua_common.config import Settings
from motcua_platform.embedded import EmbeddedMongo

from .rabbitcli import RabbitCliError, RabbitCliTimeout, run_cli

BROKER = os.environ.get("MOTCUA_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672")


def _rabbitmqctl(*args: str, attempts: int = 5, timeout: float = 60) -> None:
    """rabbitmqctl now and then fails (exit 64/69) while the node is busy with other
    clients' vhosts, or while a test restarts it: try again a few times. Each call has
    this process's own CLI ports and a timeout, past which it is killed (rabbitcli.py)."""
    for attempt in range(1, attempts + 1):
        try:
            run_cli("rabbitmqctl", "-q", *args, timeout=timeout)
            return
        except RabbitCliTimeout:
            raise
        except RabbitCliError as exc:
            if "already exists" in exc.stderr:
                return
            if attempt == attempts:
                raise
        time.sleep(attempt)


def create_vhost(name: str) -> str:
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"{BROKER}/{name}"


def delete_vhost(name: str) -> None:
    try:
        _rabbitmqctl("delete_vhost", name)
    except Exception:
        pass


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory):
    server = EmbeddedMongo(tmp_path_factory.mktemp("secantus") / "db").start()
    yield server.url
    server.stop()


@pytest.fixture
def amqp_url():
    name = f"motcua-test-{uuid.uuid4().hex[:10]}"
    url = create_vhost(name)
    yield url
    delete_vhost(name)


@pytest.fixture
def settings(mongo_url, tmp_path) -> Settings:
    """Settings without a broker of its own; tests that need one ask for `broker_settings`."""
    return replace(
        Settings.from_env({}),
        mongo_url=mongo_url,
        db_prefix=f"t{uuid.uuid4().hex[:8]}_",
        data_dir=Path(tmp_path),
        consumer_retry_delay_ms=200,
        consumer_max_attempts=3,
        relay_poll_seconds=0.05,
    )


@pytest.fixture
def broker_settings(settings, amqp_url) -> Settings:
    return replace(settings, amqp_url=amqp_url)


@pytest.fixture
def mongo_client(mongo_url):
    from motcua_common.mongo import connect

    client = connect(Settings(mongo_url=mongo_url))
    yield client
    client.close()


@pytest.fixture
def service_db(mongo_client, settings):
    def get(service: str):
        return mongo_client[settings.database_name(service)]

    return get


def settings_env(settings: Settings) -> dict:
    """Environment variables that reproduce `settings` in a child process."""
    env = dict(os.environ)
    env.update({
        "MONGO_URL": settings.mongo_url,
        "AMQP_URL": settings.amqp_url,
        "MOTCUA_DB_PREFIX": settings.db_prefix,
        "MOTCUA_DATA_DIR": str(settings.data_dir),
        "MOTCUA_CONSUMER_RETRY_DELAY_MS": str(settings.consumer_retry_delay_ms),
        "MOTCUA_CONSUMER_MAX_ATTEMPTS": str(settings.consumer_max_attempts),
        "MOTCUA_RELAY_POLL_SECONDS": str(settings.relay_poll_seconds),
        "MOTCUA_QUEUE_TYPE": settings.queue_type,
        "IDENTITY_URL": settings.identity_url,
    })
    return env


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


# ---------------------------------------------------------------- tokens for API tests
@pytest.fixture(scope="session")
def signing_key(tmp_path_factory):
    from motcua_common.auth import SigningKey

    return SigningKey.load_or_create(tmp_path_factory.mktemp("keys") / "signing.pem")


@pytest.fixture
def verifier(signing_key):
    """A TokenVerifier that trusts `signing_key`; pass it to create_app(settings, verifier=...)."""
    from motcua_common.auth import TokenVerifier

    return TokenVerifier(signing_key.jwks)


@pytest.fixture
def token(signing_key):
    """token(role, ward_id=None, subject=None, must_change_password=False) -> 'Bearer ...' header value."""

    def make(role: str, ward_id: str | None = None, subject: str | None = None, must_change_password: bool = False) -> dict:
        jwt_ = signing_key.issue(subject or f"{role}-{uuid.uuid4().hex[:6]}", role, ward_id, 600,
                                 must_change_password=must_change_password)
        return {"Authorization": f"Bearer {jwt_}"}

    return make


# ---------------------------------------------------------------- the whole platform
class RunningPlatform:
    """`motcua up` as a child process, for end-to-end, browser and Kannel tests and for the
    benchmarks: started with `env`, ready when it prints its "motcua ready <url>" line.

        platform = RunningPlatform(env, log_path)
        base_url = platform.start()      # RuntimeError with the log's tail if it never got ready
        ...
        exit_code = platform.stop()      # SIGTERM, then kill after `timeout`; None if killed"""

    def __init__(self, env: dict, log_path: Path, args: tuple[str, ...] = ("--demo",), port: int | None = None):
        from motcua_platform.embedded import free_port

        self.env, self.log_path, self.args = env, Path(log_path), args
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.base_url: str | None = None
        self._log = None

    def start(self, timeout: float = 240) -> str:
        import sys

        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "motcua_platform.cli", "up", *self.args, "--port", str(self.port)],
            env=self.env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                if self.process.poll() is not None:
                    break
                continue
            if line.startswith("motcua ready"):
                self.base_url = line.split()[2]
                return self.base_url
        self.stop(timeout=5)
        raise RuntimeError(f"motcua up did not become ready; log:\n{self.log_path.read_text()[-5000:]}")

    def stop(self, timeout: float = 60) -> int | None:
        code = None
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


# ---------------------------------------------------------------- what a path asks of the database
_PLANNED_COMMANDS = {"find": "filter", "findAndModify": "query", "update": "updates", "delete": "deletes",
                     "count": "query", "distinct": "query"}
_SESSION_FIELDS = ("lsid", "txnNumber", "$db", "$clusterTime", "autocommit", "startTransaction", "readConcern",
                   "writeConcern")


@contextmanager
def recording_client(database):
    """(twin, commands): `database` reached through a client that records every command sent
    to it (the command's name first, as on the wire; session fields left out)."""
    from pymongo import MongoClient, monitoring

    commands: list[dict] = []

    class Recorder(monitoring.CommandListener):
        def started(self, event):
            if event.database_name == database.name:
                commands.append({k: v for k, v in event.command.items() if k not in _SESSION_FIELDS})

        def succeeded(self, event):
            pass

        def failed(self, event):
            pass

    host, port = database.client.address
    client = MongoClient(host, port, directConnection=True, tz_aware=True, event_listeners=[Recorder()])
    try:
        yield client[database.name], commands
    finally:
        client.close()


def _names_one_id(command: dict) -> bool:
    """Equality on _id in every filter of the command: the _id index on every MongoDB."""
    filters = command.get(_PLANNED_COMMANDS[next(iter(command))])
    filters = [statement.get("q") for statement in filters] if isinstance(filters, list) else [filters]
    return all(isinstance(f, dict) and "_id" in f and not isinstance(f["_id"], dict) for f in filters)


def collection_scans(database, action) -> list[dict]:
    """The queries `action(twin)` sends (find, findAndModify, update, delete, count,
    distinct) that the database would answer by a collection scan, read from their explained
    plans: a hot path whose cost grows with the data. A filter naming one _id is taken as
    the point lookup it is on MongoDB (the embedded server's explain of an update says
    COLLSCAN for it, while it executes it by _id)."""
    with recording_client(database) as (twin, commands):
        action(twin)
        scans = []
        for command in list(commands):  # (the explains below are recorded too)
            if next(iter(command)) not in _PLANNED_COMMANDS or _names_one_id(command):
                continue
            plan = twin.command("explain", command, verbosity="queryPlanner")
            if "COLLSCAN" in repr(plan.get("queryPlanner", plan)):
                scans.append(command)
        return scans
