"""`motcua audit verify [--service S]` and `motcua audit prune [--service S]`: the audit
trail of each service's database (motcua_common.audit).

verify walks each service's hash chain from its checkpoint and prints one line per
service — `identity: 1234 records OK` or `dossier: BROKEN at record 57 (56 checked)` — and
exits 1 when any chain is broken. prune applies the retention periods now (audit records
older than MOTCUA_RETENTION_AUDIT_DAYS behind the checkpoint; dossier's papers of dossiers
closed longer than MOTCUA_RETENTION_ATTACHMENTS_DAYS): for a cron job or a CronJob, beside
the retention applied on every start."""
from __future__ import annotations

import argparse
import sys
from typing import Iterable, TextIO

SERVICES = ("identity", "dossier", "queue", "notify", "rating")


def add_parser(sub, formatter_class) -> None:
    p_audit = sub.add_parser("audit", formatter_class=formatter_class,
                             help="check the audit trail's hash chains, apply the retention periods",
                             description="Each service keeps an append-only, hash-chained audit log (audit_log) "
                                         "in its own database. Uses MONGO_URL, or the database of the `motcua up` "
                                         "in MOTCUA_DATA_DIR.")
    audit_sub = p_audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p_verify = audit_sub.add_parser("verify", formatter_class=formatter_class,
                                    help="walk each chain; exit 1 at the first broken record")
    p_verify.add_argument("--service", choices=SERVICES, help="one service only (default: every service)")
    p_prune = audit_sub.add_parser("prune", formatter_class=formatter_class,
                                   help="remove records past their retention period now")
    p_prune.add_argument("--service", choices=SERVICES, help="one service only (default: every service)")


def verify(settings, services: Iterable[str], out: TextIO = sys.stdout) -> int:
    """Print each service's chain; 0 when every one is whole, 1 otherwise."""
    from motcua_common import audit
    from motcua_common.mongo import connect

    client = connect(settings)
    broken = False
    try:
        for service in services:
            db = client[settings.database_name(service)]
            ok, first_bad, count = audit.verify(db)
            if ok:
                checkpoint = db[audit.AUDIT_LOG].find_one({"_id": audit.CHECKPOINT_ID})
                since = f", from checkpoint {checkpoint['seq']}" if checkpoint else ""
                print(f"{service}: {count} records OK{since}", file=out)
            else:
                broken = True
                print(f"{service}: BROKEN at record {first_bad} ({count} checked)", file=out)
    finally:
        client.close()
    return 1 if broken else 0


def prune(settings, services: Iterable[str], out: TextIO = sys.stdout) -> int:
    from motcua_common import audit
    from motcua_common.mongo import connect

    client = connect(settings)
    try:
        for service in services:
            db = client[settings.database_name(service)]
            if service == "dossier":
                from motcua_dossier.bootstrap import apply_retention

                done = apply_retention(settings, db)
                print(f"{service}: {done['audit']} audit records, papers of {done['attachments']} closed dossiers "
                      "removed", file=out)
                continue
            removed = audit.prune_all(db, audit.retention_days("audit", settings))
            print(f"{service}: {removed} audit records removed", file=out)
    finally:
        client.close()
    return 0


def run(args: argparse.Namespace, settings) -> int:
    services = (args.service,) if args.service else SERVICES
    if args.audit_command == "verify":
        return verify(settings, services)
    return prune(settings, services)
