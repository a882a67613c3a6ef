"""identity's nameko worker: answers other services' questions about citizens and wards (RPC).

Personal data never travels in events; a service that must reach a citizen asks here, at
the moment it needs to, and keeps nothing it does not need."""
from __future__ import annotations

from nameko.rpc import rpc

from motcua_common.consumer import ServiceDatabase
from motcua_common.wards import is_ward_id

from . import domain, store


class IdentityService:
    name = "identity"
    db = ServiceDatabase("identity")

    @rpc
    def citizen_contact(self, citizen_id: str) -> dict | None:
        """The phone to text a citizen on, asked by notify at send time."""
        found = self.db.citizens.find_one({"_id": citizen_id}, {"phone": 1, "ward_id": 1})
        if found is None:
            return None
        return {"citizen_id": found["_id"], "phone": found["phone"], "phone_last4": found["phone"][-4:],
                "ward_id": found["ward_id"]}

    @rpc
    def find_citizen(self, national_id: str) -> dict | None:
        """The account of a national id, asked by dossier when an officer submits at the counter."""
        if not isinstance(national_id, str) or domain.check_national_id(national_id, None):
            return None
        found = self.db.citizens.find_one({"national_id": national_id}, {"phone": 1, "ward_id": 1})
        if found is None:
            return None
        return {"citizen_id": found["_id"], "phone_last4": found["phone"][-4:], "ward_id": found["ward_id"]}

    @rpc
    def ward(self, ward_id: str) -> dict | None:
        """A ward of the platform's reference data, asked by dossier before it takes a dossier
        for the ward and when it names the ward on a result; None for a ward that does not exist."""
        if not is_ward_id(ward_id):
            return None
        found = store.get_ward(self.db, ward_id)
        if found is None:
            return None
        return {"ward_id": found["ward_id"], "name": found["name"], "province": found.get("province")}


SERVICES = [IdentityService]
