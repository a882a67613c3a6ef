"""Fault 4: the ward's WAN link is cut while the office serves, then flaps.

The office is the real `motcua up --profile edge` on a broker of its own (a second
RabbitMQ node); the centre is the main broker. The link between them is a TCP relay the
test cuts: the shovel's connection is reset and reconnecting is refused, exactly what a
dropped line does. The centre's identity (its JWKS) goes down with the link, so officers
at the counters are verified with the keys the office keeps on disk.

Checked: every ticket the kiosk issued (HTTP 201) and every ticket an officer served
reaches the centre, each taking effect once through an idempotent consumer, and the
events of the office arrive in the order they happened."""
from __future__ import annotations

import time

import pika

from motcua_testing.chaos import wait_until


def test_office_serves_with_its_link_cut_and_the_centre_gets_everything_once(
        edge_office, wan, jwks_server, office_work, centre_arrivals, checker):
    issued = checker("4. WAN link cut, then flapping",
                     "kiosk tickets and counter service at one office: 8 s cut, 3 flaps")
    served = checker("4. WAN link cut (served tickets)", "officers serving at 2 counters during the cut")
    work = office_work(issued, served)

    work.take_tickets(10)
    # The link drops, and the centre's identity with it.
    wan.cut()
    jwks_server.stop()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        work.take_tickets(3)
        work.serve_at_counters()
        time.sleep(0.3)
    backlog = sum(rabbit_node_backlog(edge_office).values())
    assert backlog > 0, "with the link down the office's events wait in its uplink queues"
    # Then it flaps: up for a moment, down again, while the office keeps working.
    for _ in range(3):
        wan.restore()
        work.take_tickets(4)
        time.sleep(1.5)
        wan.cut()
        work.take_tickets(4)
        time.sleep(1.0)
    wan.restore()
    work.take_tickets(5)

    arrivals = centre_arrivals(issued, served)
    wait_until(arrivals.collect, timeout=45, interval=1.0)
    arrivals.observe()

    for c in (issued, served):
        assert not c.lost, f"{c.fault}: lost {sorted(c.lost)[:5]}"
        assert not c.duplicated, f"{c.fault}: duplicated {sorted(c.duplicated)[:5]}"
        assert not c.unexpected, f"{c.fault}: unexpected {sorted(c.unexpected)[:5]}"
    assert wan.cuts == 4
    # In order: the first arrival of each ticket number comes after the one before it.
    numbers = arrivals.first_arrivals("A")
    assert numbers == sorted(numbers), f"tickets reached the centre out of order: {numbers}"


def rabbit_node_backlog(office) -> dict:
    from motcua_platform.edge import uplink_backlog

    connection = pika.BlockingConnection(pika.URLParameters(office.env["AMQP_URL"]))
    try:
        return uplink_backlog(connection.channel())
    finally:
        connection.close()
