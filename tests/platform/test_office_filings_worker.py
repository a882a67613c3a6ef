"""The centre's dossier worker takes the dossiers a ward office filed while cut off from
its queue (office_filings.py), on the real broker: the queue declared first by the office
(as edge.py does) is the one the worker consumes — same arguments — and what it can never
accept is kept with the reason instead of being retried for ever or dropped. (Accepting a
filing is dossier's test_dossier_office_filings.py; the whole journey is the fault test
tests/chaos/test_chaos_office_day.py.)"""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import date

import pika

from motcua_dossier import bootstrap, domain, office_filings
from motcua_testing.fixtures import settings_env, wait_for

WARD = "dn-hai-chau"


def publish(channel, body) -> None:
    channel.basic_publish(office_filings.FILINGS_EXCHANGE, WARD,
                          body if isinstance(body, bytes) else json.dumps(body).encode(),
                          pika.BasicProperties(content_type="application/json", delivery_mode=2))


def test_the_worker_consumes_the_offices_filings_and_keeps_what_it_refuses(broker_settings, service_db):
    connection = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    channel = connection.channel()
    office_filings.declare(channel)  # the office got there first
    channel.confirm_delivery()
    dossiers = service_db("dossier")
    already = str(uuid.uuid4())
    dossiers.dossiers.insert_one({"_id": already, "receipt_code": "DNHC-260306-XAAAA", "ward_id": WARD})
    day = date(2026, 3, 6)
    base = {"ward_id": WARD, "procedure_code": "HT-XNHN", "officer_id": "o-hc-1", "form": {},
            "citizen": {"national_id": "048190000123"}, "received_on": day.isoformat(),
            "filed_at": "2026-03-06T03:00:00+00:00"}
    publish(channel, {**base, "filing_id": already, "receipt_code": "DNHC-260306-XAAAA"})  # delivered again
    refused = str(uuid.uuid4())
    publish(channel, {**base, "filing_id": refused, "receipt_code": domain.new_receipt_code(WARD, day)})
    publish(channel, b"[1, 2, 3]")
    bootstrap.prepare(broker_settings, demo=False)
    worker = None
    try:
        worker = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "dossier"],
                                  env=settings_env(broker_settings))
        wait_for(lambda: dossiers[office_filings.REFUSED].count_documents({}) == 2, timeout=30,
                 message="the worker to keep the two filings it cannot accept")
        wait_for(lambda: channel.queue_declare(office_filings.FILINGS_QUEUE, passive=True).method.message_count == 0,
                 timeout=10, message="the queue to be drained")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        connection.close()
    assert dossiers[office_filings.REFUSED].find_one({"_id": refused})["reason"] == \
        "not an office receipt code of this ward"
    assert dossiers.dossiers.count_documents({}) == 1, "the dossier delivered again is not filed twice"
