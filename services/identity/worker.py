"""identity's nameko worker: answers other services' questions about citizens and wards (RPC).
Only wiring: each method hands its question to the use case the API would call.

Personal data never travels in events; a service that must reach a citizen asks here, at
the moment it needs to, and keeps nothing it does not need."""
from __future__ import annotations

from motcua_common.nameko_rpc import rpc

from motcua_common.deps import deps_provider

from . import accounts, officers, wards
from .deps import build_deps


class IdentityService:
    name = "identity"
    deps = deps_provider(build_deps)()  # identity's Deps, built once per worker process

    @rpc
    def citizen_contact(self, citizen_id: str) -> dict | None:
        """The phone to text a citizen on, asked by notify at send time."""
        return accounts.citizen_contact(self.deps, citizen_id)

    @rpc
    def find_citizen(self, national_id: str, asked_by: dict | None = None) -> dict | None:
        """The account of a national id, asked by dossier when an officer submits at the
        counter (`asked_by`: {officer_id, role, ward_id} of that officer, for the audit)."""
        return accounts.find_citizen(self.deps, national_id, asked_by)

    @rpc
    def ward(self, ward_id: str) -> dict | None:
        """A ward of the platform's reference data, asked by dossier before it takes a dossier
        for the ward and when it names the ward on a result; None for a ward that does not exist."""
        return wards.ward_for_rpc(self.deps, ward_id)

    @rpc
    def ward_leaders_contacts(self, ward_id: str) -> list[dict]:
        """The ward's active leaders' phones and e-mails, asked by notify for the overdue digest."""
        return officers.ward_leaders_contacts(self.deps, ward_id)

    @rpc
    def officer_in_ward(self, officer_id: str, ward_id: str) -> bool:
        """Whether an active officer of that ward, asked by dossier before an assignment."""
        return officers.officer_in_ward(self.deps, officer_id, ward_id)

    @rpc
    def ward_officers(self, ward_id: str) -> list[dict]:
        """The ward's active staff [{officer_id, full_name, role}], asked by dossier's desk."""
        return officers.ward_officers(self.deps, ward_id)

    @rpc
    def citizen_identity(self, citizen_id: str) -> dict | None:
        """A citizen's national id (and name, phone digits), asked by dossier when they
        register, to hand them the dossiers filed for them at the counter."""
        return accounts.citizen_identity(self.deps, citizen_id)

    @rpc
    def citizen_names(self, citizen_ids: list[str]) -> dict[str, str]:
        """{citizen_id: full name}, asked by dossier's desk for the dossiers it lists."""
        return accounts.citizen_names(self.deps, citizen_ids)


SERVICES = [IdentityService]
