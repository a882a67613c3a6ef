"""Fixtures of notify's tests: a local SMS gateway that records every request and answers
as scripted per recipient (e.g. 500 for the first two tries, then 202), and that honours
the Idempotency-Key the way a real gateway should: a key it already accepted is answered
200 again and not delivered a second time."""
from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class RecordingGateway:
    def __init__(self):
        self.requests: list[dict] = []
        self.delivered: dict[str, dict] = {}   # Idempotency-Key -> the body delivered under it
        self._scripts: dict[str, deque] = defaultdict(deque)
        self._always: dict[str, int] = {}
        self._lock = threading.Lock()
        self.delay_seconds = 0.0
        self.retry_after: str | None = None   # sent as Retry-After with every 429 and 503
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = json.loads(raw.decode("utf-8"))
                status, delay = gateway._record(dict(self.headers), body)
                if delay or gateway.delay_seconds:
                    time.sleep(delay or gateway.delay_seconds)
                payload = json.dumps({"accepted": 200 <= status < 300}).encode()
                self.send_response(status)
                if status in (429, 503) and gateway.retry_after:
                    self.send_header("Retry-After", gateway.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> "RecordingGateway":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, to: str, *statuses) -> None:
        """Answer these statuses to the next requests for `to`, then 202. A status may be
        (status, seconds): answered only after that long (the sender may give up first)."""
        with self._lock:
            self._scripts[to].extend(statuses)

    def always(self, to: str, status: int) -> None:
        with self._lock:
            self._always[to] = status

    def _record(self, headers: dict, body: dict) -> tuple[int, float]:
        with self._lock:
            script = self._scripts[body.get("to")]
            status = script.popleft() if script else self._always.get(body.get("to"), 202)
            status, delay = status if isinstance(status, tuple) else (status, 0.0)
            key = headers.get("Idempotency-Key")
            if 200 <= status < 300:
                if key in self.delivered:
                    status = 200   # already accepted under this key: not delivered again
                else:
                    self.delivered[key] = body
            self.requests.append({"headers": headers, "body": body, "status": status, "at": time.monotonic()})
            return status, delay

    def deliveries_to(self, phone: str) -> list[dict]:
        with self._lock:
            return [b for b in self.delivered.values() if b.get("to") == phone]

    def to(self, phone: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["body"].get("to") == phone]


@pytest.fixture
def sms_gateway():
    gateway = RecordingGateway().start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def module_sms_gateway():
    gateway = RecordingGateway().start()
    yield gateway
    gateway.stop()


@pytest.fixture
def fallback_gateway():
    """A second gateway, for failover."""
    gateway = RecordingGateway().start()
    yield gateway
    gateway.stop()
