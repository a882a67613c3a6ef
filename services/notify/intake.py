"""Use cases of intake: from a consumed event, or a command from identity, to pending
notifications, once.

Plain functions `(deps, principal, input...)`, like the API's; their caller is the
platform itself (a consumed event, identity's RPC), so `principal` is None. Kept apart
from worker.py so that they run (and are tested) without a nameko container. The time is
deps.clock's; how long a chain's "submitted" SMS waits for the chain's other events
(store.gather_chain) is deps.options.chain_hold_seconds."""
from __future__ import annotations

from motcua_common.auth import Principal
from motcua_common.consumer import handle_once
from motcua_common.events import Event

from . import domain, store

CONSUMER = "notify"
# Chain races are between a chain's own few events: a couple of reruns settle any of them.
CHAIN_RACE_RERUNS = 3


def accept_event(deps, principal: Principal | None, event: Event) -> str:
    """Store the SMS `event` asks for; "processed", "duplicate" or "skipped".

    An event about nobody with an account (empty citizen_id) is skipped without a write:
    there is nobody to text and nothing to remember. Otherwise the notifications and the
    processed mark are one transaction, and the notifications' unique key (event, template,
    citizen) holds even if the processed mark has expired. A dossier submitted in a chain
    joins the chain's one notification instead of making its own."""
    if not event.payload.get("citizen_id"):
        return "skipped"
    db, now, chain_hold_seconds = deps.db, deps.clock.now(), deps.options.chain_hold_seconds
    ward_id = event.payload.get("ward_id") or event.ward_id
    intents = domain.intents_for(event.type, event.payload)
    docs = [
        store.new_notification(template=intent.template, params=intent.params, ward_id=ward_id,
                               source_id=event.event_id, citizen_id=intent.citizen_id, now=now)
        for intent in intents if not intent.chain_id
    ]
    chained = [intent for intent in intents if intent.chain_id]

    def work(session) -> None:
        # One by one: a clash on the unique key is then a DuplicateKeyError, which
        # handle_once answers as "duplicate" (insert_many would wrap it in a BulkWriteError).
        for doc in docs:
            db[store.NOTIFICATIONS].insert_one(doc, session=session)
        for intent in chained:
            store.gather_chain(db, intent, ward_id, now, chain_hold_seconds, session)

    for _ in range(CHAIN_RACE_RERUNS - 1):
        try:
            return handle_once(db, CONSUMER, event, work)
        except store.ChainRace:
            continue
    return handle_once(db, CONSUMER, event, work)


def accept_reply(deps, principal: Principal | None, to, template, variables, ward_id, key) -> str:
    """identity's send_sms_reply: a pending SMS to `to`, once per `key`; its notification id.

    Checked whole before anything is stored (domain.ReplyRefused otherwise), so a reply
    that cannot render never waits in the store. Without diacritics when
    deps.options.unaccented (SMS_UNACCENTED)."""
    reply = domain.check_reply(to, template, variables, ward_id, key, deps.options.unaccented)
    return store.add_reply(deps.db, reply, deps.clock.now())
