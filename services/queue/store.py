"""The queue's own database, and nothing but pymongo access to it: wards, services,
counters, tickets, day sequences, kiosk devices and the appointments projection. Every
write that others must hear about goes through the outbox (motcua_common.outbox.commit),
in one transaction with the events the use cases built (events.py). Rules (numbering,
estimates, who may do what) live in domain.py and the use-case modules; the cache of
reference data in cache.py.

Ticket issue, call-next and serve are hot paths on the embedded database: their queries
use index prefixes, update_and_read instead of findAndModify on tickets (which grows all
day), and keep the day counts outside the ticket's transaction (see the comments)."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Callable, Mapping

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from motcua_common.indexes import ensure_plumbing_indexes
from motcua_common.mongo import in_transaction, update_and_read
from motcua_common.outbox import OUTBOX_CLOCK, commit, step_clock

from .domain import CALLED, SERVED, WAITING

WARDS = "wards"
SERVICES = "services"
COUNTERS = "counters"
TICKETS = "tickets"
SEQUENCES = "ticket_sequences"
APPOINTMENTS = "appointments"
KIOSK_DEVICES = "kiosk_devices"
KIOSK_PAIRINGS = "kiosk_pairings"
KIOSK_REQUESTS = "kiosk_requests"
DEVICE_HEARTBEATS = "device_heartbeats"

# domain.call_order as index keys: the queue_of_the_day index keeps a ward's line in calling order.
CALL_ORDER_SORT = [("priority_rank", ASCENDING), ("queued_at", ASCENDING), ("sequence", ASCENDING), ("_id", ASCENDING)]


class TicketChanged(Exception):
    """The ticket moved on between reading it and writing it (another officer acted)."""


class PrefixTaken(Exception):
    """Another service of the ward prints this prefix (the prefix_per_ward index decides)."""


class CallContention(Exception):
    """Other counters kept taking the chosen tickets; the caller may simply retry."""


def ensure_indexes(db: Database) -> None:
    ensure_plumbing_indexes(db)
    db[SERVICES].create_index([("ward_id", ASCENDING), ("code", ASCENDING)], unique=True, name="service_per_ward")
    db[COUNTERS].create_index([("ward_id", ASCENDING), ("counter_id", ASCENDING)], unique=True, name="counter_per_ward")
    try:
        # Two services of a ward never print one prefix. A database written before this rule
        # may hold such a pair: it keeps working (the number index still guards), and the
        # use case checks the rule on every save until an admin fixes the pair.
        db[SERVICES].create_index([("ward_id", ASCENDING), ("prefix", ASCENDING)], unique=True,
                                  name="prefix_per_ward")
    except (DuplicateKeyError, OperationFailure):
        pass
    # The last guard of "never two tickets with one number" (two services sharing a prefix).
    db[TICKETS].create_index([("ward_id", ASCENDING), ("day", ASCENDING), ("number", ASCENDING)],
                             unique=True, name="number_per_ward_day")
    db[TICKETS].create_index([("ward_id", ASCENDING), ("day", ASCENDING), ("status", ASCENDING)]
                             + CALL_ORDER_SORT[:3], name="queue_of_the_day")
    db[TICKETS].create_index([("ward_id", ASCENDING), ("service_code", ASCENDING), ("status", ASCENDING),
                              ("served_at", DESCENDING)], name="recent_service")
    db[TICKETS].create_index([("day", ASCENDING), ("status", ASCENDING)], name="waiting_today")
    # A day's sequence is needed for that day only.
    db[SEQUENCES].create_index("created_at", expireAfterSeconds=3 * 24 * 3600, name="sequence_expiry")
    db[TICKETS].create_index([("ward_id", ASCENDING), ("counter_id", ASCENDING), ("status", ASCENDING)],
                             name="at_counter")
    # A pairing link lives minutes; a kiosk's form token (double-tap guard) a day.
    db[KIOSK_PAIRINGS].create_index("expires_at", expireAfterSeconds=0, name="pairing_expiry")
    db[KIOSK_REQUESTS].create_index("created_at", expireAfterSeconds=24 * 3600, name="kiosk_request_expiry")
    # Device health (heartbeats.py): a ward's devices, and anonymous ones forgotten in time
    # (only they carry forget_at).
    db[DEVICE_HEARTBEATS].create_index([("ward_id", ASCENDING), ("anonymous", ASCENDING)], name="devices_of_ward")
    db[DEVICE_HEARTBEATS].create_index("forget_at", expireAfterSeconds=0, name="device_forget")
    db[APPOINTMENTS].create_index("receipt_code", name="by_receipt_code")
    db[APPOINTMENTS].create_index([("ward_id", ASCENDING), ("due_date", ASCENDING)], name="due_per_ward")
    ensure_activity_indexes(db)


# The day counts in the ward's outbox clock document (take_number): numbers.d<day>.s<code>.
NUMBERS = "numbers"


def _day_field(day: str) -> str:
    return f"d{day}"


def _service_field(service_code: str) -> str:
    return f"s{service_code}"


def _counts_path(day: str, service_code: str) -> str:
    return f"{NUMBERS}.{_day_field(day)}.{_service_field(service_code)}"


def _days_before(day: str, days: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()


def _public(doc: dict | None, *fields: str) -> dict | None:
    return None if doc is None else {f: doc.get(f) for f in fields}


class QueueStore:
    def __init__(self, db: Database):
        self.db = db

    # ------------------------------------------------------------ reference data
    def record_ward(self, ward_id: str, fields: dict, opening_hours: dict, now: datetime,
                    session: ClientSession | None = None) -> None:
        """A ward opened (WardOpened, or the demo): what identity says of it is set; its own
        configuration (opening hours) only when the ward is new, so a ward opened again
        keeps what its admin set."""
        self.db[WARDS].update_one(
            {"_id": ward_id},
            {"$set": fields, "$setOnInsert": {"opening_hours": opening_hours, "opened_at": now}},
            upsert=True, session=session)

    def save_ward(self, ward_id: str, name: str) -> None:
        """A ward by name alone (older tools); no opening-hours setting (hours.effective)."""
        self.db[WARDS].update_one({"_id": ward_id}, {"$set": {"name": name}}, upsert=True)

    def ward(self, ward_id: str) -> dict | None:
        return self.db[WARDS].find_one({"_id": ward_id})

    def set_opening_hours(self, ward_id: str, opening_hours: dict) -> bool:
        return self.db[WARDS].update_one({"_id": ward_id},
                                         {"$set": {"opening_hours": opening_hours}}).matched_count == 1

    def save_service(self, ward_id: str, code: str, name: str, prefix: str) -> None:
        """Create or update; PrefixTaken when another service of the ward has the prefix."""
        try:
            self.db[SERVICES].update_one(
                {"_id": f"{ward_id}:{code}"},
                {"$set": {"ward_id": ward_id, "code": code, "name": name, "prefix": prefix}}, upsert=True)
        except DuplicateKeyError as exc:
            raise PrefixTaken(prefix) from exc

    def service_with_prefix(self, ward_id: str, prefix: str) -> dict | None:
        return _public(self.db[SERVICES].find_one({"ward_id": ward_id, "prefix": prefix}), "code", "name", "prefix")

    def prefix_printed_today(self, ward_id: str, day: str, prefix: str, other_than: str) -> bool:
        """Whether a ticket of `day` numbered with `prefix` belongs to a service other than
        `other_than` (by the number index's prefix: today's tickets of the ward only)."""
        return self.db[TICKETS].count_documents(
            {"ward_id": ward_id, "day": day, "number": {"$regex": f"^{prefix}[0-9]"},
             "service_code": {"$ne": other_than}}, limit=1) == 1

    def waiting_for_service(self, ward_id: str, day: str, service_code: str) -> int:
        return self.db[TICKETS].count_documents(
            {"ward_id": ward_id, "day": day, "status": WAITING, "service_code": service_code})

    def delete_service(self, ward_id: str, code: str) -> bool:
        """The service, and its code from every counter of the ward, in one transaction."""
        def change(session: ClientSession) -> bool:
            deleted = self.db[SERVICES].delete_one({"ward_id": ward_id, "code": code}, session=session)
            self.db[COUNTERS].update_many({"ward_id": ward_id, "service_codes": code},
                                          {"$pull": {"service_codes": code}}, session=session)
            return deleted.deleted_count == 1

        return in_transaction(self.db, change)

    def counter_in_use(self, ward_id: str, day: str, counter_id: str) -> bool:
        """A ticket of `day` called to the counter and not closed, or transferred to it."""
        return self.db[TICKETS].count_documents(
            {"ward_id": ward_id, "day": day, "$or": [{"status": CALLED, "counter_id": counter_id},
                                                       {"status": WAITING, "transferred_to": counter_id}]},
            limit=1) == 1

    def delete_counter(self, ward_id: str, counter_id: str) -> bool:
        return self.db[COUNTERS].delete_one({"ward_id": ward_id, "counter_id": counter_id}).deleted_count == 1

    def save_counter(self, ward_id: str, counter_id: str, name: str, service_codes: list[str]) -> None:
        self.db[COUNTERS].update_one(
            {"_id": f"{ward_id}:{counter_id}"},
            {"$set": {"ward_id": ward_id, "counter_id": counter_id, "name": name,
                      "service_codes": list(service_codes)}}, upsert=True)

    def ward_exists(self, ward_id: str) -> bool:
        return self.db[WARDS].count_documents({"_id": ward_id}, limit=1) == 1

    def ward_name(self, ward_id: str) -> str | None:
        doc = self.db[WARDS].find_one({"_id": ward_id}, {"name": 1})
        return doc.get("name") if doc else None

    def services(self, ward_id: str) -> list[dict]:
        docs = self.db[SERVICES].find({"ward_id": ward_id}).sort("code", ASCENDING)
        return [_public(d, "code", "name", "prefix") for d in docs]

    def service(self, ward_id: str, code: str) -> dict | None:
        return _public(self.db[SERVICES].find_one({"ward_id": ward_id, "code": code}), "code", "name", "prefix")

    def counters(self, ward_id: str) -> list[dict]:
        docs = self.db[COUNTERS].find({"ward_id": ward_id}).sort("counter_id", ASCENDING)
        return [_public(d, "counter_id", "name", "service_codes") for d in docs]

    def counter(self, ward_id: str, counter_id: str) -> dict | None:
        doc = self.db[COUNTERS].find_one({"ward_id": ward_id, "counter_id": counter_id})
        return _public(doc, "counter_id", "name", "service_codes")

    def counters_serving(self, ward_id: str, service_code: str) -> int:
        return self.db[COUNTERS].count_documents({"ward_id": ward_id, "service_codes": service_code})

    # ------------------------------------------------------------ day counts (numbering)
    def take_number(self, ward_id: str, service_code: str, day: str, rank: int, now: datetime,
                    base: Mapping[str, int] | None = None) -> dict:
        """The service's day counts after taking the next number (`value`, distinct under any
        concurrency; each count plus `base`'s, see day_start), counting the ticket among its rank's
        issued (issued_r<rank>); and `seq`, the step of the ward's outbox clock taken for
        the ticket's TicketIssued (insert_ticket).

        One command: the counts live in the ward's outbox clock document (outbox.step_clock,
        under `numbers`, per day and service), so the number and the clock step are one
        atomic update — a ticket used to cost the database the number's findAndModify and,
        in its transaction, the clock's. It runs outside the ticket's transaction, so
        concurrent kiosks never conflict on it; a ticket whose write then fails leaves a gap
        in the numbers (and in the clock), never a duplicate.

        Why the ward's publication order still holds with the step taken here, before the
        ticket's transaction, while other changes of the ward (a call, a serve) step the
        clock after their writes (outbox._next_seq):
        - the ward's TicketIssued leave in number order: number and step come from one
          atomic update of one document, so a later number has a later step (before, two
          concurrent kiosks could take numbers in one order and steps in the other);
        - an event caused by the ticket (its TicketCalled, then TicketServed, a transfer)
          is written by a change that read the ticket, so after the ticket's transaction
          committed, so after this step: its own step, on the same document, is later;
        - what the issue itself reads of other changes is read here in the same atomic
          update (the called counts, which count_first_call writes after the call
          committed, so after the call's step): the ticket's step comes after theirs;
        - a change that stepped the clock after this number and committed before the
          ticket did not read the ticket (it was not committed): the two are unrelated and
          may leave in either order, as before (there too the step came before the commit);
        - a retried transaction keeps the step (outbox.commit `taken`).
        tests/chaos/test_chaos_clocks.py checks this order with two processes 4 s apart.

        It also keeps the latest place in time given in the service (`queued_at`, `$max` of
        the issuing processes' clocks): a ticket's place is never before an earlier number's,
        so two API processes whose clocks are seconds apart cannot call A002 before A001.

        `base`: day_start(); day counts of days before the day before `day` are dropped
        (the first ticket of the ward's day sees them)."""
        path = _counts_path(day, service_code)
        field = lambda name: f"${path}.{name}"  # noqa: E731
        counts = {
            f"{path}.value": {"$add": [{"$ifNull": [field("value"), 0]}, 1]},
            f"{path}.issued_r{rank}": {"$add": [{"$ifNull": [field(f"issued_r{rank}"), 0]}, 1]},
            f"{path}.queued_at": {"$max": [now, field("queued_at")]},
        }
        doc = step_clock(self.db, ward_id, now, counts)
        old = [d for d in doc.get(NUMBERS, {}) if d < _day_field(_days_before(day, 2))]
        if old:
            self.db[OUTBOX_CLOCK].update_one({"_id": ward_id}, {"$unset": {f"{NUMBERS}.{d}": "" for d in old}})
        taken = dict(doc[NUMBERS][_day_field(day)][_service_field(service_code)])
        for name, count in (base or {}).items():
            taken[name] = taken.get(name, 0) + count
        taken["seq"] = doc["last"]
        return taken

    def day_start(self, key: str) -> dict[str, int]:
        """What a service's day counts start from (domain.sequence_key): nothing, or the
        day's ticket_sequences document — the gap restoring.py leaves in its `value` after a
        restore (as when the numbers were counted there; a restore goes into a stopped
        platform, so a process reads it fresh), or, on the day the numbers moved to the
        ward's clock document, what that day had counted there: its numbers and the waits
        go on from it."""
        doc = self.db[SEQUENCES].find_one({"_id": key}) or {}
        return {name: int(count) for name, count in doc.items()
                if (name == "value" or name.startswith(("issued_r", "called_r"))) and isinstance(count, int)}

    def count_first_call(self, ward_id: str, service_code: str, day: str, rank: int) -> None:
        """A ticket of `rank` left the line for good (domain.waiting_ahead_at_issue).
        Never inside a ticket's transaction: kiosks bump the same document all day and must
        never conflict with a call; a crash before it overstates the line by one, for that
        day only."""
        self.db[OUTBOX_CLOCK].update_one({"_id": ward_id},
                                         {"$inc": {f"{_counts_path(day, service_code)}.called_r{rank}": 1}})

    # ------------------------------------------------------------ tickets
    def insert_ticket(self, ticket: dict, events: list[dict], seq: datetime | None = None) -> None:
        """The ticket and its events in one transaction; `seq`: the ward's clock step
        take_number took with the number."""
        commit(self.db, lambda session: self.db[TICKETS].insert_one(ticket, session=session), events,
               taken={ticket["ward_id"]: seq} if seq is not None else None)

    def ticket(self, ticket_id: str) -> dict | None:
        return self.db[TICKETS].find_one({"_id": ticket_id})

    def waiting_line(self, ward_id: str, day: str) -> dict[str, dict]:
        """The ward's whole line on `day`, by ticket id.

        Read by the (ward_id, day, status) index prefix; the domain picks what a counter may
        call. A narrower filter (its transfers, its services) is still an index walk on
        MongoDB but a scan of every ticket ever kept on the embedded database; a ward's line
        is tens of tickets, a few hundred on its worst day."""
        return {d["_id"]: d for d in self.db[TICKETS].find({"ward_id": ward_id, "day": day, "status": WAITING})}

    def claim(self, waiting: dict, counter_id: str, now: datetime,
              events_of: Callable[[dict], list[dict]]) -> dict | None:
        """Call a waiting ticket to `counter_id`: a compare-and-set on status `waiting`,
        None when another counter took it first. `events_of(called)` are committed with it."""
        first_call = waiting.get("first_called_at") is None

        def change(session: ClientSession) -> dict | None:
            return update_and_read(
                self.db[TICKETS],
                # first_called_at in the guard: a ticket called and transferred back since
                # we read it is chosen afresh rather than given a wrong first call.
                {"_id": waiting["_id"], "status": WAITING, "first_called_at": waiting.get("first_called_at")},
                {"$set": {"status": CALLED, "counter_id": counter_id, "called_at": now,
                          "first_called_at": now if first_call else waiting["first_called_at"],
                          "transferred_to": None}},
                session)

        return commit(self.db, change, lambda doc: events_of(doc) if doc else [])

    def update_called(self, ticket: dict, fields: dict, increments: dict, events: list[dict]) -> dict:
        """Write an officer's action on a ticket as it was read (status and called_at in the
        guard), with its events; TicketChanged when another officer acted on it first."""
        update: dict = {"$set": fields}
        if increments:
            update["$inc"] = increments
        guard = {"_id": ticket["_id"], "status": ticket["status"], "called_at": ticket["called_at"]}

        def change(session: ClientSession) -> dict:
            updated = update_and_read(self.db[TICKETS], guard, update, session)
            if updated is None:
                raise TicketChanged(ticket["_id"])
            return updated

        return commit(self.db, change, events)

    def count_ahead(self, ticket: dict) -> int:
        """Waiting tickets of the same service that the counters will call before this one
        (domain.call_order, spelled as a query)."""
        rank, queued_at = ticket["priority_rank"], ticket["queued_at"]
        return self.db[TICKETS].count_documents({
            "ward_id": ticket["ward_id"], "day": ticket["day"], "service_code": ticket["service_code"],
            "status": WAITING, "transferred_to": None,
            "$or": [
                {"priority_rank": {"$lt": rank}},
                {"priority_rank": rank, "queued_at": {"$lt": queued_at}},
                {"priority_rank": rank, "queued_at": queued_at, "sequence": {"$lt": ticket["sequence"]}},
            ],
        })

    def recent_service_seconds(self, ward_id: str, service_code: str, sample: int) -> list[int]:
        """The service's latest `sample` service times."""
        docs = (self.db[TICKETS]
                .find({"ward_id": ward_id, "service_code": service_code, "status": SERVED},
                      {"service_seconds": 1})
                .sort("served_at", DESCENDING)
                .limit(sample))
        return [d["service_seconds"] for d in docs if d.get("service_seconds") is not None]

    def newest_called_at_counter(self, ward_id: str, counter_id: str) -> dict | None:
        """The counter's newest called ticket, of any day. By the at_counter index alone (a
        day in the filter is a scan on the embedded database)."""
        return self.db[TICKETS].find_one({"ward_id": ward_id, "counter_id": counter_id, "status": CALLED},
                                         sort=[("called_at", DESCENDING)])

    # ------------------------------------------------------------ what the hall sees
    def called_on(self, ward_id: str, day: str):
        """The ward's called tickets of `day`, newest call first."""
        return self.db[TICKETS].find({"ward_id": ward_id, "day": day, "status": CALLED}).sort("called_at", DESCENDING)

    def waiting_per_service(self, ward_id: str, day: str) -> dict[str, int]:
        return {row["_id"]: row["count"] for row in self.db[TICKETS].aggregate([
            {"$match": {"ward_id": ward_id, "day": day, "status": WAITING}},
            {"$group": {"_id": "$service_code", "count": {"$sum": 1}}},
        ])}

    def all_services(self) -> list[tuple[str, str]]:
        """(ward_id, code) of every configured service."""
        return [(s["ward_id"], s["code"]) for s in self.db[SERVICES].find({}, {"ward_id": 1, "code": 1})]

    def waiting_per_ward_and_service(self, day: str) -> dict[tuple[str, str], int]:
        return {(row["_id"]["ward_id"], row["_id"]["service_code"]): row["count"] for row in self.db[TICKETS].aggregate([
            {"$match": {"day": day, "status": WAITING}},
            {"$group": {"_id": {"ward_id": "$ward_id", "service_code": "$service_code"}, "count": {"$sum": 1}}},
        ])}

    # ------------------------------------------------------------ kiosk devices
    def create_pairing(self, ward_id: str, code: str, created_by: str, now: datetime, expires_at: datetime) -> None:
        self.db[KIOSK_PAIRINGS].insert_one({"_id": code, "ward_id": ward_id, "created_by": created_by,
                                            "created_at": now, "expires_at": expires_at})

    def take_pairing(self, code: str) -> dict | None:
        """A pairing code, deleted in the same step: a second opening of the link finds nothing."""
        return self.db[KIOSK_PAIRINGS].find_one_and_delete({"_id": code})

    def add_device(self, device: dict) -> None:
        self.db[KIOSK_DEVICES].insert_one(device)

    def device_active(self, device_id: str, ward_id: str) -> bool:
        return self.db[KIOSK_DEVICES].count_documents(
            {"_id": device_id, "ward_id": ward_id, "status": "active"}, limit=1) == 1

    def kiosk_devices(self, ward_id: str) -> list[dict]:
        return list(self.db[KIOSK_DEVICES].find({"ward_id": ward_id}).sort("paired_at", ASCENDING))

    def revoke_device(self, ward_id: str, device_id: str, now: datetime) -> bool:
        result = self.db[KIOSK_DEVICES].update_one({"_id": device_id, "ward_id": ward_id},
                                                   {"$set": {"status": "revoked", "revoked_at": now}})
        return result.matched_count == 1

    def all_kiosk_devices(self) -> list[dict]:
        return list(self.db[KIOSK_DEVICES].find({}, {"ward_id": 1, "status": 1}))

    # ------------------------------------------------------------ device health (heartbeats)
    def heartbeat_record(self, key: str) -> dict | None:
        return self.db[DEVICE_HEARTBEATS].find_one({"_id": key})

    def anonymous_device_count(self, ward_id: str, now: datetime) -> int:
        """The ward's self-declared devices not yet forgotten (the TTL monitor runs once a minute)."""
        return self.db[DEVICE_HEARTBEATS].count_documents(
            {"ward_id": ward_id, "anonymous": True, "forget_at": {"$gt": now}})

    def record_heartbeat(self, key: str, fields: dict, on_insert: dict) -> None:
        self.db[DEVICE_HEARTBEATS].update_one(
            {"_id": key}, {"$set": fields, "$inc": {"beats": 1}, "$setOnInsert": on_insert}, upsert=True)

    def heartbeat_records(self, ward_id: str) -> list[dict]:
        return list(self.db[DEVICE_HEARTBEATS].find({"ward_id": ward_id}))

    def all_heartbeat_records(self, limit: int) -> list[dict]:
        """Every ward's device records, the most recently heard first, at most `limit`."""
        return list(self.db[DEVICE_HEARTBEATS].find({}).sort("last_seen_at", DESCENDING).limit(limit))

    def forget_heartbeat_record(self, key: str) -> bool:
        return self.db[DEVICE_HEARTBEATS].delete_one({"_id": key}).deleted_count == 1

    def all_counters(self) -> list[dict]:
        return [_public(d, "ward_id", "counter_id", "name") for d in self.db[COUNTERS].find({})]

    def all_wards_hours(self) -> list[dict]:
        """Every ward's id and opening-hours setting."""
        return list(self.db[WARDS].find({}, {"opening_hours": 1}))

    def claim_kiosk_request(self, ward_id: str, form_token: str, now: datetime) -> dict | None:
        """The first submission of a kiosk form token claims it (None); a repeat gets the
        claim, with the ticket it produced once there is one."""
        key = f"{ward_id}:{form_token}"
        try:
            self.db[KIOSK_REQUESTS].insert_one({"_id": key, "ticket_id": None, "created_at": now})
            return None
        except DuplicateKeyError:
            return self.db[KIOSK_REQUESTS].find_one({"_id": key}) or {"ticket_id": None}

    def complete_kiosk_request(self, ward_id: str, form_token: str, ticket_id: str | None) -> None:
        key = f"{ward_id}:{form_token}"
        if ticket_id is None:
            self.db[KIOSK_REQUESTS].delete_one({"_id": key})  # failed: the kiosk may try again
        else:
            self.db[KIOSK_REQUESTS].update_one({"_id": key}, {"$set": {"ticket_id": ticket_id}})

    # ------------------------------------------------------------ appointments (from dossier)
    def record_appointment(self, submitted: dict, now: datetime, session: ClientSession | None = None) -> None:
        """Remember the day a dossier's citizen comes back for the result; the kiosk's
        "nhận kết quả" service looks it up by receipt code."""
        self.db[APPOINTMENTS].update_one(
            {"_id": submitted["dossier_id"]},
            {"$set": {"receipt_code": submitted["receipt_code"], "ward_id": submitted["ward_id"],
                      "procedure_code": submitted["procedure_code"], "due_date": submitted["due_date"]},
             "$setOnInsert": {"recorded_at": now}},
            upsert=True, session=session)


# ---------------------------------------------------------------- every office's activity (activity.py)
TICKET_ACTIVITY = "ticket_activity"
ACTIVITY_RETENTION_SECONDS = 400 * 24 * 3600  # a year of daily numbers, and the month after


def ensure_activity_indexes(db: Database) -> None:
    db[TICKET_ACTIVITY].create_index([("day", ASCENDING), ("ward_id", ASCENDING)], name="activity_per_day")
    db[TICKET_ACTIVITY].create_index("first_seen_at", expireAfterSeconds=ACTIVITY_RETENTION_SECONDS,
                                     name="activity_expiry")


def record_ticket_activity(db: Database, ticket_id: str, on_insert: dict, changes: dict, earliest: dict,
                           session: ClientSession | None = None) -> None:
    """One ticket's line in the activity read model, whichever of its events comes first:
    `on_insert` when the line is new, `changes` set, `earliest` kept at its smallest value
    (a recall's TicketCalled does not move the first call)."""
    update: dict = {"$setOnInsert": on_insert}
    if changes:
        update["$set"] = changes
    if earliest:
        update["$min"] = earliest
    db[TICKET_ACTIVITY].update_one({"_id": ticket_id}, update, upsert=True, session=session)


def activity_of_day(db: Database, day: str, ward_id: str | None = None) -> list[dict]:
    """Per ward of `day`: tickets issued, called and served, and the sums of their waits and
    service times (the averages are the use case's)."""
    match: dict = {"day": day}
    if ward_id is not None:
        match["ward_id"] = ward_id
    pipeline = [{"$match": match}, {"$group": {
        "_id": "$ward_id",
        "issued": {"$sum": "$issued"},
        "called": {"$sum": "$called"},
        "served": {"$sum": "$served"},
        "wait_seconds": {"$sum": "$wait_seconds"},
        "service_seconds": {"$sum": "$service_seconds"},
    }}]
    return list(db[TICKET_ACTIVITY].aggregate(pipeline))
