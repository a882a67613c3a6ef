"""A local HTTP SMS gateway for tests: records what notify sends (CONTRACT.md, outbound SMS)
and can be told to fail the next N requests with a status."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RecordingGateway:
    def __init__(self):
        self.messages: list[dict] = []
        self.fail_next: list[int] = []   # statuses to answer before accepting again
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with gateway._lock:
                    status = gateway.fail_next.pop(0) if gateway.fail_next else 202
                    gateway.messages.append({"body": body, "idempotency_key": self.headers.get("Idempotency-Key"),
                                             "status": status})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"accepted": true}' if status < 300 else b'{"error": "try later"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/sms"

    def accepted(self) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if m["status"] < 300]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
