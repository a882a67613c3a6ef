"""MongoDB access: one client per process, one database per service, transactions.

Each service owns its own database (motcua_<service>); no service reads another's."""
from __future__ import annotations

from typing import Callable, TypeVar

from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from .config import Settings

T = TypeVar("T")


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
    server supports transactions on its single node."""
    with db.client.start_session() as session:
        return session.with_transaction(
            work,
            read_concern=ReadConcern("snapshot"),
            write_concern=WriteConcern("majority"),
        )


def ping(db: Database) -> bool:
    try:
        db.client.admin.command("ping")
        return True
    except Exception:
        return False
