"""Key files made once and then kept: a token signing key, the result authority, the kiosk
device key. One rule for all of them: readable by the owner only (0600), and of two
processes starting together the first file wins (written aside, then hard-linked into
place, so nobody ever reads a half-written key)."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable


def load_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes at `path`; on first use `make()` is written there first."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(make())
        try:
            os.link(tmp, path)  # fails when another process got there first: use theirs
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_bytes()


def write_new(path: Path, content: bytes) -> bool:
    """Write `content` to a file that must not exist yet (0600); False, and nothing
    written, when it does — an existing key is never replaced."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    return True
