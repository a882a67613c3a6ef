"""The embedded MongoDB-wire server (SecantusDB) used by `motcua up` without MONGO_URL and
by the tests. Production runs a real MongoDB replica set; nothing else depends on this."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedMongo:
    def __init__(self, storage_path: Path | str, port: int | None = None, log_file=None,
                 sync_on_commit: bool = False):
        self.storage_path = str(storage_path)
        # Flush every commit to disk before answering, as a replica set journals majority
        # writes: without it a power cut can lose acknowledged records (fault test 9).
        self.sync_on_commit = sync_on_commit
        self.port = port or free_port()
        self.log_file = log_file
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        # retryWrites=false: a retryable write is retried once after a primary election, and a
        # single embedded node never has one; the server keeps a record of every retryable write
        # for 30 minutes, and pruning that record grew to a fifth of its time in a long ward day
        # (bench/RESULTS.md). A replica set keeps the driver's default (true).
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true&retryWrites=false"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(self.port),
                "--storage-path", self.storage_path, "--log-level", "WARNING",
                *(["--sync-on-commit"] if self.sync_on_commit else [])]

    def start(self, timeout: float = 60.0) -> "EmbeddedMongo":
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            stdout=self.log_file or subprocess.DEVNULL, stderr=self.log_file or subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        client = MongoClient(self.url, serverSelectionTimeoutMS=500)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the embedded database exited with code {self.process.returncode} "
                                       f"(is {self.storage_path} in use by another server?)")
                try:
                    client.admin.command("ping")
                    return self
                except Exception:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError("the embedded database did not start in time")
                    time.sleep(0.2)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
