"""The whole broker topology, defined once and declared by every process at start-up.

A topic exchange drops a message that no queue is bound for, so every consumer queue is
declared before anything is published, whichever process starts first. Each consumer
queue Q has:
  Q.retry  holds a failed message for a delay, then dead-letters it back into Q;
  Q.dead   receives a message that failed too often or is malformed, with the reason.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from .config import SERVICES, Settings
from .events import EVENT_TYPES, exchange_for

DEAD_LETTER_EXCHANGE = "motcua.dead-letter"
# The services a ward's office runs on its own broker (`motcua up --profile edge`).
EDGE_SERVICES = ("queue", "rating")
# The centre's events an office needs go down through a headers exchange that matches the
# ward (the relay puts the envelope's ward_id in a header): an office's queue binds to its
# own ward only, so it never receives another ward's dossiers. Routing keys stay the
# event types, as on every other exchange.
DOWNLINK_EXCHANGE = "motcua.downlink"
WARD_HEADER = "ward_id"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueBounds:
    """The size limits of the queues that carry events between the centre and an office.

    An office offline long enough would otherwise fill a broker's disk, and a broker's disk
    alarm stops every publisher on it: at the centre, the whole city. Each queue is bounded
    in messages and in bytes, and refuses what comes beyond (x-overflow reject-publish: the
    publisher is told, nothing is dropped silently). What the refusal means:

    * the downlink (motcua.downlink.<ward>, at the centre): the relay publishes there on a
      path of its own (relay.py), so a refusal holds that ward's events in the publishing
      service's outbox and sends them when the office drains its queue; nobody else waits.
    * the uplink (motcua.uplink.<exchange>, at the office): the office's relay keeps the
      refused event pending in the office's outbox (its own disk) and retries it.

    Defaults: a ward's dossier events are a few hundred a day, so 20,000 messages hold
    months of downlink; 20 MiB each keeps a hundred offices within 2 GiB of the central
    broker's disk. An office's uplink (tickets, calls, ratings: about a thousand a day)
    holds 100,000 messages or 100 MiB on its own disk. Alerts fire at half of each. A quorum
    queue applies its bound once it is reached: what is already in flight then (at most a
    relay's batch, a shovel's prefetch) still goes in, and it refuses from there on."""

    downlink_max_length: int = 20_000
    downlink_max_bytes: int = 20 * 1024 * 1024
    uplink_max_length: int = 100_000
    uplink_max_bytes: int = 100 * 1024 * 1024

    @classmethod
    def from_env(cls, env: dict | None = None) -> "QueueBounds":
        env = os.environ if env is None else env
        return cls(
            downlink_max_length=int(env.get("MOTCUA_DOWNLINK_MAX_LENGTH", cls.downlink_max_length)),
            downlink_max_bytes=int(env.get("MOTCUA_DOWNLINK_MAX_BYTES", cls.downlink_max_bytes)),
            uplink_max_length=int(env.get("MOTCUA_UPLINK_MAX_LENGTH", cls.uplink_max_length)),
            uplink_max_bytes=int(env.get("MOTCUA_UPLINK_MAX_BYTES", cls.uplink_max_bytes)),
        )

    def downlink_arguments(self) -> dict:
        return {"x-queue-type": "quorum", "x-max-length": self.downlink_max_length,
                "x-max-length-bytes": self.downlink_max_bytes, "x-overflow": "reject-publish"}

    def uplink_arguments(self) -> dict:
        return {"x-queue-type": "quorum", "x-max-length": self.uplink_max_length,
                "x-max-length-bytes": self.uplink_max_bytes, "x-overflow": "reject-publish"}


def declare_bounded_queue(connection, queue: str, arguments: dict):
    """Declare `queue` (durable) with its bounds on a new channel of a pika connection, and
    return the channel to go on with. A queue declared before it had bounds (or with other
    ones) keeps working as it is — a broker never changes a queue's arguments — and the log
    says once how to bound it with a policy, which applies to an existing queue."""
    import pika.exceptions

    channel = connection.channel()
    try:
        channel.queue_declare(queue, durable=True, arguments=arguments)
        return channel
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:  # PRECONDITION_FAILED: it exists with other arguments
            raise
    channel = connection.channel()
    channel.queue_declare(queue, passive=True)
    definition = {"max-length": arguments["x-max-length"], "max-length-bytes": arguments["x-max-length-bytes"],
                  "overflow": arguments["x-overflow"]}
    log.warning("queue %s exists without these bounds: bound it with rabbitmqctl set_policy motcua-bounds '^%s$' "
                "'%s' --apply-to queues (or delete it when empty and restart)", queue, queue.replace(".", "\\."),
                json.dumps(definition))
    return channel


@dataclass(frozen=True)
class Subscription:
    consumer: str        # the service that consumes
    event_type: str      # the event it consumes

    @property
    def source(self) -> str:
        return EVENT_TYPES[self.event_type][0]

    @property
    def queue(self) -> str:
        return f"{self.consumer}.{self.source}.{self.event_type}"

    @property
    def retry_queue(self) -> str:
        return f"{self.queue}.retry"

    @property
    def dead_queue(self) -> str:
        return f"{self.queue}.dead"


# The centre sees every office. A ward office's queue and rating publish to the office's own
# broker and its uplink shovel carries their events to the centre's queue.events and
# rating.events; the office's database never reaches the centre. So the centre's read
# models of those services' own events are made from the events, every ward's alike:
# rating's statistics and rankings (office_ratings.py), queue's daily activity
# (activity.py). The only subscriptions of a service to its own events: at the centre it
# hears back what it published itself, which changes nothing.
OFFICE_READ_MODELS: tuple[Subscription, ...] = (
    Subscription("rating", "RatingGiven"),
    Subscription("queue", "TicketIssued"),
    Subscription("queue", "TicketCalled"),
    Subscription("queue", "TicketServed"),
)

# Who consumes what (DESIGN.md §3). A handler for an event not listed here refuses to start.
SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription("dossier", "CitizenRegistered"),
    Subscription("queue", "DossierSubmitted"),
    Subscription("notify", "CitizenRegistered"),
    Subscription("notify", "DossierSubmitted"),
    Subscription("notify", "DossierStatusChanged"),
    Subscription("notify", "DossierResultReady"),
    Subscription("rating", "TicketServed"),
    Subscription("rating", "DossierResultReady"),
    Subscription("rating", "DossierStatusChanged"),
    # A ward opened by its official code: each service keeps its own record of it.
    Subscription("dossier", "WardOpened"),
    Subscription("queue", "WardOpened"),
    Subscription("rating", "WardOpened"),
    # Sessions ended early (an officer deactivated, a citizen's phone corrected): every
    # service that checks tokens keeps the list (revocations.py).
    Subscription("dossier", "SessionsRevoked"),
    Subscription("queue", "SessionsRevoked"),
    Subscription("rating", "SessionsRevoked"),
    Subscription("notify", "SessionsRevoked"),
    # Overdue dossiers reach the ward's leader in an end-of-day digest.
    Subscription("notify", "DossierOverdue"),
    # The public scorecards (transparency) count satisfaction from ratings.
    Subscription("dossier", "RatingGiven"),
    *OFFICE_READ_MODELS,
)


def downlink_event_types() -> tuple[str, ...]:
    """The events an office's services consume that are published by services it does not
    run (the centre's): queue's appointments, rating's dossier ratings."""
    return tuple(sorted({sub.event_type for sub in SUBSCRIPTIONS
                         if sub.consumer in EDGE_SERVICES and sub.source not in EDGE_SERVICES}))


def subscription(consumer: str, event_type: str) -> Subscription:
    for sub in SUBSCRIPTIONS:
        if sub.consumer == consumer and sub.event_type == event_type:
            return sub
    raise LookupError(f"{consumer} does not subscribe to {event_type} in motcua_common.topology.SUBSCRIPTIONS")


def queue_arguments(settings: Settings) -> dict:
    args = {}
    if settings.queue_type == "quorum":
        args["x-queue-type"] = "quorum"
    return args


def _at_least_once(settings: Settings) -> dict:
    # Quorum queues dead-letter at most once unless told otherwise; the retry queue hands
    # messages back to the consumer queue by dead-lettering, so it must not lose them.
    if settings.queue_type != "quorum":
        return {}
    return {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


def poison_arguments(sub: Subscription, settings: Settings) -> dict:
    """A message delivered delivery_limit times without being acknowledged — an event whose
    handler kills its worker, so the consumer's own bounded retry never runs — leaves the
    queue for the subscription's dead-letter queue instead of being redelivered for ever
    (or, on a broker with a default limit, dropped without a word). Quorum queues only."""
    if settings.queue_type != "quorum":
        return {}
    return {"x-delivery-limit": settings.consumer_delivery_limit, "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": sub.queue, "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish"}


def _declare_consumer_queue(channel, sub: Subscription, settings: Settings):
    """The consumer queue with its delivery limit. A queue declared by an older version
    without it keeps working as it is (the broker refuses to change a queue's arguments):
    said once in the log, with the policy that adds the limit. Returns the channel to go on
    with (a refused declaration closes the one it was made on)."""
    import logging

    import pika.exceptions

    try:
        channel.queue_declare(sub.queue, durable=True, arguments={**queue_arguments(settings),
                                                                  **poison_arguments(sub, settings)})
        return channel
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:  # PRECONDITION_FAILED: it exists with other arguments
            raise
    channel = channel.connection.channel()
    channel.queue_declare(sub.queue, passive=True)
    logging.getLogger(__name__).warning(
        "queue %s has no delivery limit (declared before it existed): an event that kills its worker is "
        "redelivered for ever; add it with rabbitmqctl set_policy motcua-poison '^%s$' "
        "'{\"delivery-limit\": %d, \"dead-letter-exchange\": \"%s\", \"dead-letter-routing-key\": \"%s\"}' "
        "--apply-to quorum_queues, or delete the empty queue and restart", sub.queue, sub.queue.replace(".", "\\."),
        settings.consumer_delivery_limit, DEAD_LETTER_EXCHANGE, sub.queue)
    return channel


def declare(channel, settings: Settings) -> None:
    """Declare exchanges, queues and bindings on a pika channel (idempotent)."""
    for service in SERVICES:
        channel.exchange_declare(exchange_for(service), exchange_type="topic", durable=True)
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True)
    base = queue_arguments(settings)
    for sub in SUBSCRIPTIONS:
        channel = _declare_consumer_queue(channel, sub, settings)
        channel.queue_bind(sub.queue, exchange_for(sub.source), routing_key=sub.event_type)
        channel.queue_declare(
            sub.retry_queue,
            durable=True,
            arguments={
                **base,
                "x-message-ttl": settings.consumer_retry_delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": sub.queue,
                **_at_least_once(settings),
            },
        )
        channel.queue_declare(sub.dead_queue, durable=True, arguments=dict(base))
        channel.queue_bind(sub.dead_queue, DEAD_LETTER_EXCHANGE, routing_key=sub.queue)
    # The downlink is fed by the relays on a publisher path of its own (relay.py), never by a
    # binding from the services' exchanges: a ward's full downlink queue refuses a message,
    # and through a binding that refusal would fail the publish of the event itself, for
    # every consumer in the city. Bindings an earlier version made are removed.
    channel.exchange_declare(DOWNLINK_EXCHANGE, exchange_type="headers", durable=True)
    for event_type in downlink_event_types():
        channel.exchange_unbind(DOWNLINK_EXCHANGE, exchange_for(EVENT_TYPES[event_type][0]), routing_key=event_type)


def declare_with_url(settings: Settings) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        declare(connection.channel(), settings)
    finally:
        connection.close()
