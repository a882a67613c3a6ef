"""(6) What bounds the platform on the embedded database: four of its costs, each measured on
a fresh server of its own, with the platform's own document shapes.

  writes       the database's CPU for one insert, one update by _id (the relay's "sent"
               mark: two fields set, one incremented) and one delete, per outbox document,
               in batches of 100 as the relay sends them;
  pending      one read of the relay's next 100 pending events (the outbox's order, its
               index) with 100, 1,000 and 2,000 pending: the server fetches every match and
               sorts them (its plan has a SORT stage above the index scan) before the limit;
  registry     a one-insert transaction after 0, 1,000 and 5,000 sessions have each run a
               transaction: every transaction statement walks every session's transaction
               ever seen, under one lock (`TransactionRegistry._prune_locked`);
  serialised   a statement of about a quarter second (a scan) run outside, then inside, a
               transaction, while another client runs one-insert transactions on another
               collection: how many of those finish meanwhile, and the longest.

On MongoDB none of these holds in this shape (an update by _id costs about what an insert
does, the index gives the order, transactions on different documents share no lock): the
figures say which part of the embedded database bounds the benchmarks above it."""
from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from pymongo import DeleteOne, MongoClient, UpdateOne

from motcua_common.events import new_event
from motcua_common.outbox import ensure_outbox_indexes, OUTBOX
from motcua_platform.embedded import EmbeddedMongo

DOCUMENTS = 2000
BATCH = 100


@contextmanager
def _server():
    with tempfile.TemporaryDirectory(prefix="motcua-bench-embedded-") as path:
        server = EmbeddedMongo(Path(path) / "db").start()
        client = MongoClient(server.url)
        try:
            yield server, client
        finally:
            client.close()
            server.stop()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _outbox_documents(count: int) -> list[dict]:
    """Outbox documents as outbox.add_events stores them (one ward, one clock step apart)."""
    now = datetime.now(timezone.utc)
    docs = []
    for i in range(count):
        env = new_event("DossierSubmitted", "dn-hai-chau", {
            "dossier_id": str(uuid.uuid4()), "receipt_code": f"BENCH-{i:06d}", "procedure_code": "KS01",
            "ward_id": "dn-hai-chau", "channel": "online", "due_date": "2026-12-01"})
        docs.append({"_id": env["event_id"], "status": "pending", "seq": now, "n": i, "exchange": "dossier.events",
                     "routing_key": env["type"], "envelope": env, "created_at": now, "attempts": 0})
    return docs


def _fresh_outbox(client: MongoClient, name: str, count: int):
    db = client[name]
    ensure_outbox_indexes(db)
    docs = _outbox_documents(count)
    for start in range(0, count, BATCH):
        db[OUTBOX].insert_many(docs[start:start + BATCH])
    return db[OUTBOX], [d["_id"] for d in docs]


def writes() -> dict:
    """Milliseconds of the database's CPU per document, by kind of write."""
    figures = {}
    with _server() as (server, client):
        pid = server.process.pid
        db = client["w_insert"]
        ensure_outbox_indexes(db)
        docs = _outbox_documents(DOCUMENTS)
        before = _cpu_seconds(pid)
        for start in range(0, DOCUMENTS, BATCH):
            db[OUTBOX].insert_many(docs[start:start + BATCH])
        figures["insert_ms"] = (_cpu_seconds(pid) - before) * 1000 / DOCUMENTS
        sent_at = datetime.now(timezone.utc)
        for kind, request in (
            ("sent_mark_ms", lambda i: UpdateOne({"_id": i}, {"$set": {"status": "sent", "sent_at": sent_at},
                                                              "$inc": {"attempts": 1}})),
            ("delete_ms", lambda i: DeleteOne({"_id": i})),
        ):
            outbox, ids = _fresh_outbox(client, f"w_{kind[:-3]}", DOCUMENTS)
            before = _cpu_seconds(pid)
            for start in range(0, DOCUMENTS, BATCH):
                outbox.bulk_write([request(i) for i in ids[start:start + BATCH]], ordered=False)
            figures[kind] = (_cpu_seconds(pid) - before) * 1000 / DOCUMENTS
    return {k: round(v, 3) for k, v in figures.items()}


def pending() -> dict:
    """Milliseconds for the relay's read of its next batch, by how many events are pending."""
    figures = {}
    with _server() as (_server_, client):
        for count in (BATCH, 1000, DOCUMENTS):
            outbox, _ids = _fresh_outbox(client, f"p{count}", count)
            query = outbox.find({"status": "pending"}).sort([("seq", 1), ("n", 1)]).limit(BATCH)
            stages = []
            stage = query.explain()["queryPlanner"]["winningPlan"]
            while stage:
                stages.append(stage["stage"])
                stage = stage.get("inputStage")
            times = []
            for _ in range(10):
                started = time.perf_counter()
                list(query.clone())
                times.append((time.perf_counter() - started) * 1000)
            figures[str(count)] = round(statistics.median(times), 1)
        figures["plan"] = " ← ".join(stages)
    return figures


def registry() -> dict:
    """Median milliseconds of a one-insert transaction, by how many sessions ran one before."""
    figures = {}
    with _server() as (_server_, client):
        target = client.bench.t

        def median_transaction() -> float:
            times = []
            for i in range(200):
                started = time.perf_counter()
                with client.start_session() as session, session.start_transaction():
                    target.insert_one({"i": i}, session=session)
                times.append((time.perf_counter() - started) * 1000)
            return round(statistics.median(times), 2)

        seen = 0
        for count in (0, 1000, 5000):
            # Sessions held together are distinct sessions to the server (the driver's pool
            # hands a free one out again, so one at a time would reuse a single session).
            sessions = [client.start_session() for _ in range(count - seen)]
            for session in sessions:
                with session.start_transaction():
                    target.insert_one({"warm": True}, session=session)
            for session in sessions:
                session.end_session()
            seen = count
            figures[str(count)] = median_transaction()
    return figures


def serialised() -> dict:
    """Another client's one-insert transactions while a slow statement runs outside, then
    inside, a transaction."""
    figures = {}
    with _server() as (_server_, client):
        client.bench.big.insert_many([{"i": i, "pad": "x" * 200} for i in range(20000)])
        other = client.bench.other

        def scan(session=None) -> None:
            list(client.bench.big.find({"pad": "no such value"}, session=session))

        def inside() -> None:
            with client.start_session() as session, session.start_transaction():
                scan(session)

        for label, slow in (("outside", scan), ("inside", inside)):
            done: list[tuple[float, float]] = []  # (started, finished), perf_counter
            stop = threading.Event()

            def writer() -> None:
                i = 0
                while not stop.is_set():
                    started = time.perf_counter()
                    with client.start_session() as session, session.start_transaction():
                        other.insert_one({"i": i}, session=session)
                    done.append((started, time.perf_counter()))
                    i += 1

            thread = threading.Thread(target=writer)
            thread.start()
            time.sleep(0.5)
            began = time.perf_counter()
            slow()
            ended = time.perf_counter()
            time.sleep(0.3)
            stop.set()
            thread.join()
            overlapping = [(s, f) for s, f in done if f > began and s < ended]
            figures[label] = {"statement_ms": round((ended - began) * 1000),
                              "finished_meanwhile": sum(1 for _s, f in overlapping if f <= ended),
                              "longest_ms": round(max((f - s) * 1000 for s, f in overlapping), 1) if overlapping else 0.0}
    return figures


def run() -> dict:
    return {"writes": writes(), "pending_read_ms": pending(), "transaction_after_sessions_ms": registry(),
            "slow_statement": serialised()}


def report(figures: dict) -> list[str]:
    w, p, r, s = (figures["writes"], figures["pending_read_ms"], figures["transaction_after_sessions_ms"],
                  figures["slow_statement"])
    counts = [k for k in p if k != "plan"]
    return [
        f"embedded database, CPU per outbox document: insert {w['insert_ms']} ms, sent mark (update by _id) "
        f"{w['sent_mark_ms']} ms, delete {w['delete_ms']} ms",
        "  the relay's next 100 pending events: " + ", ".join(f"{p[k]} ms with {k} pending" for k in counts)
        + f" (plan: {p['plan']})",
        "  a one-insert transaction after N sessions ran one: "
        + ", ".join(f"{v} ms (N={k})" for k, v in r.items()),
        f"  another client's transactions during a {s['outside']['statement_ms']} ms statement outside a transaction: "
        f"{s['outside']['finished_meanwhile']} finished (longest {s['outside']['longest_ms']} ms); during a "
        f"{s['inside']['statement_ms']} ms statement inside one: {s['inside']['finished_meanwhile']} finished "
        f"(longest {s['inside']['longest_ms']} ms)",
    ]
