"""The outbox relay: publishes pending events with publisher confirms, in order, and marks
each sent only after the broker confirmed it. Broker down: events wait, nothing is lost.
A crash after the confirm but before the mark publishes the event again on restart; the
consumers are idempotent, so that duplicate changes nothing.

A batch is published as a pipeline: every message of the batch goes out on one channel in
outbox order, then the relay waits for the broker's confirms together and marks the
confirmed ones sent with one write. Waiting for each confirm before the next publish (what
pika's BlockingChannel does) paid a broker fsync and a database round trip per event; see
bench/RESULTS.md. The broker keeps a channel's messages in publish order, so order holds.
A nack (a queue refusing more, an internal broker error) leaves that event pending for the
next batch; events after it in the same batch were already on the wire, so they are marked
by their own confirms — resending them would only duplicate them.

A broker short of disk or memory (a resource alarm) blocks the connections that publish: it
stops reading from them until the alarm clears, and the confirms of what was written come
then. The relay waits on its connection for as long as that lasts, with no confirm timeout:
another connection would be blocked the same way, and the abandoned one would still deliver
its batch when the alarm clears, a second copy of every event in it. It says once that the
broker blocks it, with the broker's reason, and motcua_relay_broker_blocked shows it.

The downlink to the wards' offices has a path of its own. An event an office consumes
(topology.downlink_event_types) is published a second time, on a second channel, to the
motcua.downlink headers exchange, which routes it by its ward to that office's queue at the
centre (motcua.downlink.<ward>). That queue is bounded (topology.QueueBounds) and refuses
what comes beyond its limit; on this path the refusal concerns that ward alone: the event
itself was confirmed on its exchange for everyone else and is marked sent, and its copy for
the ward is held in the outbox (`downlink_held`: the ward), counted in
motcua_downlink_refused_total and motcua_downlink_held_events and said in the log. While a
ward has held events, its new ones are held behind them rather than sent ahead. Every
DOWNLINK_RETRY_SECONDS the relay offers a held ward's events again, oldest first; as the
office drains its queue they go down, and the ward is released when none is left. Were the
downlink bound to the services' exchanges instead, a refusal would fail the publish of the
event itself (reject-publish nacks the publisher), and the relay would hold back and
resend it to every consumer in the city.

What an office can miss: a held event expires with the outbox's sent events
(outbox.SENT_RETENTION_SECONDS, a week) — an office whose queue stayed full longer loses the
oldest of them (appointments from dossiers submitted then, ratable returned dossiers; a
dossier is still rated at the centre by SMS or on the web). Across an overflow the order of
a ward's events can differ from their publication order where the office drained its queue
in the middle of a batch; the office's consumers do not depend on it (each is idempotent
and accepts its events in any order)."""
from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from datetime import datetime, timezone

import aiormq
from opentelemetry.trace import SpanKind
from pamqp.commands import Basic
from pika.exceptions import AMQPError
from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import PyMongoError

from . import metrics, topology, tracing
from .config import Settings
from .outbox import OUTBOX, ensure_outbox_indexes
from .topology import DOWNLINK_EXCHANGE, WARD_HEADER

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 30  # of waiting while the broker does not block the connection
CONFIRM_WAIT_STEP_SECONDS = 1.0  # how often a wait for confirms looks at the broker's state and at stop()
BROKER_ERRORS = (AMQPError, aiormq.exceptions.AMQPError, OSError, asyncio.TimeoutError)
DOWNLINK_TYPES = frozenset(topology.downlink_event_types())
DOWNLINK_HELD = "downlink_held"  # outbox field while a ward's downlink queue has refused the event
DOWNLINK_RETRY_SECONDS = 5.0  # how often a held ward's events are offered again


class RelayStopped(Exception):
    """stop() ended a wait for confirms; the batch's events stay pending."""


class _BrokerConnection(aiormq.Connection):
    """aiormq's connection, telling the relay when the broker blocks it and unblocks it.
    aiormq handles connection.blocked and connection.unblocked itself (it logs them) and has
    no public hook for them; these two methods are the handlers its frame reader calls, so
    they are extended here. They run on the relay's event loop."""

    def __init__(self, url: str, on_blocked, on_unblocked):
        super().__init__(url)
        self._on_blocked, self._on_unblocked = on_blocked, on_unblocked

    async def _Connection__handle_connection_blocked(self, frame) -> None:
        await super()._Connection__handle_connection_blocked(frame)
        self._on_blocked(frame.reason or "no reason given")

    async def _Connection__handle_connection_unblocked(self, frame) -> None:
        await super()._Connection__handle_connection_unblocked(frame)
        self._on_unblocked()


class Relay:
    def __init__(self, db: Database, settings: Settings, service: str, batch_size: int = 500):
        self.db = db
        self.settings = settings
        self.service = service
        self.batch_size = batch_size
        self._loop = asyncio.new_event_loop()
        self._connection: aiormq.Connection | None = None
        self._channel: aiormq.Channel | None = None
        self._stopping = threading.Event()
        self._blocked_since: float | None = None  # monotonic time the broker blocked the connection
        self._downlink: aiormq.Channel | None = None  # the downlink's own channel (see the module's doc)
        self._held_wards: set[str] | None = None  # wards whose downlink refused events; None: not read yet
        self._next_downlink_retry = 0.0
        self.downlink_retry_seconds = DOWNLINK_RETRY_SECONDS
        metrics.RELAY_BROKER_BLOCKED.labels(service).set(0)

    # broker -------------------------------------------------------------
    async def _open_channel(self) -> aiormq.Channel:
        # The topology (exchanges, queues, bindings) is declared once per connection, with
        # the same code every other process uses.
        topology.declare_with_url(self.settings)
        self._connection = _BrokerConnection(self.settings.amqp_url, self._broker_blocked, self._broker_unblocked)
        await self._connection.connect()
        channel = await self._connection.channel(publisher_confirms=True)
        self._downlink = await self._connection.channel(publisher_confirms=True)
        return channel

    def _broker_blocked(self, reason: str) -> None:
        if self._blocked_since is not None:
            return
        self._blocked_since = time.monotonic()
        metrics.RELAY_BROKER_BLOCKED.labels(self.service).set(1)
        log.warning("the broker is blocking publishers (%s); events wait in the outbox until it clears", reason,
                    extra={"outbox_service": self.service})

    def _broker_unblocked(self) -> None:
        if self._blocked_since is None:
            return
        blocked_for = time.monotonic() - self._blocked_since
        self._blocked_since = None
        metrics.RELAY_BROKER_BLOCKED.labels(self.service).set(0)
        log.info("the broker accepts publishes again after %.0f s blocked", blocked_for,
                 extra={"outbox_service": self.service})

    def _ensure_channel(self) -> aiormq.Channel:
        if (self._channel is not None and not self._channel.is_closed and not self._connection.is_closed
                and self._downlink is not None and not self._downlink.is_closed):
            return self._channel
        self._drop_connection()
        self._channel = self._loop.run_until_complete(self._open_channel())
        log.info("relay connected to the broker", extra={"outbox_service": self.service})
        return self._channel

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel, self._downlink = self._connection, None, None, None
        # Whether the broker still blocks publishers, the next connection is told when it publishes.
        self._blocked_since = None
        metrics.RELAY_BROKER_BLOCKED.labels(self.service).set(0)
        if connection is not None:
            try:
                self._loop.run_until_complete(asyncio.wait_for(connection.close(), 5))
            except Exception:  # the connection is already broken; nothing to close cleanly
                pass

    def close(self) -> None:
        self._drop_connection()

    # publishing ---------------------------------------------------------
    @staticmethod
    def _message(doc: dict) -> tuple[bytes, Basic.Properties]:
        envelope = doc["envelope"]
        properties = Basic.Properties(
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,  # persistent
            message_id=envelope["event_id"],
            message_type=envelope["type"],
            timestamp=datetime.now(timezone.utc),
            # ward_id routes the centre's events down to that ward's office (topology.DOWNLINK_EXCHANGE).
            headers={"traceparent": envelope.get("traceparent", ""), WARD_HEADER: envelope.get("ward_id", "")},
        )
        return json.dumps(envelope, ensure_ascii=False).encode("utf-8"), properties

    async def _publish_down(self, docs: list[dict]) -> list[bool]:
        """Publish copies of `docs` to the downlink, in order, on its own channel; True per
        copy confirmed (routed to the ward's queue, or to no queue: a ward without an
        office), False per copy its ward's full queue refused."""
        channel = self._downlink

        async def publish(doc: dict) -> bool:
            body, properties = self._message(doc)
            try:
                await channel.basic_publish(body, exchange=DOWNLINK_EXCHANGE, routing_key=doc["routing_key"],
                                            properties=properties, mandatory=False)
                return True
            except aiormq.exceptions.DeliveryError:
                return False

        return await self._confirms(asyncio.gather(*(publish(doc) for doc in docs)))

    async def _publish_all(self, channel: aiormq.Channel, batch: list[dict],
                           down: list[dict] = ()) -> tuple[list[bool], list[bool]]:
        """Publish the batch in order, and the copies `down` on the downlink's channel;
        (True per confirmed event, False per nacked one) for each."""
        if not down:
            return await self._publish_main(channel, batch), []
        return tuple(await asyncio.gather(self._publish_main(channel, batch), self._publish_down(list(down))))

    async def _publish_main(self, channel: aiormq.Channel, batch: list[dict]) -> list[bool]:
        """Publish the batch in order; True per confirmed event, False per nacked one."""

        async def publish(doc: dict) -> bool:
            body, properties = self._message(doc)
            envelope = doc["envelope"]
            # A PRODUCER span from the publish to the broker's confirm, in the event's trace
            # (its parent is the span that wrote the event into the outbox).
            with tracing.continued_span(f"{doc['exchange']} publish", envelope.get("traceparent"), SpanKind.PRODUCER, {
                    "messaging.system": "rabbitmq", "messaging.operation.type": "publish",
                    "messaging.destination.name": doc["exchange"], "messaging.message.id": envelope["event_id"],
                    "motcua.event_type": envelope["type"]}) as span:
                try:
                    await channel.basic_publish(body, exchange=doc["exchange"], routing_key=doc["routing_key"],
                                                properties=properties, mandatory=False)
                    return True
                except aiormq.exceptions.DeliveryError:
                    tracing.mark_failed(span, "refused by the broker")
                    return False

        # Tasks start in creation order and take the channel's FIFO write lock in that
        # order, so the messages leave in outbox order; only the confirms are awaited together.
        return await self._confirms(asyncio.gather(*(publish(doc) for doc in batch)))

    async def _confirms(self, confirms: asyncio.Future) -> list[bool]:
        """Wait for a published batch's confirms. While the broker blocks the connection the
        wait has no end but stop(): its confirms come when the alarm clears. Otherwise
        CONFIRM_TIMEOUT_SECONDS without them is a broker error (TimeoutError)."""
        unblocked_wait = 0.0
        try:
            while True:
                done, _ = await asyncio.wait({confirms}, timeout=CONFIRM_WAIT_STEP_SECONDS)
                if done:
                    return confirms.result()
                if self._stopping.is_set():
                    raise RelayStopped()
                if self._blocked_since is None:
                    unblocked_wait += CONFIRM_WAIT_STEP_SECONDS
                    if unblocked_wait >= CONFIRM_TIMEOUT_SECONDS:
                        raise TimeoutError()
        finally:
            if not confirms.done():
                confirms.cancel()
                await asyncio.gather(confirms, return_exceptions=True)

    def publish_pending(self) -> int:
        """Publish one batch of pending events in order; return how many were confirmed."""
        batch = list(
            self.db[OUTBOX]
            .find({"status": "pending"})
            .sort([("seq", 1), ("n", 1)])
            .limit(self.batch_size)
        )
        if not batch:
            self.release_held()
            return 0
        channel = self._ensure_channel()
        held_wards = self._wards_held()
        for_wards = [doc for doc in batch if self._downlink_ward(doc)]
        down = [doc for doc in for_wards if self._downlink_ward(doc) not in held_wards]
        outcomes, down_outcomes = self._loop.run_until_complete(self._publish_all(channel, batch, down))
        confirmed = [doc for doc, ok in zip(batch, outcomes) if ok]
        refused = [doc for doc, ok in zip(batch, outcomes) if not ok]
        # Held for its ward: refused by the ward's queue now, or behind events refused before.
        down_refused = {doc["_id"] for doc, ok in zip(down, down_outcomes) if not ok}
        held = {doc["_id"]: self._downlink_ward(doc) for doc in for_wards
                if doc["_id"] in down_refused or self._downlink_ward(doc) in held_wards}
        if confirmed:
            # One round trip of updates each by _id: a single update_many with $in was
            # matched against every pending event by the embedded database (a scan, two
            # thirds of its time in the pipeline bench); by _id it is an index lookup anywhere.
            sent_at = datetime.now(timezone.utc)
            self.db[OUTBOX].bulk_write([
                UpdateOne({"_id": doc["_id"]}, {"$set": {"status": "sent", "sent_at": sent_at,
                                                         **({DOWNLINK_HELD: held[doc["_id"]]} if doc["_id"] in held else {})},
                                                "$inc": {"attempts": 1}})
                for doc in confirmed], ordered=False)
            self._note_held([doc for doc in confirmed if doc["_id"] in down_refused])
            for ward in {held[doc["_id"]] for doc in confirmed if doc["_id"] in held}:
                self._count_held(ward)
        if refused:
            log.warning("broker refused %d event(s); they stay pending", len(refused),
                        extra={"event_id": refused[0]["envelope"]["event_id"]})
            self.db[OUTBOX].update_many({"_id": {"$in": [doc["_id"] for doc in refused]}}, {"$inc": {"attempts": 1}})
        for doc in confirmed:
            metrics.EVENTS_PUBLISHED.labels(self.service, doc["envelope"]["type"]).inc()
        self.release_held()
        return len(confirmed)

    # the downlink's held events ---------------------------------------------
    @staticmethod
    def _downlink_ward(doc: dict) -> str:
        """The ward whose office gets a copy of this event ("" for none)."""
        return doc["envelope"].get("ward_id") or "" if doc["routing_key"] in DOWNLINK_TYPES else ""

    def _wards_held(self) -> set[str]:
        if self._held_wards is None:
            self.db[OUTBOX].create_index(DOWNLINK_HELD, sparse=True, name="downlink_held")
            self._held_wards = {ward for ward in self.db[OUTBOX].distinct(DOWNLINK_HELD) if ward}
            for ward in self._held_wards:
                self._count_held(ward)
        return self._held_wards

    def _count_held(self, ward: str) -> int:
        held = self.db[OUTBOX].count_documents({DOWNLINK_HELD: ward})
        metrics.DOWNLINK_HELD.labels(self.service, ward).set(held)
        return held

    def _note_held(self, refused: list[dict]) -> None:
        for doc in refused:
            ward = self._downlink_ward(doc)
            metrics.DOWNLINK_REFUSED.labels(self.service, ward).inc()
            if ward not in self._held_wards:
                self._held_wards.add(ward)
                log.warning("the downlink queue of ward %s is full: its events are held in the outbox until its office "
                            "drains it; the other wards and the centre's consumers are not affected", ward,
                            extra={"outbox_service": self.service, "ward_id": ward, "event_id": doc["_id"]})

    def release_held(self, force: bool = False) -> int:
        """Offer the held wards' events to their queues again, oldest first (at most once
        every downlink_retry_seconds, unless `force`); return how many went down."""
        if not self._wards_held() or (not force and time.monotonic() < self._next_downlink_retry):
            return 0
        self._next_downlink_retry = time.monotonic() + self.downlink_retry_seconds
        self._ensure_channel()
        released = 0
        for ward in sorted(self._held_wards):
            docs = list(self.db[OUTBOX].find({DOWNLINK_HELD: ward}).sort([("seq", 1), ("n", 1)]).limit(self.batch_size))
            outcomes = self._loop.run_until_complete(self._publish_down(docs)) if docs else []
            sent = [doc["_id"] for doc, ok in zip(docs, outcomes) if ok]
            if sent:
                self.db[OUTBOX].update_many({"_id": {"$in": sent}}, {"$unset": {DOWNLINK_HELD: ""}})
                released += len(sent)
            if self._count_held(ward) == 0:
                self._held_wards.discard(ward)
                log.info("the downlink queue of ward %s accepts again: its held events went down", ward,
                         extra={"outbox_service": self.service, "ward_id": ward})
        return released

    def _idle(self, seconds: float) -> None:
        """Wait, letting the connection answer heartbeats meanwhile."""
        if self._connection is None or self._connection.is_closed:
            self._stopping.wait(seconds)
        else:
            self._loop.run_until_complete(asyncio.sleep(seconds))

    def run_forever(self) -> None:
        ensure_outbox_indexes(self.db)
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                published = self.publish_pending()
                backoff = 0.5
                if published < self.batch_size:
                    self._idle(self.settings.relay_poll_seconds)
            except BROKER_ERRORS as exc:
                log.warning("broker unavailable, events wait in the outbox: %s", exc.__class__.__name__)
                self._drop_connection()
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10)
            except PyMongoError as exc:
                log.warning("database unavailable: %s", exc.__class__.__name__)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10)
            except RelayStopped:
                break
        self._drop_connection()

    def stop(self, *_args) -> None:
        self._stopping.set()


def main(service: str) -> None:
    from . import audit
    from .logs import configure_logging
    from .mongo import connect, service_database

    settings = Settings.from_env()
    configure_logging(service, "relay", settings.log_level)
    tracing.configure_tracing(service, "relay")
    db = service_database(connect(settings), settings, service)
    relay = Relay(db, settings, service)
    signal.signal(signal.SIGTERM, relay.stop)
    signal.signal(signal.SIGINT, relay.stop)
    metrics.serve_worker_metrics(service, "relay")
    # The audit records the service's requests stored wait here to be hash-chained (audit.py);
    # the relay is the service's one long-running writer beside its API, so it chains them.
    audit.start_chainer(db, relay._stopping, service)
    log.info("relay started")
    relay.run_forever()
    log.info("relay stopped")
