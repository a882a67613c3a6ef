"""MongoDB access: one client per process, one database per service, transactions.

Each service owns its own database (motcua_<service>); no service reads another's."""
from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from .config import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

# How long a transaction is retried after transient errors (write conflicts, a failing
# commit); far beyond any conflict seen under load (those settle in milliseconds).
RETRY_SECONDS = 5.0


class TransactionAbandoned(PyMongoError):
    """A transaction kept failing with transient errors for RETRY_SECONDS."""


def connect(settings: Settings, **kwargs) -> MongoClient:
    kwargs.setdefault("serverSelectionTimeoutMS", 5000)
    kwargs.setdefault("connectTimeoutMS", 5000)
    kwargs.setdefault("tz_aware", True)
    return MongoClient(settings.mongo_url, **kwargs)


def service_database(client: MongoClient, settings: Settings, service: str) -> Database:
    return client.get_database(settings.database_name(service))


def in_transaction(db: Database, work: Callable[[ClientSession], T]) -> T:
    """Run `work(session)` in one multi-document transaction (retried on transient errors).

    Needs a replica set in production (the chart and compose run one); the embedded
    server supports transactions on its single node.

    Retries stop after RETRY_SECONDS (TransactionAbandoned, a PyMongoError: the API's
    503): a database that fails every commit (its disk full) kept a kiosk's request retrying
    for the two minutes pymongo allows.

    A retry means two writers met on one document: each is counted
    (`motcua_transaction_retries_total{database, work}`), and a change retried three times
    or more is logged with how long it took, since that is how a hot document shows (the
    ward clock and the audit head were two; both stalls looked like a slow database)."""
    attempts = 0
    started = time.monotonic()

    def attempt(session: ClientSession) -> T:
        nonlocal attempts
        attempts += 1
        if attempts > 1 and time.monotonic() - started > RETRY_SECONDS:
            # pymongo would go on for two minutes; a request (a kiosk, an officer) is
            # better answered 503 now, and a worker's message is redelivered later.
            raise TransactionAbandoned(f"{getattr(work, '__qualname__', 'transaction')}: still failing after "
                                       f"{attempts - 1} attempts in {time.monotonic() - started:.1f} s")
        return work(session)

    try:
        with db.client.start_session() as session:
            return session.with_transaction(
                attempt,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
            )
    finally:
        if attempts > 1:
            _count_retries(db.name, work, attempts - 1, time.monotonic() - started)


def _count_retries(database: str, work: Callable, retries: int, seconds: float) -> None:
    from . import metrics

    name = getattr(work, "__qualname__", type(work).__name__).replace(".<locals>", "")
    metrics.TRANSACTION_RETRIES.labels(database, name).inc(retries)
    if retries >= 2:
        log.warning("transaction %s retried %d times over %.2f s: concurrent writes meet on one document",
                    name, retries, seconds, extra={"database": database, "retries": retries})


def update_and_read(collection: Collection, guard: dict, update: dict, session: ClientSession | None = None) -> dict | None:
    """The document named by `guard["_id"]`, updated if it still matches `guard`, as it is
    after the update; None if it did not match — find_one_and_update(..., AFTER) for a
    compare-and-set on one known document, spelled as update_one then a read by _id.

    Why not findAndModify: the embedded database (a one-machine office) answers every
    findAndModify by reading its whole collection (its write step re-checks the query
    under an $and that no index serves): 6 µs per stored document, so a counter's call took
    a tenth of a second once a year's tickets were kept. update_one and a read by _id walk
    the _id index on every database. The write is the same single-document atomic
    compare-and-set; pass the transaction's `session` and the read is exactly the document
    this write produced (outside one, a later write may already show)."""
    result = collection.update_one(guard, update, session=session)
    if result.matched_count == 0:
        return None
    return collection.find_one({"_id": guard["_id"]}, session=session)


def ping(db: Database) -> bool:
    try:
        db.client.admin.command("ping")
        return True
    except Exception:
        return False
