"""A small disk for the fault of the database's disk filling up
(tests/chaos/test_chaos_disk.py): a tmpfs of a few megabytes, mounted for the test, that
`fill()` fills to the last byte and `free()` empties again — the database's own files
untouched, as when another tenant's files fill a shared volume and are then removed.

Mounting needs root (CI runs as root); a machine where `mount` is refused fails the test
with the reason, never skips it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

CHUNK = 1 << 20


class SmallDisk:
    def __init__(self, mountpoint: Path, size_mb: int):
        self.mountpoint = Path(mountpoint)
        self.size_mb = size_mb
        self.filler = self.mountpoint / "filler"
        self.mounted = False

    def mount(self) -> "SmallDisk":
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0755", "tmpfs",
                                 str(self.mountpoint)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"mount -t tmpfs: {result.stderr.strip() or result.returncode} "
                               "(the disk-full fault needs root to mount a small filesystem)")
        self.mounted = True
        return self

    def free_bytes(self) -> int:
        st = os.statvfs(self.mountpoint)
        return st.f_bavail * st.f_frsize

    def fill(self) -> int:
        """Take every free byte; how many were taken."""
        taken = 0
        with open(self.filler, "ab", buffering=0) as f:
            while True:
                try:
                    taken += f.write(b"\0" * CHUNK)
                except OSError:  # ENOSPC: a partial chunk may have landed; take the rest bytewise
                    break
            for size in (65536, 4096, 512, 1):
                while True:
                    try:
                        taken += f.write(b"\0" * size)
                    except OSError:
                        break
        return taken

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            # Lazy: a database process killed a moment ago may still hold a file open.
            subprocess.run(["umount", "-l", str(self.mountpoint)], check=False)
            self.mounted = False
