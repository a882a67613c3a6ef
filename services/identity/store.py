"""identity's own database: wards, citizens, officers and the security audit log —
pymongo reads and writes only (and the password hashing the stored documents need).
Every moment written is given by the caller (the use cases read deps.clock); every event
written with a change is built by the caller (events.py) and committed here with it."""
from __future__ import annotations

import os
import threading
import uuid
from datetime import date, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from motcua_common import audit as audit_log
from motcua_common import revocations
from motcua_common.mongo import update_and_read
from motcua_common.outbox import commit

from . import domain


def default_hasher() -> PasswordHasher:
    """argon2id with RFC 9106's low-memory parameters (t=3, m=64 MiB, p=4)."""
    return PasswordHasher()


_hasher = default_hasher()
# A hash verified when no account matches, so a missing account costs the same time.
_DUMMY_HASH = _hasher.hash("motcua-no-such-account")


class HashGate:
    """At most `size` argon2 hashes or verifications at once in this process. Each takes
    64 MiB: sixteen request threads hashing together would need 1 GiB under a 512 Mi
    container limit. The others wait their turn (a sign-in takes a little longer under a
    burst; the process is never killed for memory). `peak` is the most seen at once."""

    def __init__(self, size: int):
        self.size = max(1, int(size))
        self._slots = threading.BoundedSemaphore(self.size)
        self._lock = threading.Lock()
        self.in_use = 0
        self.peak = 0

    def __enter__(self):
        self._slots.acquire()
        with self._lock:
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)
        return self

    def __exit__(self, *exc):
        with self._lock:
            self.in_use -= 1
        self._slots.release()
        return False


def max_concurrent_hashes(env: dict | None = None) -> int:
    """MOTCUA_MAX_CONCURRENT_HASHES (default 2): 2 × 64 MiB beside the service's own memory."""
    raw = (env if env is not None else os.environ).get("MOTCUA_MAX_CONCURRENT_HASHES", "2")
    try:
        return max(1, int(raw))
    except ValueError:
        return 2


hash_gate = HashGate(max_concurrent_hashes())


def hash_password(password: str) -> str:
    with hash_gate:
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        with hash_gate:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def burn_verification_time(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def new_id() -> str:
    return str(uuid.uuid4())


def ensure_indexes(db: Database) -> None:
    db.citizens.create_index("national_id", unique=True, name="one_account_per_national_id")
    db.citizens.create_index("phone")
    db.citizens.create_index([("ward_id", ASCENDING), ("date_of_birth", ASCENDING)])
    db.officers.create_index("username", unique=True)
    db.officers.create_index("ward_id")
    db.wards.create_index("official_code")
    audit_log.ensure_indexes(db)
    # The log before the hash chain (collection `audit`, read only now) expires with the
    # audit retention, like the chain's own records.
    audit_log.ensure_ttl_index(db.audit, "at", audit_log.retention_days("audit"), "at_1")
    # Inbound SMS already handled (a gateway's resend is answered from here), kept two days.
    db.sms_messages.create_index("at", expireAfterSeconds=2 * 86400, name="sms_messages_ttl")
    db.sms_messages.create_index([("phone_text", ASCENDING), ("at", DESCENDING)], name="same_text_recently")
    # One-time codes proving a web registration's phone, gone once expired.
    db.phone_codes.create_index("expires_at", expireAfterSeconds=0, name="phone_codes_ttl")
    # Failed sign-ins per (account or username, client address), gone a while after the last.
    db.login_failures.create_index("expires_at", expireAfterSeconds=0, name="login_failures_ttl")


# ---------------------------------------------------------------- wards
def list_wards(db: Database) -> list[dict]:
    return list(db.wards.find({}, {"_id": 0}).sort("ward_id", ASCENDING))


def get_ward(db: Database, ward_id: str) -> dict | None:
    return db.wards.find_one({"ward_id": ward_id}, {"_id": 0})


def upsert_ward(db: Database, ward: dict) -> None:
    db.wards.update_one({"_id": ward["ward_id"]}, {"$set": ward}, upsert=True)


def set_target_population(db: Database, ward_id: str, population: int) -> None:
    db.wards.update_one({"ward_id": ward_id}, {"$set": {"target_population": population}})


def ward_by_official_code(db: Database, official_code: str) -> dict | None:
    """The open ward of an official code: `ward_codes` holds one document per code (its
    `_id`), so a code is open at most once under any load and on any server."""
    found = db.ward_codes.find_one({"_id": official_code})
    return get_ward(db, found["ward_id"]) if found else None


def opened_codes(db: Database) -> dict[str, str]:
    """official code -> ward id of every ward opened from the official list (one query)."""
    return {row["_id"]: row["ward_id"] for row in db.ward_codes.find({}, {"ward_id": 1})}


def insert_opened_ward(db: Database, ward: dict, events: list[dict]) -> None:
    """A ward opened from the official list, its code claimed and its events (WardOpened),
    atomically; DuplicateKeyError (nothing written) when the code or the id is taken."""
    def change(session):
        db.ward_codes.insert_one({"_id": ward["official_code"], "ward_id": ward["ward_id"]}, session=session)
        db.wards.insert_one({"_id": ward["ward_id"], **ward}, session=session)

    commit(db, change, events)


def attach_official_code(db: Database, ward_id: str, fields: dict) -> None:
    """An existing ward (opened before codes were kept) given its official code."""
    def change(session):
        db.ward_codes.insert_one({"_id": fields["official_code"], "ward_id": ward_id}, session=session)
        db.wards.update_one({"_id": ward_id}, {"$set": fields}, session=session)

    commit(db, change, [])


def _revoke(db: Database, session, revocation: dict | None) -> None:
    """The account's earlier sessions ended (motcua_common.revocations), in the caller's transaction."""
    if revocation is not None:
        revocations.record(db, revocation["account_id"], revocation["revoked_before"], revocation["reason"],
                           revocation.get("ward_id") or "", session=session)


# ---------------------------------------------------------------- citizens
def insert_citizen(db: Database, *, citizen_id: str, national_id: str, full_name: str, date_of_birth: date,
                   phone: str, ward_id: str, password: str, channel: str, now: datetime,
                   temporary_until: datetime | None, events: list[dict], pending_phone: bool = False) -> None:
    """Insert the account and its events (CitizenRegistered) atomically.

    One account per national id holds under any load through the unique index: a second
    insert raises DuplicateKeyError, which the API answers with 409 national_id_taken."""
    doc = {
        "_id": citizen_id,
        "national_id": national_id,
        "full_name": full_name,
        "date_of_birth": date_of_birth.isoformat(),
        "phone": phone,
        "ward_id": ward_id,
        "password_hash": hash_password(password),
        # A temporary password (SMS or counter registration) must be changed before use
        # and expires after 72 hours.
        "must_change_password": temporary_until is not None,
        "password_expires_at": temporary_until,
        "failed_logins": 0,
        "locked_until": None,
        "channel": channel,
        "created_at": now,
        # A web registration is active once its phone is proven by a code sent there; an
        # SMS registration (sent from that phone) and the counter (the card checked) are
        # proof by themselves.
        "status": "pending_phone" if pending_phone else "active",
        "phone_verified": not pending_phone,
    }
    commit(db, lambda session: db.citizens.insert_one(doc, session=session), events)


def citizens_by_username(db: Database, username: str) -> list[dict]:
    if username.isascii() and username.isdigit() and len(username) == 12:
        found = db.citizens.find_one({"national_id": username, "active": {"$ne": False}})
        return [found] if found else []
    phone = domain.normalise_phone(username)
    if phone:
        # A family may share one phone: the password tells the accounts apart.
        return citizens_with_phone(db, phone)
    return []


def citizens_with_phone(db: Database, phone: str) -> list[dict]:
    """The accounts on a phone (a family may share one), a released one left out."""
    return list(db.citizens.find({"phone": phone, "active": {"$ne": False}}).limit(10))


def citizen(db: Database, citizen_id: str) -> dict | None:
    return db.citizens.find_one({"_id": citizen_id})


def citizen_by_national_id(db: Database, national_id: str) -> dict | None:
    return db.citizens.find_one({"national_id": national_id})


def update_citizen(db: Database, citizen_id: str, changes: dict, revocation: dict | None, events: list[dict]) -> None:
    """A citizen's ward or phone corrected, their earlier sessions ended and the events
    (SessionsRevoked), atomically."""
    def change(session):
        db.citizens.update_one({"_id": citizen_id}, {"$set": changes}, session=session)
        _revoke(db, session, revocation)

    commit(db, change, events)


def citizen_contact(db: Database, citizen_id: str) -> dict | None:
    return db.citizens.find_one({"_id": citizen_id}, {"phone": 1, "ward_id": 1})


def citizen_contact_by_national_id(db: Database, national_id: str) -> dict | None:
    return db.citizens.find_one({"national_id": national_id}, {"phone": 1, "ward_id": 1})


def count_registered_aged(db: Database, ward_id: str, today: date, youngest: int, oldest: int) -> int:
    first, last = domain.birth_date_range_for_ages(today, youngest, oldest)
    return db.citizens.count_documents({
        "ward_id": ward_id, "date_of_birth": {"$gte": first.isoformat(), "$lte": last.isoformat()},
    })


def registered_aged_by_ward(db: Database, today: date, youngest: int, oldest: int) -> dict[str, int]:
    first, last = domain.birth_date_range_for_ages(today, youngest, oldest)
    pipeline = [
        {"$match": {"date_of_birth": {"$gte": first.isoformat(), "$lte": last.isoformat()}}},
        {"$group": {"_id": "$ward_id", "n": {"$sum": 1}}},
    ]
    return {row["_id"]: row["n"] for row in db.citizens.aggregate(pipeline)}


# ---------------------------------------------------------------- officers
def create_officer(db: Database, *, username: str, full_name: str, ward_id: str | None, role: str,
                   password: str, created_by: str, now: datetime, counter_id: str | None = None) -> str:
    officer_id = new_id()
    db.officers.insert_one({
        "_id": officer_id, "username": username, "full_name": full_name, "ward_id": ward_id,
        "role": role, "password_hash": hash_password(password), "must_change_password": False,
        "failed_logins": 0, "locked_until": None, "created_at": now, "created_by": created_by,
        "active": True, "counter_id": counter_id,
    })
    return officer_id


def officer_by_username(db: Database, username: str) -> dict | None:
    return db.officers.find_one({"username": username})


def officer(db: Database, officer_id: str) -> dict | None:
    return db.officers.find_one({"_id": officer_id}, {"password_hash": 0})


def officers_of_ward(db: Database, ward_id: str) -> list[dict]:
    return list(db.officers.find({"ward_id": ward_id}, {"password_hash": 0}).sort("username", ASCENDING))


def update_officer(db: Database, officer_id: str, changes: dict, revocation: dict | None,
                   events: list[dict]) -> None:
    """An officer's account changed, their earlier sessions ended when the change calls
    for it, and the events (SessionsRevoked), atomically."""
    def change(session):
        db.officers.update_one({"_id": officer_id}, {"$set": changes}, session=session)
        _revoke(db, session, revocation)

    commit(db, change, events)


def reset_officer_password(db: Database, officer_id: str, password: str, until: datetime,
                           revocation: dict | None, events: list[dict]) -> None:
    """A temporary password (to be changed at the next sign-in), the earlier sessions
    ended, atomically."""
    password_hash = hash_password(password)  # before the transaction: argon2 takes its time

    def change(session):
        db.officers.update_one({"_id": officer_id}, {"$set": {
            "password_hash": password_hash, "must_change_password": True, "password_expires_at": until,
            "failed_logins": 0, "locked_until": None}}, session=session)
        _revoke(db, session, revocation)

    commit(db, change, events)


# ---------------------------------------------------------------- credentials
def collection_of(account: dict) -> str:
    return "officers" if "username" in account else "citizens"


def count_failed_login(db: Database, account: dict) -> int:
    """One more failed login on the account; its count of failures so far."""
    updated = update_and_read(db[collection_of(account)], {"_id": account["_id"]}, {"$inc": {"failed_logins": 1}})
    return updated["failed_logins"] if updated else 0


def lock(db: Database, account: dict, until: datetime) -> None:
    db[collection_of(account)].update_one({"_id": account["_id"]}, {"$set": {"locked_until": until, "failed_logins": 0}})


def record_successful_login(db: Database, account: dict, now: datetime) -> None:
    db[collection_of(account)].update_one(
        {"_id": account["_id"]}, {"$set": {"failed_logins": 0, "locked_until": None, "last_login_at": now}}
    )


def change_password(db: Database, account: dict, new_password: str, now: datetime, events: list[dict]) -> None:
    """The new password and its events (PasswordChanged) atomically."""
    coll = db[collection_of(account)]
    commit(db, lambda session: coll.update_one(
        {"_id": account["_id"]},
        {"$set": {"password_hash": hash_password(new_password), "must_change_password": False,
                  "password_expires_at": None, "password_changed_at": now}},
        session=session,
    ), events)


def set_temporary_password(db: Database, account: dict, password: str, until: datetime) -> None:
    db[collection_of(account)].update_one({"_id": account["_id"]}, {"$set": {
        "password_hash": hash_password(password), "must_change_password": True, "password_expires_at": until,
        "failed_logins": 0, "locked_until": None}})


def find_account(db: Database, account_id: str) -> dict | None:
    return db.citizens.find_one({"_id": account_id}) or db.officers.find_one({"_id": account_id})


def audit(db: Database, action: str, *, at: datetime, account_id: str | None = None, outcome: str = "ok",
          client: str | None = None, actor_id: str | None = None, actor_role: str | None = None,
          ward_id: str | None = None, subject_type: str | None = None, subject_id: str | None = None,
          **details) -> dict:
    """Security events and officers' actions, appended to the hash-chained `audit_log`
    (motcua_common.audit). The subject is the account acted on; the actor is the officer
    when one acted, else the account itself. Never a password, token, national id or phone
    number; the client's address only as a digest."""
    record = audit_log.entry(action=action, actor_id=actor_id or account_id, actor_role=actor_role,
                             subject_type=subject_type or ("account" if account_id else None),
                             subject_id=subject_id or account_id, ward_id=ward_id, outcome=outcome, client=client,
                             at=at, details=details)
    return audit_log.append(db, record)


def audit_entries_about(db: Database, account_id: str) -> list[dict]:
    """The audit log's records whose subject is this account (a citizen's data export)."""
    return list(audit_log.records(db, {"subject_type": "account", "subject_id": account_id}))


# ---------------------------------------------------------------- inbound SMS already handled
def claim_sms(db: Database, key: str, phone_text: str, now: datetime) -> dict | None:
    """Claim an inbound message for handling: None when it is new (the caller handles it),
    else the record of the first time (`outcome` once that one finished)."""
    try:
        db.sms_messages.insert_one({"_id": key, "phone_text": phone_text, "at": now, "outcome": None})
        return None
    except DuplicateKeyError:
        return db.sms_messages.find_one({"_id": key}) or {"_id": key, "outcome": None}


def recent_sms(db: Database, phone_text: str, since: datetime, but: str) -> dict | None:
    """The same text from the same phone handled since `since` (another gateway id). One
    that was refused (nothing to rate yet, a code not found) is not a resend to swallow:
    asking again a moment later is answered afresh."""
    return db.sms_messages.find_one({"phone_text": phone_text, "at": {"$gte": since}, "_id": {"$ne": but},
                                     "outcome": {"$ne": None}, "outcome.result": {"$ne": "refused"}},
                                    sort=[("at", DESCENDING)])


def finish_sms(db: Database, key: str, outcome: dict) -> None:
    db.sms_messages.update_one({"_id": key}, {"$set": {"outcome": outcome}})


def release_sms(db: Database, key: str) -> None:
    """Handling failed (notify unreachable): the gateway's retry is handled afresh."""
    db.sms_messages.delete_one({"_id": key, "outcome": None})


# ---------------------------------------------------------------- one-time codes (phone proof)
def code_digest(citizen_id: str, code: str) -> str:
    import hashlib

    return hashlib.sha256(f"{citizen_id}|{code}".encode()).hexdigest()


def save_phone_code(db: Database, citizen_id: str, code: str, now: datetime, expires_at: datetime) -> None:
    """A new code for the account (the earlier one, if any, no longer works). Stored as a
    digest: a database reader cannot activate someone else's account with it."""
    db.phone_codes.replace_one({"_id": citizen_id}, {"_id": citizen_id, "digest": code_digest(citizen_id, code),
                                                      "tries": 0, "sent_at": now, "expires_at": expires_at},
                               upsert=True)


def phone_code(db: Database, citizen_id: str) -> dict | None:
    return db.phone_codes.find_one({"_id": citizen_id})


def count_code_try(db: Database, citizen_id: str) -> int:
    """One more try on the account's code; the tries so far (0 when there is no code)."""
    doc = db.phone_codes.find_one_and_update({"_id": citizen_id}, {"$inc": {"tries": 1}},
                                             return_document=ReturnDocument.AFTER)
    return doc["tries"] if doc else 0


def drop_phone_code(db: Database, citizen_id: str) -> None:
    db.phone_codes.delete_one({"_id": citizen_id})


def activate_citizen(db: Database, citizen_id: str, now: datetime) -> bool:
    """The web account's phone proven: active from now. False when it was not pending."""
    done = db.citizens.update_one({"_id": citizen_id, "status": "pending_phone"},
                                  {"$set": {"status": "active", "phone_verified": True, "phone_verified_at": now}})
    return done.modified_count == 1


# ---------------------------------------------------------------- failed sign-ins per client
def failure_key(subject: str, client: str) -> str:
    """(account id or unknown username, client address), hashed: no usernames or addresses stored."""
    import hashlib

    return hashlib.sha256(f"{subject}|{client}".encode()).hexdigest()[:40]


def login_failure(db: Database, subject: str, client: str) -> dict | None:
    return db.login_failures.find_one({"_id": failure_key(subject, client)})


def count_login_failure(db: Database, subject: str, client: str, now: datetime, keep: timedelta) -> int:
    """One more failure of (subject, client); the failures so far since the last lock."""
    doc = db.login_failures.find_one_and_update(
        {"_id": failure_key(subject, client)},
        {"$inc": {"failures": 1}, "$set": {"expires_at": now + keep}, "$setOnInsert": {"locked_until": None}},
        upsert=True, return_document=ReturnDocument.AFTER)
    return doc["failures"]


def lock_login(db: Database, subject: str, client: str, until: datetime, keep: timedelta) -> None:
    db.login_failures.update_one({"_id": failure_key(subject, client)},
                                 {"$set": {"locked_until": until, "failures": 0, "expires_at": until + keep}},
                                 upsert=True)


def clear_login_failures(db: Database, subject: str, client: str) -> None:
    db.login_failures.delete_one({"_id": failure_key(subject, client)})


# ---------------------------------------------------------------- releasing a CCCD at the counter
def release_citizen(db: Database, account: dict, changes: dict, revocation: dict, events: list[dict]) -> None:
    """The account that took someone else's CCCD: deactivated, its CCCD freed for the real
    owner (moved aside, kept for the record), its sessions ended, atomically."""
    def change(session):
        db.citizens.update_one({"_id": account["_id"]}, {"$set": changes}, session=session)
        _revoke(db, session, revocation)

    commit(db, change, events)
