"""The outbox relay: publishes pending events with publisher confirms, in order, and marks
each sent only after the broker confirmed it. Broker down: events wait, nothing is lost.
A crash after the confirm but before the mark publishes the event again on restart; the
consumers are idempotent, so that duplicate changes nothing."""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
from datetime import datetime, timezone

import pika
from pika.exceptions import AMQPError, NackError, UnroutableError
from pymongo.database import Database
from pymongo.errors import PyMongoError

from . import metrics, topology
from .config import Settings
from .outbox import OUTBOX, ensure_outbox_indexes

log = logging.getLogger(__name__)


class Relay:
    def __init__(self, db: Database, settings: Settings, service: str, batch_size: int = 100):
        self.db = db
        self.settings = settings
        self.service = service
        self.batch_size = batch_size
        self._connection: pika.BlockingConnection | None = None
        self._channel = None
        self._stopping = threading.Event()

    # broker -------------------------------------------------------------
    def _ensure_channel(self):
        if self._channel is not None and self._channel.is_open:
            return self._channel
        params = pika.URLParameters(self.settings.amqp_url)
        params.heartbeat = 15
        params.blocked_connection_timeout = 30
        self._connection = pika.BlockingConnection(params)
        channel = self._connection.channel()
        topology.declare(channel, self.settings)
        channel.confirm_delivery()
        self._channel = channel
        log.info("relay connected to the broker", extra={"outbox_service": self.service})
        return channel

    def _drop_connection(self) -> None:
        try:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
        except Exception:  # the connection is already broken; nothing to close cleanly
            pass
        self._connection = None
        self._channel = None

    def close(self) -> None:
        self._drop_connection()

    # publishing ---------------------------------------------------------
    def publish_pending(self) -> int:
        """Publish one batch of pending events in order; return how many were confirmed."""
        batch = list(
            self.db[OUTBOX]
            .find({"status": "pending"})
            .sort([("seq", 1), ("n", 1)])
            .limit(self.batch_size)
        )
        if not batch:
            return 0
        channel = self._ensure_channel()
        confirmed = 0
        for doc in batch:
            envelope = doc["envelope"]
            properties = pika.BasicProperties(
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=envelope["event_id"],
                type=envelope["type"],
                timestamp=int(time.time()),
                headers={"traceparent": envelope.get("traceparent", "")},
            )
            try:
                # BlockingChannel in confirm mode returns only after the broker's ack.
                channel.basic_publish(
                    exchange=doc["exchange"],
                    routing_key=doc["routing_key"],
                    body=json.dumps(envelope, ensure_ascii=False).encode("utf-8"),
                    properties=properties,
                )
            except UnroutableError:
                pass  # confirmed by the broker; nobody was bound (not an error for a topic)
            except NackError:
                log.warning("broker refused an event; will retry", extra={"event_id": envelope["event_id"]})
                self.db[OUTBOX].update_one({"_id": doc["_id"]}, {"$inc": {"attempts": 1}})
                break  # keep order: do not publish later events before this one
            self.db[OUTBOX].update_one(
                {"_id": doc["_id"], "status": "pending"},
                {"$set": {"status": "sent", "sent_at": datetime.now(timezone.utc)}, "$inc": {"attempts": 1}},
            )
            confirmed += 1
            metrics.EVENTS_PUBLISHED.labels(self.service, envelope["type"]).inc()
        return confirmed

    def run_forever(self) -> None:
        ensure_outbox_indexes(self.db)
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                published = self.publish_pending()
                backoff = 0.5
                if published < self.batch_size:
                    self._stopping.wait(self.settings.relay_poll_seconds)
                if self._connection is not None:
                    self._connection.process_data_events(0)  # heartbeats while idle
            except (AMQPError, OSError) as exc:
                log.warning("broker unavailable, events wait in the outbox: %s", exc.__class__.__name__)
                self._drop_connection()
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10)
            except PyMongoError as exc:
                log.warning("database unavailable: %s", exc.__class__.__name__)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10)
        self._drop_connection()

    def stop(self, *_args) -> None:
        self._stopping.set()


def main(service: str) -> None:
    from .logs import configure_logging
    from .mongo import connect, service_database

    settings = Settings.from_env()
    configure_logging(service, "relay", settings.log_level)
    db = service_database(connect(settings), settings, service)
    relay = Relay(db, settings, service)
    signal.signal(signal.SIGTERM, relay.stop)
    signal.signal(signal.SIGINT, relay.stop)
    metrics.serve_worker_metrics(service, "relay")
    log.info("relay started")
    relay.run_forever()
    log.info("relay stopped")
