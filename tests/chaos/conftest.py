"""Fixtures of the fault tests.

Why a second RabbitMQ node and not a second virtual host: the faults are of a broker
(restarted, killed) and of the link between two brokers (a shovel crossing a WAN that
drops). A vhost cannot be restarted alone and a shovel between two vhosts of one node
never crosses a network; a node of its own (about 6 s to start, once per session) can be
killed like a power cut without disturbing the machine's main broker, which everybody
else's tests use. The centre stays the main broker (a fresh vhost per test).

Every test reports its checker (lost / duplicated / unexpected, like rabbitmq/jepsen's);
the session prints them together at the end."""
from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from motcua_common.chaos import Checker, RabbitNode
from motcua_common.embedded import free_port

REPORTS: list[Checker] = []


@pytest.fixture(scope="session")
def rabbit_node():
    if not RabbitNode.available():
        pytest.skip("a second RabbitMQ node needs root and the rabbitmq-server package")
    node = RabbitNode().start()
    yield node
    node.remove()


@pytest.fixture
def node_vhost(rabbit_node):
    """A fresh vhost on the second node; its AMQP URL."""
    name = f"chaos-{uuid.uuid4().hex[:8]}"
    rabbit_node.ctl("add_vhost", name)
    rabbit_node.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield rabbit_node.url(name), name
    try:
        rabbit_node.ctl("delete_vhost", name)
    except Exception:
        pass  # the node may be down at the end of a failed test


@pytest.fixture
def checker(request):
    made: list[Checker] = []

    def make(fault: str, load: str) -> Checker:
        c = Checker(fault, load)
        made.append(c)
        return c

    yield make
    for c in made:
        REPORTS.append(c)
        print("\n" + c.line())


def pytest_terminal_summary(terminalreporter):
    if not REPORTS:
        return
    terminalreporter.section("faults: lost / duplicated effects / unexpected")
    for c in REPORTS:
        terminalreporter.write_line(c.line())


class JwksServer:
    """The centre's identity, as far as the office needs it: the JWKS document. Stopped to
    stand for the link being down."""

    def __init__(self, jwks: dict):
        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/identity/.well-known/jwks.json":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self._handler = Handler
        self.server = None
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "JwksServer":
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def jwks_server(signing_key):
    server = JwksServer(signing_key.jwks()).start()
    yield server
    server.stop()

