"""A stand-in for identity in notify's worker tests: a nameko service named "identity"
answering `citizen_contact` from FAKE_IDENTITY_CONTACTS (JSON: citizen_id -> phone).

Run it as `motcua worker --service identity` with MOTCUA_WORKER_MODULE=fake_identity and
this folder on PYTHONPATH."""
import json
import os

from nameko.rpc import rpc


class FakeIdentity:
    name = "identity"

    @rpc
    def citizen_contact(self, citizen_id):
        phone = json.loads(os.environ.get("FAKE_IDENTITY_CONTACTS", "{}")).get(citizen_id)
        if phone is None:
            return None
        return {"citizen_id": citizen_id, "phone": phone, "phone_last4": phone[-4:],
                "ward_id": os.environ.get("FAKE_IDENTITY_WARD", "dn-hai-chau")}


SERVICES = [FakeIdentity]
