"""The ratings given at the wards' offices, counted at the centre.

An office (`motcua up --profile edge`) runs its own rating service: a citizen rates at the
screen beside the counter in the office, the office stores the rating and emits RatingGiven,
and the office's uplink shovel carries it to the centre's rating.events. The centre's
statistics and rankings count the centre's `ratings` collection, so they would leave every
edge ward out; this read model copies each RatingGiven into it.

The centre's own ratings come back the same way (rating consumes every RatingGiven on
rating.events, whoever gave it): their record is there already (same rating id), so they
change nothing. One rating per subject still holds at the centre: a ticket or dossier rated
both at an office and at the centre (a citizen who rated at the screen and then on the web
while the link was down) keeps the rating the centre recorded first, and the other is said
in the log and left out of the counts, as the centre would have refused it.

A rating copied from an office is counted in statistics and rankings only; it is not added
to motcua_ratings_total here, which the office's own rating service already exports
(through its Prometheus agent) — counting it twice would double the office's numbers."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from motcua_common.auth import Principal
from motcua_common.consumer import handle_once
from motcua_common.events import Event

from . import domain, store

if TYPE_CHECKING:
    from .deps import Deps

log = logging.getLogger("motcua_rating.worker")

SERVICE = "rating"


def rating_from_event(payload: dict, rated_at, receipt_code: str | None) -> dict:
    """The centre's rating record of a RatingGiven (domain.new_rating's fields). A dossier
    travels by its opaque dossier_id; the centre keys dossier ratings by receipt code, which
    it knows from the dossier's own events (None when it has not heard of the dossier yet:
    then the dossier id stands in, so the rating still counts)."""
    subject_type = payload.get("subject_type") or ""
    if subject_type not in (domain.TICKET, domain.DOSSIER):
        raise ValueError(f"RatingGiven of an unknown subject type {subject_type!r}")
    if payload.get("score") not in domain.SCORES:
        raise ValueError(f"RatingGiven with an unknown score {payload.get('score')!r}")
    for name in ("rating_id", "ward_id", "subject_id"):
        if not payload.get(name):
            raise ValueError(f"RatingGiven without {name}")
    dossier = subject_type == domain.DOSSIER
    return {
        "_id": payload["rating_id"],
        "subject_type": subject_type,
        "subject_id": (receipt_code or payload["subject_id"]) if dossier else payload["subject_id"],
        "ward_id": payload["ward_id"],
        "officer_id": payload.get("officer_id") or "",
        "counter_id": payload.get("counter_id") or "",
        "service_code": "",
        "dossier_id": payload["subject_id"] if dossier else "",
        "score": payload["score"],
        "comment": "",
        "reasons": [],
        "rated_at": rated_at,
        "channel": "office",
    }


def on_rating_given(deps: "Deps", principal: Principal | None, event: Event) -> str:
    """The worker's RatingGiven, once per event: "processed" (recorded, or already known
    under its id) or "duplicate" (this event was handled before)."""
    payload = event.payload
    receipt_code = None
    if payload.get("subject_type") == domain.DOSSIER and payload.get("subject_id"):
        receipt_code = store.receipt_code_of(deps.db, payload["subject_id"])
    rating = rating_from_event(payload, domain.parse_instant(event.occurred_at), receipt_code)
    outcome: dict = {}

    def work(session):
        outcome["recorded"] = store.record_rating_from_elsewhere(deps.db, rating, session)

    result = handle_once(deps.db, SERVICE, event, work)
    if outcome.get("recorded") == "other_rating":
        log.warning("a subject rated twice (at an office and at the centre): the first rating counts",
                    extra={"rating_id": rating["_id"], "ward_id": rating["ward_id"], "subject_type": rating["subject_type"]})
    return result
