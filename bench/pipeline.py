"""(2) The event pipeline: events/s from the outbox, through the relay and the broker, to a
real nameko consumer's store (handle_once), against three baselines on the same broker:
  raw pika            persistent messages published as fast as pika's BlockingChannel goes
                      (no confirm waits: the ceiling, not a fair fight), classic queue,
                      consumed with manual acks, prefetch 100;
  raw pika, confirmed the same with publisher confirms into a quorum queue: the guarantees
                      the platform gives every event, without its code;
  raw pika, stored    confirmed, and the consumer inserts each message into the same
                      embedded database before acking: the least an event must do to reach
                      a consumer's store there."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
import uuid

import pika
from pymongo import MongoClient

from motcua_common import topology
from motcua_common.events import new_event
from motcua_common.outbox import commit, ensure_outbox_indexes
from motcua_common.relay import Relay
from motcua_testing.fixtures import settings_env

from .harness import ROOT, bench_settings


def _event(i: int) -> dict:
    return new_event("DossierSubmitted", "dn-hai-chau", {
        "dossier_id": str(uuid.uuid4()), "receipt_code": f"BENCH-{i:06d}", "procedure_code": "KS01",
        "ward_id": "dn-hai-chau", "channel": "online", "due_date": "2026-12-01"})


def _consume(params, queue: str, count: int, done: threading.Event, store=None) -> None:
    """Consume `count` messages with manual acks (prefetch 100), storing each first if
    `store` (a collection) is given; set `done` after the last ack."""
    conn = pika.BlockingConnection(params)
    channel = conn.channel()
    channel.basic_qos(prefetch_count=100)
    for seen, (method, _props, message) in enumerate(channel.consume(queue), start=1):
        if store is not None:
            store.insert_one({"body": message})
        channel.basic_ack(method.delivery_tag)
        if seen == count:
            break
    channel.cancel()
    conn.close()
    done.set()


def raw_pika(amqp_url: str, count: int, body: bytes) -> float:
    """Publish `count` persistent messages and consume them with manual acks; events/s until
    the consumer has acked the last one."""
    params = pika.URLParameters(amqp_url)
    setup = pika.BlockingConnection(params)
    ch = setup.channel()
    ch.exchange_declare("bench.raw", "topic", durable=True)
    ch.queue_declare("bench.raw.q", durable=True)
    ch.queue_bind("bench.raw.q", "bench.raw", "Raw")
    setup.close()
    done = threading.Event()
    consumer = threading.Thread(target=_consume, args=(params, "bench.raw.q", count, done))
    start = time.perf_counter()
    consumer.start()
    conn = pika.BlockingConnection(params)
    c = conn.channel()
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    for _ in range(count):
        c.basic_publish("bench.raw", "Raw", body, props)
    conn.close()
    done.wait(300)
    return count / (time.perf_counter() - start)


def outbox_to_consumer(mongo_url: str, amqp_url: str, count: int, relay_class=Relay,
                       worker_env: dict | None = None) -> float:
    """Events already committed to the dossier outbox, relayed by the real Relay and consumed by
    a real nameko worker (handle_once into its store); events/s until the last is stored.
    `relay_class` and `worker_env` (added to the worker's environment) let a comparison run
    a variant side by side with the real path."""
    settings = bench_settings(mongo_url, amqp_url)
    client = MongoClient(mongo_url)
    dossier = client[settings.database_name("dossier")]
    notify = client[settings.database_name("notify")]
    ensure_outbox_indexes(dossier)
    events = [_event(i) for i in range(count)]
    for start in range(0, count, 100):
        commit(dossier, lambda s: None, events[start:start + 100])
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    topology.declare(channel, settings)
    channel.queue_purge(topology.subscription("notify", "DossierSubmitted").queue)  # earlier runs' messages
    conn.close()
    env = settings_env(settings)
    env.update(MOTCUA_WORKER_MODULE="probe_worker", PYTHONPATH=str(ROOT / "tests" / "support"), MOTCUA_LOG_LEVEL="WARNING")
    env.update(worker_env or {})
    worker = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "notify"], env=env)
    try:
        time.sleep(6)  # the worker's consumers are up (nameko start), before the clock starts
        relay = relay_class(dossier, settings, "dossier")
        thread = threading.Thread(target=relay.run_forever, daemon=True)
        start = time.perf_counter()
        thread.start()
        deadline = time.monotonic() + 600
        while notify.seen.estimated_document_count() < count and time.monotonic() < deadline:
            time.sleep(0.1)  # counting is not free on the embedded database: 50 counts a second took a quarter of it
        elapsed = time.perf_counter() - start
        relay.stop()
        thread.join(10)
        stored = notify.seen.count_documents({})
        if stored != count:
            raise RuntimeError(f"pipeline lost events: {stored} of {count} stored")
        return count / elapsed
    finally:
        worker.terminate()
        worker.wait(30)
        client.close()


def run(mongo_url: str, amqp_url: str, count: int = 2000, rounds: int = 3) -> dict:
    """Every side once, then the pipeline and its fair baseline (raw pika storing each event
    in the same database) `rounds` times more, alternating, so that both see the same
    machine; their figures are the medians of all their runs (on two shared cores one run
    of either moves by half from the next)."""
    body = json.dumps(_event(0), ensure_ascii=False).encode()
    raw = raw_pika(amqp_url, count, body)
    raw_confirmed = raw_pika_confirmed(amqp_url, count, body)
    stored_runs = [raw_pika_confirmed(amqp_url, count, body, mongo_url=mongo_url)]
    relayed = relay_only(mongo_url, amqp_url, count)
    pipeline_runs = [outbox_to_consumer(mongo_url, amqp_url, count)]
    for _ in range(rounds - 1):
        stored_runs.append(raw_pika_confirmed(amqp_url, count, body, mongo_url=mongo_url))
        pipeline_runs.append(outbox_to_consumer(mongo_url, amqp_url, count))
    raw_stored, platform = statistics.median(stored_runs), statistics.median(pipeline_runs)
    return {"events": count, "raw_pika_per_s": round(raw, 1), "raw_pika_confirmed_per_s": round(raw_confirmed, 1),
            "relay_only_per_s": round(relayed, 1), "pipeline_per_s": round(platform, 1),
            "raw_pika_stored_per_s": round(raw_stored, 1),
            "pipeline_runs_per_s": [round(x, 1) for x in pipeline_runs],
            "raw_pika_stored_runs_per_s": [round(x, 1) for x in stored_runs],
            "ratio_stored_runs": [round(p / r, 3) for p, r in zip(pipeline_runs, stored_runs)],
            "ratio": round(platform / raw, 3), "ratio_confirmed": round(platform / raw_confirmed, 3),
            "ratio_stored": round(platform / raw_stored, 3),
            "relay_ratio": round(relayed / raw, 3)}


def relay_only(mongo_url: str, amqp_url: str, count: int, relay_class=Relay) -> float:
    """Outbox -> broker with confirms, nobody consuming (queues bound): the relay's own rate."""
    settings = bench_settings(mongo_url, amqp_url)
    client = MongoClient(mongo_url)
    dossier = client[settings.database_name("dossier")]
    ensure_outbox_indexes(dossier)
    events = [_event(i) for i in range(count)]
    for start in range(0, count, 100):
        commit(dossier, lambda s: None, events[start:start + 100])
    relay = relay_class(dossier, settings, "dossier")
    relay.publish_pending()  # connect and declare before the clock starts
    remaining = count - dossier.outbox.count_documents({"status": "sent"})
    start = time.perf_counter()
    while relay.publish_pending():
        pass
    elapsed = time.perf_counter() - start
    relay.close()
    client.close()
    return remaining / elapsed


def raw_pika_confirmed(amqp_url: str, count: int, body: bytes, batch: int = 500, mongo_url: str | None = None) -> float:
    """The least an event must do to cross the broker safely, without our code: persistent
    messages published with publisher confirms (in batches, confirms awaited together, as
    the relay does) into a quorum queue (what topology declares), consumed with manual
    acks, prefetch 100. Events/s until the consumer has acked the last one.

    With `mongo_url`, the consumer also stores each message (one insert, no transaction)
    before acking it: the least an event must do to reach a consumer's store on that
    database, which bounds the pipeline when the database is the slowest part."""
    import asyncio

    import aiormq

    params = pika.URLParameters(amqp_url)
    setup = pika.BlockingConnection(params)
    ch = setup.channel()
    ch.exchange_declare("bench.rawq", "topic", durable=True)
    ch.queue_declare("bench.rawq.q", durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_bind("bench.rawq.q", "bench.rawq", "Raw")
    setup.close()
    done = threading.Event()
    store_client = MongoClient(mongo_url) if mongo_url else None
    store = store_client[f"b{uuid.uuid4().hex[:6]}_raw"].seen if store_client is not None else None

    async def publish():
        connection = await aiormq.connect(amqp_url)
        channel = await connection.channel(publisher_confirms=True)
        props = aiormq.spec.Basic.Properties(content_type="application/json", delivery_mode=2)
        for start in range(0, count, batch):
            await asyncio.gather(*(channel.basic_publish(body, exchange="bench.rawq", routing_key="Raw", properties=props)
                                   for _ in range(min(batch, count - start))))
        await connection.close()

    consumer = threading.Thread(target=_consume, args=(params, "bench.rawq.q", count, done, store))
    start = time.perf_counter()
    consumer.start()
    asyncio.run(publish())
    done.wait(300)
    elapsed = time.perf_counter() - start
    if store_client is not None:
        store_client.close()
    return count / elapsed
