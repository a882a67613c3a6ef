"""The indexes every service's database needs for the shared plumbing: the outbox, the
processed-event marks of idempotent consumers, and Idempotency-Key records."""
from __future__ import annotations

from pymongo.database import Database

from .consumer import ensure_processed_index
from .http import ensure_idempotency_index
from .outbox import ensure_outbox_indexes


def ensure_plumbing_indexes(db: Database) -> None:
    ensure_outbox_indexes(db)
    ensure_processed_index(db)
    ensure_idempotency_index(db)
