"""Identity's public keys kept on disk, so that a ward's edge office can verify officers'
tokens after a restart while its WAN link to the centre is down.

TokenVerifier keeps the keys it fetched in memory; this adds the copy on disk. A fetched
document replaces the file atomically (readable by this user only); when the fetch fails
the last good document on disk answers instead. Keys are public, but a file that anyone
could write would let them mint tokens, hence 0600 and a directory we own."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


def _valid(document) -> bool:
    return isinstance(document, dict) and isinstance(document.get("keys"), list) and bool(document["keys"])


def read_cached(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if _valid(document) else None


def write_cached(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(document, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # readers see the old or the new file, never half of one


def on_disk(fetch: Callable[[], dict], path: Path) -> Callable[[], dict]:
    """A JWKS source: `fetch()` when it answers (and remember the answer in `path`), else
    the document last remembered. Raises fetch's error when there is nothing on disk."""

    def source() -> dict:
        try:
            document = fetch()
        except Exception as exc:
            cached = read_cached(path)
            if cached is None:
                raise
            log.warning("identity's keys unreachable, using the copy on disk",
                        extra={"jwks_cache": str(path), "error": exc.__class__.__name__})
            return cached
        if _valid(document) and document != read_cached(path):
            try:
                write_cached(path, document)
            except OSError as exc:  # a full or read-only disk must not stop verification
                log.warning("could not keep identity's keys on disk", extra={"error": str(exc)})
        return document

    return source
