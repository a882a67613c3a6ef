"""Idempotent, never-forgetting event consumers for nameko.

`event_handler(event_type)` is nameko's EventHandler with three changes:
  * it consumes the queue of motcua_common.topology (declared up front, never by nameko,
    so the arguments cannot disagree), and refuses to start for an undeclared subscription;
  * a malformed message (not JSON, not an envelope, payload against its schema) goes to
    the dead-letter queue with the reason, instead of killing the consumer or being acked;
  * a handler that raises is retried after a delay (through Q.retry) a bounded number of
    times, then dead-lettered with the reason. nameko's default acks and forgets.

`handle_once(db, consumer, event, work)` runs `work(session)` in one transaction with the
record of the event's id (unique), so a redelivered event changes nothing.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
import weakref
from datetime import datetime, timezone
from functools import partial, wraps
from typing import Callable

from eventlet.semaphore import Semaphore
from kombu import Connection, Producer, Queue
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer
from opentelemetry.trace import SpanKind
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from . import metrics, topology, tracing
from .config import Settings
from .events import Event, InvalidEvent, parse_envelope
from .mongo import in_transaction

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-motcua-attempts"
ERROR_HEADER = "x-motcua-error"
PROCESSED = "processed_events"


class SafeQueueConsumer(QueueConsumer):
    """Shared by every motcua event handler of a container. Owns a second connection,
    in confirm mode, used to move failed messages to the retry and dead-letter queues."""

    def setup(self):
        super().setup()
        self._producer_lock = Semaphore()
        self._producer_connection = None

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_decode_error = partial(self._on_decode_error, provider)
        return consumers

    def _on_decode_error(self, provider, message, exc):
        provider.dead_letter(message, f"undecodable message: {exc}")

    def republish(self, message, routing_key: str, exchange: str = "", headers: dict | None = None) -> None:
        """Publish a copy of `message` (same body and properties), waiting for the confirm."""
        with self._producer_lock:
            if self._producer_connection is None:
                self._producer_connection = Connection(
                    self.amqp_uri, transport_options={"confirm_publish": True}, heartbeat=15
                )
            producer = Producer(self._producer_connection)
            props = message.properties or {}
            publish = self._producer_connection.ensure(producer, producer.publish, max_retries=5)
            publish(
                message.body,
                exchange=exchange,
                routing_key=routing_key,
                headers={**(message.headers or {}), **(headers or {})},
                content_type=message.content_type or "application/octet-stream",
                content_encoding=message.content_encoding or "binary",
                delivery_mode=2,
                message_id=props.get("message_id"),
                type=props.get("type"),
            )

    def stop(self):
        if getattr(self, "_producer_connection", None) is not None:
            try:
                self._producer_connection.release()
            except Exception:
                pass
        super().stop()


class MotcuaEventHandler(EventHandler):
    queue_consumer = SafeQueueConsumer()

    def __init__(self, event_type: str, **kwargs):
        self.subscription = None
        source = topology.EVENT_TYPES[event_type][0] if event_type in topology.EVENT_TYPES else "?"
        super().__init__(source, event_type, **kwargs)

    @property
    def _settings(self) -> Settings:
        return self.container.config.get("MOTCUA_SETTINGS") or Settings.from_env()

    def setup(self):
        self.subscription = topology.subscription(self.container.service_name, self.event_type)
        # no_declare: the topology module declared it (with its arguments) at start-up.
        self.queue = Queue(self.subscription.queue, no_declare=True)
        # Skip EventHandler.setup, which would declare nameko's own queue name.
        super(EventHandler, self).setup()

    def handle_message(self, body, message):
        try:
            event = parse_envelope(body)
        except InvalidEvent as exc:
            self.dead_letter(message, f"invalid event: {exc}")
            return
        if event.type != self.event_type:
            self.dead_letter(message, f"event of type {event.type} on the queue for {self.event_type}")
            return
        context_data = self.unpack_message_headers(message)
        handle_result = partial(self.handle_result, message, event)
        try:
            self.container.spawn_worker(self, (event,), {}, context_data=context_data, handle_result=handle_result)
        except Exception:  # container being killed: give the message back
            self.queue_consumer.requeue_message(message)

    def handle_result(self, message, event, worker_ctx, result=None, exc_info=None):
        service = self.container.service_name
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            metrics.EVENTS_CONSUMED.labels(service, event.type, result if result in ("duplicate",) else "processed").inc()
            return result, exc_info
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0)) + 1
        reason = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()[:500]
        if attempts < self._settings.consumer_max_attempts:
            log.warning(
                "handler failed, will retry",
                extra={"event_id": event.event_id, "event_type": event.type, "attempt": attempts, "error": reason},
            )
            self.queue_consumer.republish(
                message, self.subscription.retry_queue, headers={ATTEMPTS_HEADER: attempts, ERROR_HEADER: reason}
            )
            self.queue_consumer.ack_message(message)
            metrics.EVENTS_CONSUMED.labels(service, event.type, "retried").inc()
        else:
            self.dead_letter(message, f"handler failed {attempts} times: {reason}", attempts=attempts)
        return result, exc_info

    def dead_letter(self, message, reason: str, attempts: int | None = None) -> None:
        """Move a message to its dead-letter queue with the reason, then ack it."""
        service = self.container.service_name
        log.error(
            "message dead-lettered",
            extra={"queue": self.subscription.queue, "reason": reason, "message_id": (message.properties or {}).get("message_id")},
        )
        headers = {ERROR_HEADER: reason[:1000], "x-motcua-queue": self.subscription.queue,
                   "x-motcua-dead-at": datetime.now(timezone.utc).isoformat()}
        if attempts is not None:
            headers[ATTEMPTS_HEADER] = attempts
        self.queue_consumer.republish(
            message, self.subscription.queue, exchange=topology.DEAD_LETTER_EXCHANGE, headers=headers
        )
        self.queue_consumer.ack_message(message)
        metrics.EVENTS_CONSUMED.labels(service, self.event_type, "dead_lettered").inc()


def event_handler(event_type: str, **kwargs):
    """Decorate a service method to handle `event_type` (see the module's docstring).

    The method runs inside a CONSUMER span, child of the span that emitted the event (the
    envelope's traceparent). It is opened here, in the method's own green thread, because
    nameko runs each handler in a new one and the tracing context is per green thread."""

    def decorate(method):
        @wraps(method)
        def traced(self, event: Event, *args, **kw):
            subscription = topology.subscription(self.name, event_type)
            attributes = {"messaging.system": "rabbitmq", "messaging.operation.type": "process",
                          "messaging.destination.name": subscription.queue, "messaging.message.id": event.event_id,
                          "motcua.event_type": event.type, "motcua.ward_id": event.ward_id}
            with tracing.continued_span(f"{event.type} process", event.traceparent, SpanKind.CONSUMER,
                                        attributes) as span:
                result = method(self, event, *args, **kw)
                if isinstance(result, str):
                    span.set_attribute("motcua.outcome", result)
                return result

        return MotcuaEventHandler.decorator(event_type, **kwargs)(traced)

    return decorate


def ensure_processed_index(db: Database) -> None:
    # _id is the unique key; this index lets old records expire after 30 days.
    db[PROCESSED].create_index("at", expireAfterSeconds=30 * 24 * 3600)


def handle_once(db: Database, consumer: str, event: Event, work: Callable[[ClientSession], object]) -> str:
    """Apply `work(session)` for `event` at most once, atomically with its processed mark.

    Returns "processed", or "duplicate" when the event was already handled. Calls made at
    the same time on the same database (a worker's handlers run side by side) share one
    transaction: see GroupCommit."""
    return GroupCommit.of(db).submit(f"{consumer}:{event.event_id}", event.type, work)


def handle_idempotent(db: Database, consumer: str, event: Event, apply: Callable[[], object]) -> str:
    """For a change that is idempotent by itself and touches one document — applied again,
    even after later events' changes to that document, it leaves what they left (a
    `$setOnInsert` upsert; fields only this event sets; `$min`): `apply()` without a
    transaction, then the processed mark. Returns "processed", or "duplicate" when the
    event's mark is there already (then nothing is applied).

    Why not handle_once: its transaction is what such a change does not need, and on the
    embedded database every transaction statement of every client waits for one lock
    (bench/RESULTS.md, Hà Nội's day): the queue's activity lines and rating's opportunities
    were most of the platform's transactions, and their queues fell hours behind.

    The order is what makes it safe: killed after the change and before the mark, the
    redelivered event applies the change again (nothing moves) and marks it; the mark never
    exists without its change. `apply` must not raise for a change already applied."""
    key = f"{consumer}:{event.event_id}"
    if db[PROCESSED].find_one({"_id": key}, {"_id": 1}) is not None:
        return "duplicate"
    try:
        apply()
    except DuplicateKeyError:
        # Two deliveries of one subject's events raced to create its document and this one
        # lost the insert: the document exists now, so the same upsert matches it.
        apply()
    try:
        db[PROCESSED].insert_one({"_id": key, "type": event.type, "at": datetime.now(timezone.utc)})
    except DuplicateKeyError:
        return "duplicate"  # a concurrent delivery of the same event marked it first
    return "processed"


def _handle_alone(db: Database, key: str, event_type: str, work: Callable[[ClientSession], object]) -> str:
    def tx(session: ClientSession) -> str:
        # The mark's unique _id is the check: a seen event fails this insert (below), so
        # a fresh one, nearly every event, costs one round trip less than read-then-write.
        db[PROCESSED].insert_one({"_id": key, "type": event_type, "at": datetime.now(timezone.utc)}, session=session)
        work(session)
        return "processed"

    try:
        return in_transaction(db, tx)
    except DuplicateKeyError:
        return "duplicate"  # handled before, or a concurrent delivery of it won the race


class _Pending:
    __slots__ = ("key", "event_type", "work", "done", "lead", "result", "error")

    def __init__(self, key: str, event_type: str, work: Callable[[ClientSession], object]):
        self.key, self.event_type, self.work = key, event_type, work
        self.done = threading.Event()
        self.lead = False
        self.result: str | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Group commit for handle_once: the events that arrive while a transaction is running
    wait for it and then go together in the next one, up to MAX_GROUP.

    Why: the commit, not the work, is what an event costs (a round trip and, with a
    replica set or --sync-on-commit, a journal flush); twenty handlers each committing
    alone spent most of their time there (bench/RESULTS.md, the event pipeline). Each
    event still takes effect atomically with its processed mark: a group is one
    transaction, so all of it commits or none. If any member fails (its work raised, a
    mark already exists from another process), the group is undone and every member is run
    alone, exactly as before grouping, so one bad event never fails or delays the verdict of
    another. Work must touch only the database through `session` (it may run twice: in an
    undone group, then alone — as with_transaction's own retries already allowed)."""

    MAX_GROUP = 50
    GATHER = True
    # Weak: a group matters only while calls are in it (they hold it); an idle one may go.
    _registry: "weakref.WeakValueDictionary[tuple[int, str], GroupCommit]" = weakref.WeakValueDictionary()
    _registry_lock = threading.Lock()

    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._busy = False

    @classmethod
    def of(cls, db: Database) -> "GroupCommit":
        key = (id(db.client), db.name)
        with cls._registry_lock:
            group = cls._registry.get(key)
            if group is None or group.db.client is not db.client:
                group = cls._registry[key] = cls(db)
            return group

    def submit(self, key: str, event_type: str, work: Callable[[ClientSession], object]) -> str:
        item = _Pending(key, event_type, work)
        with self._lock:
            self._queue.append(item)
            leading = not self._busy
            self._busy = True
        if not leading:
            item.done.wait()
            if not item.lead:
                return self._outcome(item)
        elif self.GATHER:
            # Handlers of messages delivered together start one after another: let those
            # ready to run reach the queue first, so they share this transaction instead of
            # waiting for it and committing alone after (a yield, no wait: under eventlet
            # they are green threads already runnable; with real threads, a GIL release).
            time.sleep(0)
        # This caller commits for everyone waiting, until its own event is done, then hands
        # the queue to the next waiter (so nobody waits for more than its own group).
        group: list[_Pending] = []
        try:
            while item.result is None and item.error is None:
                with self._lock:
                    group, self._queue = self._queue[:self.MAX_GROUP], self._queue[self.MAX_GROUP:]
                self._run(group)
        finally:
            for member in group:  # the leader was killed mid-group: its members must not wait forever
                if member.result is None and member.error is None:
                    member.error = RuntimeError("the transaction carrying this event was abandoned")
                    member.done.set()
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._busy = False
        return self._outcome(item)

    @staticmethod
    def _outcome(item: _Pending) -> str:
        if item.error is not None:
            raise item.error
        return item.result

    def _run(self, group: list[_Pending]) -> None:
        if len(group) > 1:
            try:
                results = in_transaction(self.db, lambda session: self._apply(session, group))
            except Exception:  # one member's failure undid the group: each goes alone
                pass
            else:
                for item, result in zip(group, results):
                    item.result = result
                    item.done.set()
                return
        for item in group:
            try:
                item.result = _handle_alone(self.db, item.key, item.event_type, item.work)
            except Exception as exc:  # handed to the member's own handler, which retries
                item.error = exc
            item.done.set()

    def _apply(self, session: ClientSession, group: list[_Pending]) -> list[str]:
        # No read first: a mark that exists (a redelivery, or the same event twice in the
        # group) fails the insert, the group is undone and its members run alone, where
        # the duplicate is answered as such. Duplicates are rare; the read would be paid always.
        now = datetime.now(timezone.utc)
        self.db[PROCESSED].insert_many([{"_id": item.key, "type": item.event_type, "at": now} for item in group],
                                       session=session)
        for item in group:
            item.work(session)
        return ["processed"] * len(group)


class ServiceDatabase(DependencyProvider):
    """Injects the service's own pymongo Database; the client is made in setup()."""

    def __init__(self, service: str):
        self.service = service
        self.client = None

    def setup(self):
        from .mongo import connect, service_database

        settings = self.container.config.get("MOTCUA_SETTINGS") or Settings.from_env()
        self.client = connect(settings)
        self.database = service_database(self.client, settings, self.service)

    def stop(self):
        if self.client is not None:
            self.client.close()

    def get_dependency(self, worker_ctx):
        return self.database


class SettingsProvider(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return self.container.config.get("MOTCUA_SETTINGS") or Settings.from_env()
