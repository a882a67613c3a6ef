"""The queue's own database: wards, services, counters, tickets, day sequences and the
appointments projection. Every write that others must hear about goes through the outbox
(motcua_common.outbox.commit), in one transaction with its event."""
from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Callable

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from motcua_common import metrics
from motcua_common.events import new_event
from motcua_common.indexes import ensure_plumbing_indexes
from motcua_common.mongo import update_and_read
from motcua_common.outbox import commit

from . import domain
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

# domain.call_order as index keys: the queue_of_the_day index keeps a ward's line in calling order.
CALL_ORDER_SORT = [("priority_rank", ASCENDING), ("queued_at", ASCENDING), ("sequence", ASCENDING), ("_id", ASCENDING)]
# Each lost race means another counter took a ticket; this bound is never met in a ward.
MAX_CALL_ATTEMPTS = 50
# Wards, services and counters change a few times a year, tickets hundreds of times an
# hour: every kiosk request reads them, so each API process remembers them this long
# (an edit made through another process shows within it; through this one, at once).
REFERENCE_TTL_SECONDS = 30.0


class TicketChanged(Exception):
    """The ticket moved on between reading it and writing it (another officer acted)."""


class CallContention(Exception):
    """Other counters kept taking the chosen tickets; the caller may simply retry."""


def ensure_indexes(db: Database) -> None:
    ensure_plumbing_indexes(db)
    db[SERVICES].create_index([("ward_id", ASCENDING), ("code", ASCENDING)], unique=True, name="service_per_ward")
    db[COUNTERS].create_index([("ward_id", ASCENDING), ("counter_id", ASCENDING)], unique=True, name="counter_per_ward")
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
    db[APPOINTMENTS].create_index("receipt_code", name="by_receipt_code")
    db[APPOINTMENTS].create_index([("ward_id", ASCENDING), ("due_date", ASCENDING)], name="due_per_ward")


def _public(doc: dict | None, *fields: str) -> dict | None:
    return None if doc is None else {f: doc.get(f) for f in fields}


class QueueStore:
    def __init__(self, db: Database, timezone_name: str):
        self.db = db
        self.timezone_name = timezone_name
        self._reference: dict[tuple, tuple[float, object]] = {}

    def _remembered(self, key: tuple, load: Callable[[], object]):
        """Reference data, from memory for REFERENCE_TTL_SECONDS. Absence is never
        remembered: a ward or service added a moment ago is found at once."""
        now = time.monotonic()
        hit = self._reference.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if value is not None and value is not False:
            self._reference[key] = (now + REFERENCE_TTL_SECONDS, value)
        return value

    def day_of(self, now: datetime) -> str:
        return domain.local_day(now, self.timezone_name)

    # ------------------------------------------------------------ reference data
    def save_ward(self, ward_id: str, name: str) -> None:
        self.db[WARDS].update_one({"_id": ward_id}, {"$set": {"name": name}}, upsert=True)
        self._reference.clear()

    def save_service(self, ward_id: str, code: str, name: str, prefix: str) -> None:
        self.db[SERVICES].update_one(
            {"_id": f"{ward_id}:{code}"},
            {"$set": {"ward_id": ward_id, "code": code, "name": name, "prefix": prefix}}, upsert=True)
        self._reference.clear()

    def save_counter(self, ward_id: str, counter_id: str, name: str, service_codes: list[str]) -> None:
        self.db[COUNTERS].update_one(
            {"_id": f"{ward_id}:{counter_id}"},
            {"$set": {"ward_id": ward_id, "counter_id": counter_id, "name": name,
                      "service_codes": list(service_codes)}}, upsert=True)
        self._reference.clear()

    def ward_exists(self, ward_id: str) -> bool:
        return self._remembered(("ward", ward_id),
                                lambda: self.db[WARDS].count_documents({"_id": ward_id}, limit=1) == 1)

    def services(self, ward_id: str) -> list[dict]:
        docs = self.db[SERVICES].find({"ward_id": ward_id}).sort("code", ASCENDING)
        return [_public(d, "code", "name", "prefix") for d in docs]

    def service(self, ward_id: str, code: str) -> dict | None:
        return self._remembered(("service", ward_id, code), lambda: _public(
            self.db[SERVICES].find_one({"ward_id": ward_id, "code": code}), "code", "name", "prefix"))

    def counters(self, ward_id: str) -> list[dict]:
        docs = self.db[COUNTERS].find({"ward_id": ward_id}).sort("counter_id", ASCENDING)
        return [_public(d, "counter_id", "name", "service_codes") for d in docs]

    def counter(self, ward_id: str, counter_id: str) -> dict | None:
        doc = self.db[COUNTERS].find_one({"ward_id": ward_id, "counter_id": counter_id})
        return _public(doc, "counter_id", "name", "service_codes")

    # ------------------------------------------------------------ issuing
    def take_number(self, ward_id: str, service_code: str, day: str, rank: int, now: datetime) -> dict:
        """The service's day counts after taking the next number (`value`), distinct under
        any concurrency; also counts the ticket among its rank's issued (issued_r<rank>).

        Increment without upsert, which is atomic on MongoDB and on the embedded server
        alike; only the day's first ticket finds no counter, creates it (losing that race
        is fine) and increments again. It runs outside the ticket's transaction, so
        concurrent kiosks never conflict on it; a ticket whose write then fails leaves a
        gap in the numbers, never a duplicate."""
        key = _sequence_key(ward_id, service_code, day)
        bump = {"$inc": {"value": 1, f"issued_r{rank}": 1}}
        doc = self.db[SEQUENCES].find_one_and_update({"_id": key}, bump, return_document=ReturnDocument.AFTER)
        if doc is None:
            try:
                self.db[SEQUENCES].insert_one({"_id": key, "value": 0, "created_at": now})
            except DuplicateKeyError:
                pass
            doc = self.db[SEQUENCES].find_one_and_update({"_id": key}, bump, return_document=ReturnDocument.AFTER)
        return doc

    def issue_ticket(self, ward_id: str, service: dict, priority: str, now: datetime) -> dict:
        now = domain.to_millis(now)
        day = self.day_of(now)
        rank = domain.PRIORITY_RANK[priority]
        counts = self.take_number(ward_id, service["code"], day, rank, now)
        sequence = counts["value"]
        ticket = {
            "_id": str(uuid.uuid4()),
            "ward_id": ward_id,
            "day": day,
            "service_code": service["code"],
            "number": domain.ticket_number(service["prefix"], sequence),
            "sequence": sequence,
            "priority": priority,
            "priority_rank": domain.PRIORITY_RANK[priority],
            "status": WAITING,
            "issued_at": now,
            "queued_at": now,
            "transferred_to": None,
            "counter_id": None,
            "called_at": None,
            "first_called_at": None,
        }
        event = new_event("TicketIssued", ward_id, {
            "ticket_id": ticket["_id"], "number": ticket["number"], "ward_id": ward_id,
            "service_code": service["code"], "priority": priority,
        })
        commit(self.db, lambda session: self.db[TICKETS].insert_one(ticket, session=session), [event])
        # From the counts the number came with: no scan of a queue that grows all morning.
        ahead = domain.waiting_ahead_at_issue(rank, _by_rank(counts, "issued"), _by_rank(counts, "called"))
        estimate = domain.estimate_wait_minutes(
            ahead, self.recent_service_seconds(ward_id, service["code"]),
            self.counters_serving(ward_id, service["code"]))
        return {**ticket, "waiting_ahead": ahead, "estimated_wait_minutes": estimate}

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

    def recent_service_seconds(self, ward_id: str, service_code: str) -> list[int]:
        """The service's latest service times, for the estimate; remembered like reference
        data (a serve through this process refreshes them at once)."""
        def load() -> list[int]:
            docs = (self.db[TICKETS]
                    .find({"ward_id": ward_id, "service_code": service_code, "status": SERVED},
                          {"service_seconds": 1})
                    .sort("served_at", DESCENDING)
                    .limit(domain.RECENT_SERVICE_SAMPLE))
            return [d["service_seconds"] for d in docs if d.get("service_seconds") is not None]

        return self._remembered(("recent", ward_id, service_code), load)

    def counters_serving(self, ward_id: str, service_code: str) -> int:
        return self._remembered(("serving", ward_id, service_code), lambda: self.db[COUNTERS].count_documents(
            {"ward_id": ward_id, "service_codes": service_code}))

    # ------------------------------------------------------------ calling
    def call_next(self, ward_id: str, counter: dict, now: datetime) -> dict | None:
        """Call the counter's next ticket of today, or None when nobody waits for it.

        Two counters calling at once never get the same ticket: the claim is a
        compare-and-set on status `waiting`; the loser chooses again."""
        now = domain.to_millis(now)
        counter_id, codes = counter["counter_id"], counter["service_codes"]
        # The ward's whole line today, read by the (ward_id, day, status) index prefix; the
        # domain picks what this counter may call. A narrower filter (its transfers, its
        # services) is still an index walk on MongoDB but a scan of every ticket ever kept on
        # the embedded database; a ward's line is tens of tickets, a few hundred on its worst day.
        line = {"ward_id": ward_id, "day": self.day_of(now), "status": WAITING}
        for _ in range(MAX_CALL_ATTEMPTS):
            docs = {d["_id"]: d for d in self.db[TICKETS].find(line)}
            chosen = domain.choose_next((_waiting(d) for d in docs.values()), counter_id, codes)
            if chosen is None:
                return None
            called = self._claim(docs[chosen.ticket_id], counter_id, now)
            if called is not None:
                return called
        raise CallContention(counter_id)

    def _claim(self, waiting: dict, counter_id: str, now: datetime) -> dict | None:
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

        called = commit(self.db, change, lambda doc: [_called_event(doc)] if doc else [])
        if called is not None and first_call:
            # Off the line for good (waiting_ahead_at_issue). Outside the transaction on
            # purpose: kiosks bump the same document all day and must never conflict with
            # a call; a crash right here overstates the line by one, for that day only.
            self.db[SEQUENCES].update_one(
                {"_id": _sequence_key(called["ward_id"], called["service_code"], called["day"])},
                {"$inc": {f"called_r{called['priority_rank']}": 1}})
            metrics.QUEUE_WAIT_SECONDS.labels(called["ward_id"]).observe(
                (called["called_at"] - called["issued_at"]).total_seconds())
        return called

    # ------------------------------------------------------------ officer actions
    def ticket(self, ticket_id: str) -> dict | None:
        return self.db[TICKETS].find_one({"_id": ticket_id})

    def apply_action(self, ticket: dict, action: str, now: datetime, officer_id: str,
                     target_counter_id: str | None = None) -> dict:
        """Serve, skip, recall or transfer a called ticket (domain.next_status decides which
        are allowed). Raises domain.InvalidTransition, or TicketChanged when another
        officer acted on it first."""
        now = domain.to_millis(now)
        status = domain.next_status(ticket["status"], action)
        update: dict = {"$set": {"status": status}}
        events: list[dict] = []
        if action == domain.SERVE:
            times = domain.service_times(ticket["issued_at"], ticket["first_called_at"], ticket["called_at"], now)
            update["$set"].update({"served_at": now, "officer_id": officer_id,
                                   "wait_seconds": times.wait_seconds, "service_seconds": times.service_seconds})
            events.append(new_event("TicketServed", ticket["ward_id"], {
                "ticket_id": ticket["_id"], "ward_id": ticket["ward_id"], "counter_id": ticket["counter_id"],
                "officer_id": officer_id, "wait_seconds": times.wait_seconds,
                "service_seconds": times.service_seconds, "service_code": ticket["service_code"],
                "number": ticket["number"],
            }))
        elif action == domain.SKIP:
            update["$set"].update({"skipped_at": now, "officer_id": officer_id})
        elif action == domain.RECALL:
            update["$set"]["called_at"] = now
            update["$inc"] = {"recalls": 1}
            events.append(_called_event({**ticket, "called_at": now}))
        elif action == domain.TRANSFER:
            # Back in the queue with its original queued_at: it keeps its place in time.
            update["$set"].update({"transferred_to": target_counter_id, "transferred_from": ticket["counter_id"],
                                   "counter_id": None, "called_at": None})
        guard = {"_id": ticket["_id"], "status": ticket["status"], "called_at": ticket["called_at"]}

        def change(session: ClientSession) -> dict:
            updated = update_and_read(self.db[TICKETS], guard, update, session)
            if updated is None:
                raise TicketChanged(ticket["_id"])
            return updated

        updated = commit(self.db, change, events)
        if action == domain.SERVE:
            self._reference.pop(("recent", ticket["ward_id"], ticket["service_code"]), None)
        return updated

    def current_at_counter(self, ward_id: str, counter_id: str, now: datetime) -> dict | None:
        """The ticket a counter has called and not yet closed today (the newest, if an
        officer left an earlier one open)."""
        # By the at_counter index alone (a day in the filter is a scan on the embedded
        # database); a ticket called today is newer than any left open on an earlier day.
        newest = self.db[TICKETS].find_one({"ward_id": ward_id, "counter_id": counter_id, "status": CALLED},
                                           sort=[("called_at", DESCENDING)])
        return newest if newest is not None and newest["day"] == self.day_of(now) else None

    # ------------------------------------------------------------ what the hall sees
    def board(self, ward_id: str, now: datetime) -> dict:
        """Who is called where (the latest call of each counter) and how many wait per
        service, for the ward's current local day."""
        day = self.day_of(now)
        serving, seen = [], set()
        for doc in self.db[TICKETS].find({"ward_id": ward_id, "day": day, "status": CALLED}).sort("called_at", DESCENDING):
            if doc["counter_id"] in seen:
                continue  # an earlier call the officer never closed; the newest one counts
            seen.add(doc["counter_id"])
            serving.append({"number": doc["number"], "counter_id": doc["counter_id"],
                            "called_at": domain.iso_utc(doc["called_at"]), "service_code": doc["service_code"]})
        waiting = {s["code"]: 0 for s in self.services(ward_id)}
        for row in self.db[TICKETS].aggregate([
            {"$match": {"ward_id": ward_id, "day": day, "status": WAITING}},
            {"$group": {"_id": "$service_code", "count": {"$sum": 1}}},
        ]):
            waiting[row["_id"]] = row["count"]
        return {"ward_id": ward_id, "day": day, "serving": serving, "waiting": waiting}

    def waiting_counts(self, now: datetime) -> dict[tuple[str, str], int]:
        """(ward_id, service_code) -> tickets waiting today; every configured service is
        present, so a queue that empties reads 0 rather than vanishing from the graphs."""
        counts = {(s["ward_id"], s["code"]): 0 for s in self.db[SERVICES].find({}, {"ward_id": 1, "code": 1})}
        for row in self.db[TICKETS].aggregate([
            {"$match": {"day": self.day_of(now), "status": WAITING}},
            {"$group": {"_id": {"ward_id": "$ward_id", "service_code": "$service_code"}, "count": {"$sum": 1}}},
        ]):
            counts[(row["_id"]["ward_id"], row["_id"]["service_code"])] = row["count"]
        return counts

    def ward_name(self, ward_id: str) -> str | None:
        doc = self.db[WARDS].find_one({"_id": ward_id}, {"name": 1})
        return doc.get("name") if doc else None

    # ------------------------------------------------------------ kiosk devices
    def create_pairing(self, ward_id: str, code: str, created_by: str, now: datetime, expires_at: datetime) -> None:
        self.db[KIOSK_PAIRINGS].insert_one({"_id": code, "ward_id": ward_id, "created_by": created_by,
                                            "created_at": now, "expires_at": expires_at})

    def redeem_pairing(self, code: str, now: datetime) -> dict | None:
        """Use a pairing code once: the first kiosk to open the link gets the device; the
        document is deleted in the same step so that a second opening finds nothing."""
        doc = self.db[KIOSK_PAIRINGS].find_one_and_delete({"_id": code})
        if doc is None:
            return None
        expires_at = doc["expires_at"]
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=now.tzinfo)
        if expires_at <= now:
            return None  # the TTL monitor runs once a minute; an expired code is refused at once
        device = {"_id": str(uuid.uuid4()), "ward_id": doc["ward_id"], "status": "active",
                  "paired_by": doc["created_by"], "paired_at": now}
        self.db[KIOSK_DEVICES].insert_one(device)
        return device

    def device_active(self, device_id: str, ward_id: str) -> bool:
        return self.db[KIOSK_DEVICES].count_documents(
            {"_id": device_id, "ward_id": ward_id, "status": "active"}, limit=1) == 1

    def kiosk_devices(self, ward_id: str) -> list[dict]:
        docs = self.db[KIOSK_DEVICES].find({"ward_id": ward_id}).sort("paired_at", ASCENDING)
        return [{"device_id": d["_id"], "status": d["status"], "paired_at": domain.iso_utc(d["paired_at"])}
                for d in docs]

    def revoke_device(self, ward_id: str, device_id: str, now: datetime) -> bool:
        result = self.db[KIOSK_DEVICES].update_one({"_id": device_id, "ward_id": ward_id},
                                                   {"$set": {"status": "revoked", "revoked_at": now}})
        return result.matched_count == 1

    def claim_kiosk_request(self, ward_id: str, form_token: str, now: datetime) -> dict | None:
        """Guard against a double tap: the first submission of a kiosk form token claims it
        (None); a repeat gets the claim, with the ticket it produced once there is one."""
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
    def record_appointment(self, submitted: dict, session: ClientSession | None = None) -> None:
        """Remember the day a dossier's citizen comes back for the result; the kiosk's
        "nhận kết quả" service looks it up by receipt code."""
        self.db[APPOINTMENTS].update_one(
            {"_id": submitted["dossier_id"]},
            {"$set": {"receipt_code": submitted["receipt_code"], "ward_id": submitted["ward_id"],
                      "procedure_code": submitted["procedure_code"], "due_date": submitted["due_date"]},
             "$setOnInsert": {"recorded_at": domain.utc_now()}},
            upsert=True, session=session)


def _sequence_key(ward_id: str, service_code: str, day: str) -> str:
    return f"{ward_id}:{service_code}:{day}"


def _by_rank(counts: dict, kind: str) -> dict[int, int]:
    return {rank: counts.get(f"{kind}_r{rank}", 0) for rank in domain.PRIORITY_RANK.values()}


def _waiting(doc: dict) -> domain.WaitingTicket:
    return domain.WaitingTicket(
        ticket_id=doc["_id"], service_code=doc["service_code"], priority=doc["priority"],
        queued_at=doc["queued_at"], sequence=doc["sequence"], transferred_to=doc.get("transferred_to"))


def _called_event(ticket: dict) -> dict:
    return new_event("TicketCalled", ticket["ward_id"], {
        "ticket_id": ticket["_id"], "number": ticket["number"], "ward_id": ticket["ward_id"],
        "counter_id": ticket["counter_id"], "service_code": ticket["service_code"],
        "called_at": domain.iso_utc(ticket["called_at"]),
    })
