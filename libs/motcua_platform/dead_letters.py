"""`motcua dead-letters list` and `motcua dead-letters replay`: what the consumers set aside,
and putting it back once the cause is fixed.

An event lands in its subscription's dead-letter queue (`<consumer>.<source>.<Type>.dead`)
when its handler failed every bounded retry (the reason in `x-motcua-error`), when it was
not a valid event at all, or when it was delivered more than the delivery limit without
being acknowledged — a handler that kills its worker (`x-death` reason `delivery_limit`).
Replaying sends it to its consumer queue again; consumers are idempotent, so an event that
was in fact handled changes nothing the second time."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pika

from motcua_common.config import Settings
from motcua_common.topology import SUBSCRIPTIONS, Subscription, declare

ATTEMPTS_HEADER, ERROR_HEADER = "x-motcua-attempts", "x-motcua-error"


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    event_type: str
    event_id: str
    reason: str
    dead_at: str


def _reason(headers: dict) -> str:
    if headers.get(ERROR_HEADER):
        return str(headers[ERROR_HEADER])
    deaths = headers.get("x-death") or []
    if deaths:
        death = deaths[0]
        return f"{death.get('reason')} (delivered {death.get('count', '?')} time(s) from {death.get('queue')})"
    return "unknown"


def _describe(sub: Subscription, properties, body: bytes) -> DeadLetter:
    headers = properties.headers or {}
    try:
        event_id = str(json.loads(body).get("event_id") or "?")
    except (ValueError, AttributeError):
        event_id = "(not JSON)"
    dead_at = str(headers.get("x-motcua-dead-at") or (headers.get("x-death") or [{}])[0].get("time", ""))
    return DeadLetter(sub.dead_queue, sub.event_type, event_id, _reason(headers)[:300], dead_at)


def _subscriptions(queue: str | None) -> list[Subscription]:
    chosen = [s for s in SUBSCRIPTIONS if queue in (None, s.queue, s.dead_queue)]
    if queue and not chosen:
        raise ValueError(f"{queue} is not a consumer queue or its dead-letter queue (motcua dead-letters list)")
    return chosen


def list_dead(settings: Settings, queue: str | None = None, limit: int = 50) -> dict[str, list[DeadLetter]]:
    """Each dead-letter queue's messages, looked at and left where they are."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        declare(connection.channel(), settings)
        found = {}
        for sub in _subscriptions(queue):
            channel = connection.channel()
            letters = []
            while len(letters) < limit:
                method, properties, body = channel.basic_get(sub.dead_queue, auto_ack=False)
                if method is None:
                    break
                letters.append(_describe(sub, properties, body))
            channel.close()  # unacknowledged: all go back to the dead-letter queue
            if letters:
                found[sub.dead_queue] = letters
        return found
    finally:
        connection.close()


def replay(settings: Settings, queue: str, event_id: str | None = None) -> int:
    """Send the dead letters of one subscription (all, or one event) back to its consumer
    queue; how many. Each is removed from the dead-letter queue only after the broker
    confirmed it back in the consumer queue."""
    (sub,) = _subscriptions(queue)
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    moved = 0
    try:
        declare(connection.channel(), settings)
        channel = connection.channel()
        channel.confirm_delivery()
        kept = []
        while True:
            method, properties, body = channel.basic_get(sub.dead_queue, auto_ack=False)
            if method is None:
                break
            if event_id is not None and _describe(sub, properties, body).event_id != event_id:
                kept.append(method.delivery_tag)
                continue
            headers = {k: v for k, v in (properties.headers or {}).items()
                       if k not in (ATTEMPTS_HEADER, ERROR_HEADER, "x-death", "x-first-death-exchange",
                                    "x-first-death-queue", "x-first-death-reason", "x-motcua-dead-at", "x-motcua-queue")}
            properties.headers = {**headers, "x-motcua-replayed": True}
            channel.basic_publish("", sub.queue, body, properties, mandatory=True)
            channel.basic_ack(method.delivery_tag)
            moved += 1
        for tag in kept:
            channel.basic_nack(tag, requeue=True)
        return moved
    finally:
        connection.close()
