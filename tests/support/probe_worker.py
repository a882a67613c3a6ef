"""A nameko service used by the consumer tests: it consumes dossier's DossierSubmitted as
the "notify" consumer and records what it saw; some receipt codes make it fail (FAIL…), and
some kill the whole worker process (KILL…), as a handler that crashes the interpreter would."""
import os

from nameko.rpc import rpc

from motcua_common.consumer import ServiceDatabase, event_handler, handle_once


class ProbeNotify:
    name = "notify"
    db = ServiceDatabase("notify")

    @event_handler("DossierSubmitted")
    def on_dossier_submitted(self, event):
        code = event["receipt_code"]
        if code.startswith("KILL"):
            self.db.kills.insert_one({"receipt_code": code})
            os._exit(3)  # no exception, no ack, no cleanup: the process is simply gone
        if code.startswith("FAIL"):
            self.db.failures.insert_one({"receipt_code": code})
            raise RuntimeError(f"cannot handle {code}")

        def work(session):
            self.db.seen.insert_one({"receipt_code": code, "event_id": event.event_id}, session=session)

        return handle_once(self.db, "notify", event, work)

    @rpc
    def ping(self):
        return "pong"


SERVICES = [ProbeNotify]
