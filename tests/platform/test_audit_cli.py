"""`motcua audit verify` and `motcua audit prune` (issue 21), as a child process against the
SecantusDB server: every service's chain is counted and OK; a record edited by hand is
named and the command exits 1; prune applies the retention behind the checkpoint."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

from motcua_common import audit
from motcua_testing.fixtures import settings_env


def motcua(settings, *args, **env):
    return subprocess.run([sys.executable, "-m", "motcua_platform.cli", "audit", *args],
                          env={**settings_env(settings), **env}, capture_output=True, text=True, timeout=300)


def officer_reads(db, n, start=None):
    start = start or datetime.now(timezone.utc)
    for i in range(n):
        audit.append(db, audit.entry(action="read_dossier", actor_id="off-1", actor_role="officer",
                                     subject_type="dossier", subject_id=f"d-{i}", ward_id="dn-hai-chau",
                                     at=start + timedelta(days=i), details={"fields": ["form"]}))


def test_verify_counts_every_chain_and_fails_on_an_edit(settings, service_db):
    officer_reads(service_db("identity"), 3)
    officer_reads(service_db("dossier"), 5)
    whole = motcua(settings, "verify")
    assert whole.returncode == 0, whole.stderr
    lines = whole.stdout.splitlines()
    assert "identity: 3 records OK" in lines and "dossier: 5 records OK" in lines
    assert "queue: 0 records OK" in lines and len(lines) == 5

    service_db("dossier").audit_log.update_one({"_id": 4}, {"$set": {"details.fields": []}})
    broken = motcua(settings, "verify")
    assert broken.returncode == 1
    assert "dossier: BROKEN at record 4 (4 checked)" in broken.stdout.splitlines()
    assert "identity: 3 records OK" in broken.stdout.splitlines()
    one = motcua(settings, "verify", "--service", "identity")
    assert one.returncode == 0 and one.stdout.strip() == "identity: 3 records OK"


def test_prune_removes_the_oldest_behind_the_checkpoint(settings, service_db):
    db = service_db("identity")
    officer_reads(db, 4, start=datetime.now(timezone.utc) - timedelta(days=20, hours=-1))  # ~20, 19, 18, 17 days old
    pruned = motcua(settings, "prune", "--service", "identity", MOTCUA_RETENTION_AUDIT_DAYS="18")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.strip() == "identity: 2 audit records removed"
    after = motcua(settings, "verify", "--service", "identity")
    assert after.returncode == 0 and after.stdout.strip() == "identity: 2 records OK, from checkpoint 2"
    dossier = motcua(settings, "prune", "--service", "dossier")
    assert dossier.returncode == 0 and dossier.stdout.startswith("dossier: 0 audit records"), dossier.stderr
