"""The centre's identity as far as a ward office needs it at start-up and while it works:
the JWKS document at `/identity/.well-known/jwks.json`, served on a free port. The fault
tests stop it to stand for the link being down; the edge benchmark starts an office
against it."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from motcua_platform.embedded import free_port


class JwksServer:
    """The centre's identity, as far as the office needs it: the JWKS document. Stopped to
    stand for the link being down."""

    def __init__(self, jwks: dict):
        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                # Only the keys: the office's other look-ups at the centre (the procedure
                # catalog) get 404 and fall back to what it has kept, as when the link is down.
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
