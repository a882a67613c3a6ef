"""A stand-in for dossier in notify's worker tests: a nameko service named "dossier"
answering `for_sms(dossier_id, event_id)` from FAKE_DOSSIER_DETAILS (JSON: dossier_id ->
the answer), None for any other dossier.

Run it as `motcua worker --service dossier` with MOTCUA_WORKER_MODULE=fake_dossier and
this folder on PYTHONPATH."""
import json
import os

from nameko.rpc import rpc


class FakeDossier:
    name = "dossier"

    @rpc
    def for_sms(self, dossier_id, event_id):
        return json.loads(os.environ.get("FAKE_DOSSIER_DETAILS", "{}")).get(dossier_id)


SERVICES = [FakeDossier]
