"""Dossiers taken at a ward office while its link to the centre was down (tiếp nhận khi mất
kết nối), accepted here as counter filings once the link returns.

The office (motcua_platform.office_intake) keeps an intake journal: each dossier gets an id
and a receipt code there and then — the office's codes carry domain.OFFICE_RECEIPT_MARK, so
they never collide with the centre's — and the citizen leaves with a printed receipt whose
appointment date is provisional. Each journal entry travels to the centre as one message
on the office's own uplink (a quorum queue at the office, a shovel that acknowledges only
what the centre's broker confirmed, the same machinery as the office's events), into the
queue FILINGS_QUEUE, consumed by the dossier worker.

Why a message on the uplink and not an event, nor an HTTP call: the filing carries the
citizen's national id, name and form — personal data, which never goes into an event on
the public exchanges (DESIGN.md §3) — so it goes point to point, to the dossier service
alone, like an RPC over the broker; and the office holds no credential the centre's API
would take once the officers' tokens are the office's own, while its broker link is already
authenticated, survives the link dropping and catches up in order when it returns.

Exactly once: the dossier's id is the office's filing id, so a message delivered again
(an ack lost with the link) finds the dossier and changes nothing. The centre counts the due
date from the day the office received the dossier with its own calendar (its holidays and
exceptions), which may move the office's provisional date; the receipt said so."""
from __future__ import annotations

import logging
from datetime import date, datetime

from pymongo.errors import DuplicateKeyError

from motcua_common import metrics
from motcua_common.auth import Principal
from motcua_common.outbox import commit

from . import counter_records, domain, events, store
from .catalog import clean_form
from .deps import Deps

log = logging.getLogger(__name__)

FILINGS_EXCHANGE = "motcua.office-filings"
FILINGS_QUEUE = "dossier.office-filings"
MESSAGE_TYPE = "OfficeCounterFiling"
REFUSED = "office_filings_refused"
FILING_VERSION = 1


class FilingRefused(ValueError):
    """A filing the centre cannot turn into a dossier (kept with the reason, never retried)."""


def declare(channel) -> None:
    """The exchange the office's shovel delivers to and the dossier worker's queue: declared
    at the centre by the office when it starts (edge.py) and by the worker (the same
    arguments, so whichever comes first)."""
    channel.exchange_declare(FILINGS_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(FILINGS_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(FILINGS_QUEUE, FILINGS_EXCHANGE, routing_key="#")


def _day(value) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise FilingRefused("received_on is not a date") from None


def _moment(value) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise FilingRefused("filed_at is not a moment") from None
    if moment.tzinfo is None:
        raise FilingRefused("filed_at has no time zone")
    return moment


def _check(filing: dict) -> None:
    for name in ("filing_id", "ward_id", "receipt_code", "procedure_code", "officer_id"):
        if not isinstance(filing.get(name), str) or not filing[name]:
            raise FilingRefused(f"{name} missing")
    ward_id, code = filing["ward_id"], filing["receipt_code"]
    if not domain.is_ward_id(ward_id):
        raise FilingRefused("ward_id malformed")
    # Only the office's own kind of code, for its own ward: an office never takes a code the
    # centre could give.
    if not (domain.is_office_receipt_code(code) and code.startswith(domain.ward_abbreviation(ward_id) + "-")):
        raise FilingRefused("not an office receipt code of this ward")
    citizen = filing.get("citizen")
    if not isinstance(citizen, dict) or not domain.is_national_id(citizen.get("national_id")):
        raise FilingRefused("citizen's national id missing")
    if not isinstance(filing.get("form", {}), dict):
        raise FilingRefused("form is not an object")


def accept(deps: Deps, filing: dict) -> str:
    """Turn one office filing into a counter dossier: "accepted", or "already" when it was
    accepted before. FilingRefused for a filing that can never be accepted (kept in REFUSED
    by `accept_or_keep`); rpc.RpcUnavailable when identity cannot say whose dossier it is
    (the message is delivered again later)."""
    # Here, not at the top: these bring in result signing (pyHanko), which the ward
    # office's API and courier import this module for the constants above and never use.
    from . import submission
    from .dossiers import working_calendar

    _check(filing)
    if store.get_dossier(deps.db, filing["filing_id"]) is not None:
        return "already"
    procedure = store.get_procedure(deps.db, filing["procedure_code"], active_only=False)
    if procedure is None:
        raise FilingRefused("unknown procedure")
    ward_id, typed = filing["ward_id"], filing["citizen"]
    received_on, filed_at = _day(filing.get("received_on")), _moment(filing.get("filed_at"))
    officer = Principal(subject=filing["officer_id"], role="officer", ward_id=ward_id,
                        username=filing.get("officer_username"))
    papers = tuple(p for p in filing.get("papers_received") or () if isinstance(p, str))
    found = deps.citizens.find_by_national_id(typed["national_id"])  # RpcUnavailable: later
    if found:
        citizen = {"citizen_id": found["citizen_id"], "phone_last4": domain.phone_last4(found)}
        filing_fields = submission.CounterFiling(citizen_name=found.get("full_name") or typed.get("full_name"),
                                                 papers_received=papers)
    else:
        cleaned, problems = counter_records.record_errors(typed, received_on)
        if problems:
            raise FilingRefused("counter record: " + ", ".join(sorted(problems)))
        record = counter_records.keep(deps, officer, ward_id, cleaned)
        citizen = {"citizen_id": "", "phone_last4": counter_records.phone_last4(record)}
        filing_fields = submission.CounterFiling(citizen_name=record["full_name"], record=record,
                                                 papers_received=papers)
    due = working_calendar(deps).add_working_days(received_on, procedure.ward_days)
    # The form as the office's copy of the catalog asked for it; fields the catalog has since
    # dropped are left out, a field it has since added stays empty for the officer to fill.
    form = clean_form(list(procedure.form), filing.get("form") or {})
    dossier = {**submission._new_dossier(procedure, ward_id, "counter", citizen, form, officer, filed_at,
                                         received_on, due, None),
               **submission._desk_fields(filing_fields)}
    dossier.update({
        "_id": filing["filing_id"], "receipt_code": filing["receipt_code"],
        "receipt_key": domain.receipt_key(filing["receipt_code"]),
        "office_filing": {"filed_at": filed_at, "accepted_at": deps.clock.now(),
                          "provisional_due_date": filing.get("provisional_due_date"),
                          "due_date_moved": filing.get("provisional_due_date") != due.isoformat()},
    })

    def change(session) -> None:
        deps.db[store.DOSSIERS].insert_one(dossier, session=session)

    try:
        commit(deps.db, change, [events.submitted(dossier)])
    except DuplicateKeyError as exc:
        if store.get_dossier(deps.db, filing["filing_id"]) is not None:
            return "already"  # delivered twice at once: the other delivery stored it
        raise FilingRefused("receipt code already taken") from exc
    metrics.DOSSIERS_SUBMITTED.labels(ward_id, "counter").inc()
    log.info("office filing accepted", extra={"dossier_id": dossier["_id"], "ward_id": ward_id,
                                              "procedure_code": procedure.code,
                                              "due_date_moved": dossier["office_filing"]["due_date_moved"]})
    return "accepted"


def accept_or_keep(deps: Deps, filing: dict) -> str:
    """accept(), with a refused filing kept (with its reason, for the ward's staff and the
    ops team) instead of being lost or retried for ever: "accepted", "already" or "refused".
    rpc.RpcUnavailable propagates: the message is delivered again."""
    if not isinstance(filing, dict):
        filing = {"unreadable": repr(filing)[:500]}
    try:
        return accept(deps, filing)
    except FilingRefused as refused:
        filing_id = filing.get("filing_id") if isinstance(filing.get("filing_id"), str) else None
        log.error("office filing refused: %s", refused, extra={"dossier_id": filing_id,
                                                               "ward_id": filing.get("ward_id")})
        deps.db[REFUSED].update_one({"_id": filing_id or str(deps.clock.now().timestamp())},
                                    {"$setOnInsert": {"filing": filing, "reason": str(refused),
                                                      "refused_at": deps.clock.now()}}, upsert=True)
        return "refused"

