"""A RabbitMQ cluster of three local nodes, for the fault of a node lost under load
(tests/chaos/test_chaos_cluster.py).

Production runs a three-node cluster behind one address (the Kubernetes Service of the
RabbitMQ Cluster Operator): a client that loses its node connects again to the same
address and lands on a node still up. `FrontDoor` plays that address here: a TCP relay
that sends each new connection to the next node that accepts it.

The nodes are RabbitNode's (chaos.py): each its own name, ports and data directory owned
by the `rabbitmq` user, and the Erlang cookie of that user, which clustering needs shared.
Started side by side (each node's boot is mostly waiting), joined with `rabbitmqctl
join_cluster`: about 12 s on this two-core machine."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

from .chaos import RabbitNode, WanLink, _Circuit, _reset


class FrontDoor(WanLink):
    """One address for the cluster: each connection goes to the next node, in turn, that
    accepts it; a node that refuses (down) is passed over. Connections already open to a
    node that dies are reset by that node's death, as through a Kubernetes Service."""

    def __init__(self, ports: list[int]):
        super().__init__("127.0.0.1", ports[0])
        self.ports = list(ports)
        self._next = 0
        self.preferred: int | None = None
        self.connections_to: dict[int, int] = {port: 0 for port in ports}

    def prefer(self, port: int | None) -> None:
        """Send every new connection to this node while it accepts them (None: in turn):
        a test puts all its queues, leaders and connections on the node it will lose."""
        self.preferred = port

    def _connect_to_a_live_node(self) -> socket.socket | None:
        order = [self.ports[(self._next + i) % len(self.ports)] for i in range(len(self.ports))]
        self._next += 1
        if self.preferred is not None:
            order = [self.preferred] + [p for p in order if p != self.preferred]
        for port in order:
            try:
                server = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
            server.settimeout(None)
            self.connections_to[port] += 1
            return server
        return None

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = self._connect_to_a_live_node()
            if server is None:
                _reset(client)
                continue
            circuit = _Circuit(self, client, server)
            with self._lock:
                self._circuits.add(circuit)
                self.stats["connections"] += 1
            circuit.start()


class ClusterNode(RabbitNode):
    """A RabbitNode that is removed the quick way. Its `rabbitmqctl` calls (RabbitNode.ctl,
    through rabbitcli.py) take their Erlang distribution port from a range of this process's
    own: the default range, eleven ports shared by every rabbitmqctl on the machine, fills
    up when other suites' calls run (a few hung ones are enough), and every new call then
    fails at once with `nodistribution` (seen here: three nodes could not be started for
    two minutes on end)."""

    def remove(self) -> None:
        # Killed, not shut down: its data goes with it, and a clean shutdown of a node whose
        # cluster is going too costs seconds of CI per node.
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)


class RabbitCluster:
    """Three RabbitMQ nodes joined in one cluster, and a FrontDoor to them."""

    def __init__(self, size: int = 3):
        # No plugins: the cluster carries the platform's own traffic only.
        self.nodes = [ClusterNode(plugins=()) for _ in range(size)]
        self.front_door: FrontDoor | None = None

    def start(self) -> "RabbitCluster":
        errors: list[BaseException] = []

        def boot(node: RabbitNode) -> None:
            try:
                node.start(timeout=90)
            except BaseException as exc:  # reported below, with the node's log
                errors.append(exc)

        threads = [threading.Thread(target=boot, args=(node,)) for node in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.remove()
            raise RuntimeError(f"a cluster node did not start: {errors[0]}")
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
        self.front_door = FrontDoor([node.port for node in self.nodes]).start()
        return self

    def url(self, vhost: str = "%2F") -> str:
        """The cluster's one address (through the front door)."""
        return f"amqp://guest:guest@127.0.0.1:{self.front_door.port}/{vhost}"

    @property
    def alive(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.process is not None]

    def node_named(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.name == name)

    def add_vhost(self, name: str) -> str:
        node = self.alive[0]
        node.ctl("add_vhost", name)
        node.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return self.url(name)

    def queues(self, vhost: str) -> dict[str, dict]:
        """Each queue of the vhost: its type, its leader (a quorum queue) and its process
        (`<node.N.N>`, naming the node of a classic queue)."""
        for attempt in range(3):  # a read: asked again when the CLI itself failed (a loaded machine)
            try:
                out = self.alive[0].ctl("-q", "list_queues", "-p", vhost, "--no-table-headers",
                                        "name", "type", "leader", "pid")
                break
            except (RuntimeError, subprocess.TimeoutExpired):
                if attempt == 2:
                    raise
        queues = {}
        for line in out.splitlines():
            fields = line.split("\t")
            if len(fields) == 4:
                queues[fields[0]] = dict(zip(("name", "type", "leader", "pid"), fields))
        return queues

    def home_of(self, vhost: str, queue: str) -> RabbitNode:
        """The node a queue depends on: a quorum queue's leader, a classic queue's node."""
        q = self.queues(vhost)[queue]
        name = q["leader"] if q["type"] == "quorum" else ""
        if not name:
            match = re.search(r"<(\S+@[^.]+)\.", q["pid"])
            name = match.group(1) if match else ""
        return self.node_named(name)

    def remove(self) -> None:
        if self.front_door is not None:
            self.front_door.close()
        threads = [threading.Thread(target=node.remove) for node in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    @property
    def logs(self) -> list[Path]:
        return [node.base / "server.out" for node in self.nodes]
