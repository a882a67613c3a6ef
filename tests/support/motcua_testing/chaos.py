"""Tools for the fault tests (tests/chaos): a second RabbitMQ node to restart and to play a
ward office's broker, a WAN link that can be cut or degraded (delay, jitter, stalls,
resets), and a checker in the manner of the rabbitmq/jepsen one — what was acknowledged
against what arrived, counted as lost, duplicated and unexpected."""
from __future__ import annotations

import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from motcua_platform.embedded import EmbeddedMongo, free_port

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


# ---------------------------------------------------------------- the checker
@dataclass
class Checker:
    """`acknowledged`: ids the system said yes to (HTTP 201, a publisher confirm);
    `attempted`: every id tried, acknowledged or not (an unacknowledged one may arrive);
    `effects`: how many times each id took effect downstream."""

    fault: str
    load: str
    attempted: set = field(default_factory=set)
    acknowledged: set = field(default_factory=set)
    effects: Counter = field(default_factory=Counter)
    deliveries: int = 0  # raw deliveries seen, redeliveries included (information only)

    def attempt(self, key) -> None:
        self.attempted.add(key)

    def ack(self, key) -> None:
        self.attempted.add(key)
        self.acknowledged.add(key)

    def observe(self, key, times: int = 1) -> None:
        self.effects[key] += times

    @property
    def lost(self) -> set:
        return self.acknowledged - set(self.effects)

    @property
    def duplicated(self) -> set:
        return {k for k, n in self.effects.items() if n > 1}

    @property
    def unexpected(self) -> set:
        return set(self.effects) - self.attempted

    def summary(self) -> dict:
        return {"fault": self.fault, "load": self.load, "acknowledged": len(self.acknowledged),
                "received": len(self.effects), "lost": len(self.lost),
                "duplicated": len(self.duplicated), "unexpected": len(self.unexpected),
                "deliveries": self.deliveries}

    def line(self) -> str:
        s = self.summary()
        return (f"{s['fault']}: {s['load']}: acknowledged {s['acknowledged']}, received {s['received']}, "
                f"lost {s['lost']}, duplicated effects {s['duplicated']}, unexpected {s['unexpected']}"
                + (f" ({s['deliveries']} deliveries)" if s["deliveries"] else ""))


# ---------------------------------------------------------------- a second broker
class RabbitNode:
    """A RabbitMQ node of its own (name, ports, data in a temporary directory owned by the
    `rabbitmq` user), started in the foreground so that a test can stop, kill and restart
    it without touching the machine's main broker. Shares the Erlang cookie of the
    `rabbitmq` user, so `rabbitmqctl -n <node>` reaches it."""

    def __init__(self, base: Path | None = None, plugins: tuple[str, ...] = ("rabbitmq_shovel",)):
        # Outside pytest's temporary tree: its root is private to root, and the broker runs
        # as the `rabbitmq` user.
        self.base = Path(base or tempfile.mkdtemp(prefix="motcua-rabbit-"))
        self.name = f"motcua-chaos-{uuid.uuid4().hex[:6]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.plugins = plugins
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return os.path.exists(RABBITMQ_SERVER) and os.geteuid() == 0 and shutil.which("runuser") is not None

    def _prepare_dir(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")
        (self.base / "rabbitmq.conf").write_text("")
        shutil.chown(self.base, "rabbitmq", "rabbitmq")
        for child in self.base.iterdir():
            shutil.chown(child, "rabbitmq", "rabbitmq")

    def start(self, timeout: float = 60) -> RabbitNode:
        self._prepare_dir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": "/var/lib/rabbitmq",  # the cookie rabbitmqctl uses too
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
        }
        with open(self.base / "server.out", "ab") as log:  # the node keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                ["runuser", "-u", "rabbitmq", "--", "env", *[f"{k}={v}" for k, v in env.items()], RABBITMQ_SERVER],
                stdout=log, stderr=log, cwd=self.base, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:  # until the node has registered with epmd, await_startup has no one to ask
            if self.process.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {self.name} exited; see {self.base / 'server.out'}")
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=40)
                return self
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def ctl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        """`rabbitmqctl -n <this node> args...`: its output. With this process's own CLI
        ports and a timeout, past which the call is killed (rabbitcli.py); RabbitCliError
        (a RuntimeError; RabbitCliTimeout also a subprocess.TimeoutExpired) names the command."""
        # Here, not at the top: this file also runs as a script (the `secantus` entry below).
        from .rabbitcli import rabbitmqctl

        return rabbitmqctl(*args, node=self.name, stdin=stdin, timeout=timeout)

    def url(self, vhost: str = "%2F") -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def kill(self) -> None:
        """The power cut: the whole node (Erlang VM) killed without a chance to flush."""
        if self.process is not None:
            os.killpg(self.process.pid, 9)
            self.process.wait(30)
            self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.ctl("shutdown", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # not answering: killed below once the wait runs out
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def restart(self, hard: bool = False) -> None:
        self.kill() if hard else self.stop()
        self.start()


# ---------------------------------------------------------------- a database server
class DatabaseServer(EmbeddedMongo):
    """The embedded database on a port and data directory of its own, so that a test can
    stop it, kill it and start it again where it was (same port, same data) without
    touching the session's shared server.

    `transaction_lifetime` stands for mongod's `transactionLifetimeLimitSeconds` (60 s by
    default, in SecantusDB too): how long the transaction of a client that died mid-way keeps
    its writes locked before the server aborts it. SecantusDB has no option for it, so the
    server is started through this module, which passes it to the server's constructor.

    `sync_on_commit`: every commit is on disk before it is acknowledged, as a MongoDB replica
    set's majority write concern (journaled) guarantees. Without it SecantusDB, like mongod
    with j:false, can lose the last acknowledged commits when it is killed."""

    def __init__(self, storage_path: Path | str, transaction_lifetime: float | None = None,
                 sync_on_commit: bool = False):
        super().__init__(storage_path, sync_on_commit=sync_on_commit)
        self.transaction_lifetime = transaction_lifetime

    def command(self) -> list[str]:
        base = super().command()
        if self.transaction_lifetime is None:
            return base
        # Run as a script: the test support is not installed, so `-m motcua_testing.chaos`
        # would not be found by a child process.
        return [sys.executable, str(Path(__file__).resolve()), "secantus", str(self.transaction_lifetime), *base[3:]]

    def kill(self) -> None:
        """The power cut: no chance to flush or to close the storage cleanly."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def restart(self, hard: bool = False, down_for: float = 0.0) -> None:
        self.kill() if hard else self.stop()
        time.sleep(down_for)
        self.start()


def _secantus_with_transaction_lifetime(lifetime: float, argv: list[str]) -> int:
    from functools import partialmethod

    from secantus import cli, server

    server.SecantusDBServer.__init__ = partialmethod(server.SecantusDBServer.__init__,
                                                     transaction_lifetime_seconds=lifetime)
    return cli.main(argv)


# ---------------------------------------------------------------- a WAN link
@dataclass(frozen=True)
class LinkQuality:
    """How a degraded WAN link looks to a TCP connection crossing it (`tc netem` is not
    available everywhere, so the relay plays it).

    `delay` ± `jitter` (seconds, one way) is added to every chunk in both directions; a
    chunk is delayed, never reordered — TCP delivers in order, so a late chunk holds back
    the ones behind it. `bandwidth` (bytes/s each way, None for unlimited) spaces chunks by
    their size. Loss is what TCP makes of it: a lost segment is retransmitted, so the
    connection sees a stall — the chunk held back for a retransmission timeout drawn from
    `stall_time` — with probability `stall_probability`; and when loss is heavy enough for
    the sender to give up (or a middlebox drops its state), the connection is reset, with
    probability `reset_probability` per chunk."""

    delay: float = 0.0
    jitter: float = 0.0
    bandwidth: float | None = None
    stall_probability: float = 0.0
    stall_time: tuple[float, float] = (0.2, 1.0)
    reset_probability: float = 0.0

    def describe(self) -> str:
        if self == LinkQuality():
            return "clear"
        parts = [f"delay {self.delay * 1000:.0f}±{self.jitter * 1000:.0f} ms"]
        if self.bandwidth:
            parts.append(f"{self.bandwidth / 1000:.0f} kB/s")
        if self.stall_probability:
            low, high = self.stall_time
            parts.append(f"{self.stall_probability:.0%} stalls of {low * 1000:.0f}-{high * 1000:.0f} ms")
        if self.reset_probability:
            parts.append(f"{self.reset_probability:.0%} resets per chunk")
        return ", ".join(parts)


class WanLink:
    """A TCP relay standing for a ward's WAN link: clients connect to `port` and reach
    `target`. `cut()` resets every connection and refuses new ones (the line is down);
    `restore()` lets traffic through again. `degrade(...)` makes the line slow and lossy
    (see LinkQuality) while traffic flows, `heal()` makes it clear again.

    `stats` counts what the link did: connections accepted, chunks relayed, chunks delayed,
    stalls, resets. `seed` makes the draws repeatable."""

    QUEUED_CHUNKS = 256  # per direction: beyond this the relay stops reading (back-pressure)

    def __init__(self, target_host: str, target_port: int, seed: int | None = None):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.quality = LinkQuality()
        self.stats: Counter = Counter()
        self._random = random.Random(seed)
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._circuits: set[_Circuit] = set()
        self._listener: socket.socket | None = None
        self._closed = False
        self.cuts = 0

    def start(self) -> WanLink:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    # ---- the operator's side
    def degrade(self, delay: float = 0.0, jitter: float = 0.0, bandwidth: float | None = None,
                stall_probability: float = 0.0, stall_time: tuple[float, float] = (0.2, 1.0),
                reset_probability: float = 0.0) -> LinkQuality:
        """From the next chunk on, every connection sees this quality."""
        self.quality = LinkQuality(delay, jitter, bandwidth, stall_probability, stall_time, reset_probability)
        return self.quality

    def heal(self) -> None:
        self.quality = LinkQuality()

    def cut(self) -> None:
        self.cuts += 1
        self._up.clear()
        with self._lock:
            circuits, self._circuits = list(self._circuits), set()
        for circuit in circuits:
            circuit.close()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        if self._listener is not None:
            self._listener.close()

    @property
    def resets(self) -> int:
        return self.stats["resets"]

    def report(self) -> str:
        s = self.stats
        return (f"{s['connections']} connections, {s['chunks']} chunks ({s['delayed']} delayed), "
                f"{s['stalls']} stalls, {s['resets']} resets, {self.cuts} cuts")

    # ---- the relay
    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.stats[what] += n

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            circuit = _Circuit(self, client, server)
            with self._lock:
                self._circuits.add(circuit)
                self.stats["connections"] += 1
            circuit.start()

    def _forget(self, circuit: _Circuit) -> None:
        with self._lock:
            self._circuits.discard(circuit)

    def _schedule(self, direction: _Direction, size: int, now: float) -> float | None:
        """When a chunk read now may leave the far side, or None when the link resets the
        connection instead."""
        q = self.quality
        with self._lock:  # one generator for every thread, and the counts with it
            if q.reset_probability and self._random.random() < q.reset_probability:
                self.stats["resets"] += 1
                return None
            self.stats["chunks"] += 1
            sent = now
            if q.bandwidth:
                sent = max(now, direction.wire_free_at) + size / q.bandwidth
                direction.wire_free_at = sent
            lag = max(0.0, q.delay + self._random.uniform(-q.jitter, q.jitter))
            if q.stall_probability and self._random.random() < q.stall_probability:
                self.stats["stalls"] += 1
                lag += self._random.uniform(*q.stall_time)
            # The writer sends in order anyway; this makes the timing TCP's too: a chunk behind a
            # stalled one waits for it (head-of-line blocking).
            due = max(sent + lag, direction.last_due)
            direction.last_due = due
            if due > now:
                self.stats["delayed"] += 1
            return due


@dataclass
class _Direction:
    """One way of a circuit: chunks read from `source`, waiting for their time to be
    written to `sink`."""

    source: socket.socket
    sink: socket.socket
    chunks: queue.Queue
    last_due: float = 0.0
    wire_free_at: float = 0.0


_EOF = object()


class _Circuit:
    """One TCP connection across the link: a reader and a writer thread per direction, so
    that a chunk waiting for its time does not stop the next ones being read."""

    def __init__(self, link: WanLink, client: socket.socket, server: socket.socket):
        self.link = link
        self.sockets = (client, server)
        self.directions = [_Direction(client, server, queue.Queue(link.QUEUED_CHUNKS)),
                           _Direction(server, client, queue.Queue(link.QUEUED_CHUNKS))]
        self.closed = threading.Event()

    def start(self) -> None:
        for direction in self.directions:
            threading.Thread(target=self._read, args=(direction,), daemon=True).start()
            threading.Thread(target=self._write, args=(direction,), daemon=True).start()

    def close(self) -> None:
        """Both ends reset, as a dropped line or a given-up connection looks to them."""
        if self.closed.is_set():
            return
        self.closed.set()
        self.link._forget(self)
        for s in self.sockets:
            _reset(s)

    def _read(self, direction: _Direction) -> None:
        try:
            while not self.closed.is_set():
                data = direction.source.recv(65536)
                if not self.link._up.is_set():
                    break
                if not data:
                    self._put(direction, _EOF, 0.0)  # what was read before still goes through
                    return
                due = self.link._schedule(direction, len(data), time.monotonic())
                if due is None:
                    break
                self._put(direction, data, due)
        except OSError:
            pass
        self.close()

    def _put(self, direction: _Direction, item, due: float) -> None:
        while not self.closed.is_set():
            try:
                direction.chunks.put((due, item), timeout=0.5)
                return
            except queue.Full:
                continue

    def _write(self, direction: _Direction) -> None:
        try:
            while not self.closed.is_set():
                try:
                    due, item = direction.chunks.get(timeout=0.5)
                except queue.Empty:
                    continue
                wait = due - time.monotonic()
                if wait > 0 and self.closed.wait(wait):
                    break
                if item is _EOF or not self.link._up.is_set():
                    break
                direction.sink.sendall(item)
        except OSError:
            pass
        self.close()


def _reset(s: socket.socket) -> None:
    # Linger 0 makes close() send a reset, as a dropped line looks to the far end;
    # shutdown() first wakes the thread blocked reading this socket.
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def drain(amqp_url: str, queue: str) -> list[tuple[dict, bytes]]:
    """Every message now in `queue` (acknowledged, so the queue is left empty)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        out = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((properties.headers or {}, body))
    finally:
        connection.close()


def wait_until(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


if __name__ == "__main__":  # python chaos.py secantus <lifetime> <secantus arguments>
    if sys.argv[1:2] != ["secantus"]:
        sys.exit("usage: python chaos.py secantus <transaction lifetime s> <secantus arguments>")
    sys.exit(_secantus_with_transaction_lifetime(float(sys.argv[2]), sys.argv[3:]))
