"""Asking identity about a citizen, by nameko RPC, at the moment a dossier needs it.

The dossier service keeps no national id and no phone number: it learns the citizen's
opaque id and the last four phone digits (the lookup check) and forgets the rest."""
from __future__ import annotations

from motcua_common import rpc
from motcua_common.config import Settings


class CitizenDirectory:
    def __init__(self, settings: Settings):
        self.settings = settings

    def contact(self, citizen_id: str) -> dict | None:
        """{citizen_id, phone, phone_last4, ward_id}, or None for an unknown citizen.
        Raises rpc.RpcUnavailable when identity does not answer."""
        return rpc.call(self.settings, "identity", "citizen_contact", citizen_id)

    def find_by_national_id(self, national_id: str) -> dict | None:
        """{citizen_id, phone_last4, ward_id}, or None when nobody registered this id."""
        return rpc.call(self.settings, "identity", "find_citizen", national_id)
