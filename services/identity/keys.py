"""identity's signing keys, with rotation.

Keys live in a directory as `signing-<UTC timestamp>.pem`; the newest signs. A key that has
been replaced stays in the JWKS until every token it signed has expired (token lifetime
plus five minutes of clock skew), then `rotate()` prunes it. Every API process notices a
rotation on its next request (the directory listing changes), so no restart is needed.

In a cluster the key can come from a Secret instead: JWT_PRIVATE_KEY_FILE names the
signing key, JWT_PREVIOUS_KEY_FILES (comma-separated) keys still published for
verification while their tokens live."""
from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from motcua_common.auth import SigningKey

SKEW_SECONDS = 300


def _stamp(path: Path) -> float:
    try:
        return datetime.strptime(path.stem.split("-", 1)[1], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc).timestamp()
    except (IndexError, ValueError):
        return 0.0


class KeyRing:
    def __init__(self, directory: Path, token_ttl_seconds: int, clock=time.time):
        self.directory = Path(directory)
        self.ttl = token_ttl_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._listing: tuple[str, ...] | None = None
        self._keys: list[tuple[float, SigningKey]] = []
        self._external = os.environ.get("JWT_PRIVATE_KEY_FILE")
        self._load()

    # ------------------------------------------------------------ loading
    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("signing-*.pem"))

    def _load(self) -> None:
        if self._external:
            active = SigningKey.load_or_create(Path(self._external))
            previous = [p.strip() for p in os.environ.get("JWT_PREVIOUS_KEY_FILES", "").split(",") if p.strip()]
            older = [(0.0, _load_pem(Path(p))) for p in previous]
            self._keys = older + [(self.clock(), active)]
            self._listing = ()
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self._files():
            self._create()
        files = self._files()
        self._keys = [(_stamp(p), _load_pem(p)) for p in files]
        self._listing = tuple(p.name for p in files)

    def _refresh(self) -> None:
        if self._external:
            return
        with self._lock:
            if tuple(p.name for p in self._files()) != self._listing:
                self._load()

    def _create(self) -> Path:
        stamp = datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"signing-{stamp}.pem"
        SigningKey.load_or_create(path, honour_environment=False)
        return path

    # ------------------------------------------------------------ use
    @property
    def active(self) -> SigningKey:
        self._refresh()
        return self._keys[-1][1]

    def issue(self, *args, **kwargs) -> str:
        return self.active.issue(*args, **kwargs)

    def published(self) -> list[SigningKey]:
        """The active key and every replaced key whose tokens may still be alive."""
        self._refresh()
        now = self.clock()
        keys = []
        for index, (_, key) in enumerate(self._keys):
            successor_since = self._keys[index + 1][0] if index + 1 < len(self._keys) else None
            if successor_since is None or now - successor_since < self.ttl + SKEW_SECONDS:
                keys.append(key)
        return keys

    def jwks(self) -> dict:
        return {"keys": [key.public_jwk for key in self.published()]}

    def rotate(self) -> str:
        """Make a new signing key; prune keys no token can still need. Returns the new kid."""
        if self._external:
            raise RuntimeError("keys come from JWT_PRIVATE_KEY_FILE: rotate them through the Secret")
        with self._lock:
            self._create()
            self._load()
            now = self.clock()
            for index, (_, key) in enumerate(self._keys[:-1]):
                successor_since = self._keys[index + 1][0]
                if now - successor_since >= self.ttl + SKEW_SECONDS:
                    for path in self._files():
                        if _load_pem(path).kid == key.kid:
                            path.unlink(missing_ok=True)
            self._load()
            return self._keys[-1][1].kid


def _load_pem(path: Path) -> SigningKey:
    return SigningKey(serialization.load_pem_private_key(path.read_bytes(), password=None))
