"""`motcua backup DIR` and `motcua restore DIR`: every service's database, while the
platform runs, into a folder; and back into a stopped platform's empty data.

    DIR/manifest.json                 when, which version, what each collection held
    DIR/<service>/<collection>.bson   the documents, one BSON document after another
                                      (mongodump's layout: `bsondump`, `mongorestore` read it)
    DIR/<service>/<collection>.indexes.json   (for the record: a restored platform's
                                      services make their own indexes on start)

Works against the embedded database (a running `motcua up` in MOTCUA_DATA_DIR, or its
files while stopped) and a real MongoDB URL (MONGO_URL) alike. Each service's database is
read in one snapshot where the server offers it (a replica set), else collection by
collection: events not yet published stay in the outbox and are published after a
restore (consumers are idempotent), so nothing an event said is lost either way.

After a restore the queue's numbering of the day jumps past a gap (motcua_queue.restoring),
so a ticket number issued after the backup is never issued again."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import bson
from pymongo import MongoClient

from motcua_common.config import SERVICES, Settings

FORMAT = 1
BATCH = 500


class BackupError(Exception):
    """Said in one line to the operator; nothing half-restored is left behind unsaid."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("motcua")
    except PackageNotFoundError:
        return "unknown"


@contextmanager
def database_for(settings: Settings, env: dict | None = None):
    """A client on the platform's database: MONGO_URL; else the running `motcua up`'s
    embedded database; else the embedded database's files, opened for this command."""
    env = os.environ if env is None else env
    data_dir = Path(settings.data_dir).resolve()
    url = env.get("MONGO_URL")
    running = data_dir / "mongo-url"
    embedded = None
    if not url and running.exists():
        url = running.read_text().strip()
    if not url:
        from motcua_platform.embedded import EmbeddedMongo

        embedded = EmbeddedMongo(data_dir / "db", sync_on_commit=True).start()
        url = embedded.url
    from motcua_platform.preflight import check_database

    check_database(url)
    client = MongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        yield client
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()


def _dump_service(db, folder: Path, session) -> dict[str, int]:
    counts = {}
    for name in sorted(db.list_collection_names()):
        if name.startswith("system."):
            continue
        collection = db[name]
        written = 0
        with open(folder / f"{name}.bson", "wb") as out:
            for document in collection.find({}, session=session, sort=[("_id", 1)]):
                out.write(bson.encode(document))
                written += 1
        indexes = [{"key": [list(k) for k in spec["key"]], **{k: v for k, v in spec.items() if k not in ("key", "v", "ns")}}
                   for spec in collection.index_information().values()]
        (folder / f"{name}.indexes.json").write_text(json.dumps(indexes, default=str, indent=1), encoding="utf-8")
        counts[name] = written
    return counts


def _dump_consistently(client: MongoClient, db, folder: Path) -> tuple[dict[str, int], bool]:
    """One snapshot of the whole database where the server offers snapshot reads (a
    replica set); else collection by collection. True when it was one snapshot."""
    from pymongo.errors import PyMongoError

    try:
        with client.start_session(snapshot=True) as session:
            return _dump_service(db, folder, session), True
    except PyMongoError:
        for leftover in folder.iterdir():
            leftover.unlink()
        return _dump_service(db, folder, None), False


def backup(settings: Settings, target: Path, client: MongoClient, say=print) -> dict:
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: give a new folder for each backup")
    target.mkdir(parents=True, exist_ok=True)
    taken_at = datetime.now(timezone.utc)
    manifest = {"format": FORMAT, "motcua": _version(), "taken_at": taken_at.isoformat(),
                "db_prefix": settings.db_prefix, "services": {}}
    for service in SERVICES:
        db = client[settings.database_name(service)]
        folder = target / service
        folder.mkdir()
        counts, snapshot = _dump_consistently(client, db, folder)
        manifest["services"][service] = {"database": db.name, "collections": counts, "snapshot": snapshot}
        say(f"{service}: {sum(counts.values())} documents in {len(counts)} collections")
    manifest["keys"] = _copy_keys(Path(settings.data_dir) / "keys", target / "keys")
    if manifest["keys"]:
        say(f"keys: {len(manifest['keys'])} files (token signing, result authority, kiosks): "
            "keep this backup as safe as the keys themselves")
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def _copy_keys(source: Path, target: Path) -> list[str]:
    """The one-machine platform's keys (MOTCUA_DATA_DIR/keys): without the result
    authority a restored platform could not vouch for the results it signed, and without
    the kiosk key every kiosk would need pairing again. A file already at the target is
    never replaced (a cluster mounts its keys from Secrets and has none here)."""
    if not source.is_dir():
        return []
    copied = []
    for path in sorted(source.iterdir()):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        destination = target / path.name
        if destination.exists():
            continue
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(path.read_bytes())
        copied.append(path.name)
    return copied


def read_manifest(source: Path) -> dict:
    path = Path(source) / "manifest.json"
    if not path.exists():
        raise BackupError(f"{source} holds no backup (no manifest.json)")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: backup format {manifest.get('format')} is not one this version reads ({FORMAT})")
    return manifest


def restore(settings: Settings, source: Path, client: MongoClient, say=print, today: str | None = None) -> dict:
    source = Path(source)
    manifest = read_manifest(source)
    # Into empty data only: merging a backup into live data would mix two histories.
    for service in manifest["services"]:
        db = client[settings.database_name(service)]
        busy = [n for n in db.list_collection_names()
                if not n.startswith("system.") and db[n].estimated_document_count() > 0]
        if busy:
            raise BackupError(f"{db.name} is not empty ({', '.join(sorted(busy)[:5])}…): restore goes into a stopped "
                              "platform's empty data (a new MOTCUA_DATA_DIR or an empty MongoDB)")
    for service, part in manifest["services"].items():
        db = client[settings.database_name(service)]
        for name, expected in part["collections"].items():
            collection = db[name]
            batch, loaded = [], 0
            with open(source / service / f"{name}.bson", "rb") as f:
                for document in bson.decode_file_iter(f):
                    batch.append(document)
                    if len(batch) >= BATCH:
                        collection.insert_many(batch, ordered=True)
                        loaded, batch = loaded + len(batch), []
            if batch:
                collection.insert_many(batch, ordered=True)
                loaded += len(batch)
            if loaded != expected:
                raise BackupError(f"{service}/{name}: the backup lists {expected} documents, the file holds {loaded}")
            # Indexes are not made here: each service's prepare (run by every start of the
            # platform, or `motcua prepare`) makes exactly its own, by the names it knows.
        say(f"{service}: {sum(part['collections'].values())} documents restored")
    if "queue" in manifest["services"]:
        from motcua_common.clock import SystemClock
        from motcua_queue.restoring import RESTORE_GAP, skip_numbers_after_restore

        clock = SystemClock(settings.timezone)
        moved = skip_numbers_after_restore(client[settings.database_name("queue")], today or clock.today().isoformat(),
                                           clock.now())
        say(f"queue: today's numbering of {len(moved)} services continues {RESTORE_GAP} numbers past the backup's, "
            "so no number issued after the backup is issued again")
    restored_keys = _copy_keys(source / "keys", Path(settings.data_dir) / "keys")
    if restored_keys:
        say(f"keys: {', '.join(restored_keys)} restored into {Path(settings.data_dir) / 'keys'}")
    return manifest
