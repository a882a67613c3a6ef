"""Use cases of what the hall sees: the board (who is called where, how many wait per
service) and the waiting counts Prometheus scrapes (WaitingTicketsCollector). The board's
live stream (Server-Sent Events) is HTTP and stays in api.py; its bounds are here, with
the board they carry."""
from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily

from motcua_common.auth import Principal

from . import counters, domain
from .tickets import day_of

if TYPE_CHECKING:
    from .deps import Deps

# The board's live stream holds one server thread per open board for its lifetime. Bounded
# both ways so that boards never starve the API of threads (16 per process in `motcua up`):
# a stream ends after a while (the browser reconnects by itself), and past MAX_BOARD_STREAMS
# per process a new one is refused with Retry-After (the page then polls the board).
BOARD_STREAM_LIFETIME_SECONDS = 90
BOARD_STREAM_POLL_SECONDS = 0.5
BOARD_STREAM_HEARTBEAT_SECONDS = 15
MAX_BOARD_STREAMS = 6


def show(deps: "Deps", principal: Principal | None, ward_id: str) -> dict:
    """The board of a ward that uses the queue (404 ward_not_found otherwise)."""
    counters.require_ward(deps, principal, ward_id)
    return snapshot(deps, principal, ward_id)


def snapshot(deps: "Deps", principal: Principal | None, ward_id: str) -> dict:
    """Who is called where (the latest call of each counter) and how many wait per
    service, for the ward's current local day."""
    day = day_of(deps, deps.clock.now())
    serving, seen = [], set()
    for doc in deps.store.called_on(ward_id, day):
        if doc["counter_id"] in seen:
            continue  # an earlier call the officer never closed; the newest one counts
        seen.add(doc["counter_id"])
        serving.append({"number": doc["number"], "counter_id": doc["counter_id"],
                        "called_at": domain.iso_utc(doc["called_at"]), "service_code": doc["service_code"]})
    waiting = {s["code"]: 0 for s in deps.store.services(ward_id)}
    waiting.update(deps.store.waiting_per_service(ward_id, day))
    return {"ward_id": ward_id, "day": day, "serving": serving, "waiting": waiting}


def waiting_counts(deps: "Deps", principal: Principal | None = None) -> dict[tuple[str, str], int]:
    """(ward_id, service_code) -> tickets waiting today; every configured service is
    present, so a queue that empties reads 0 rather than vanishing from the graphs."""
    counts = {key: 0 for key in deps.store.all_services()}
    counts.update(deps.store.waiting_per_ward_and_service(day_of(deps, deps.clock.now())))
    return counts


class WaitingTicketsCollector:
    """motcua_queue_waiting_tickets{ward_id, service_code} (metrics.QUEUE_WAITING), counted
    from the database when Prometheus scrapes, so every API process reports the truth."""

    def __init__(self, deps: "Deps"):
        self.deps = deps

    def collect(self):
        family = GaugeMetricFamily("motcua_queue_waiting_tickets", "Tickets waiting",
                                   labels=["ward_id", "service_code"])
        try:
            counts = waiting_counts(self.deps)
        except Exception:  # the database is down: /readyz says so; the scrape still answers
            counts = {}
        for (ward_id, service_code), count in sorted(counts.items()):
            family.add_metric([ward_id, service_code], float(count))
        yield family
