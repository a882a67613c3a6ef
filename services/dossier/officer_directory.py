"""Asking identity about an officer, by nameko RPC: is this account an active officer of
that ward? Asked when a dossier's step is handed to someone (POST /dossiers/{id}/assign).

identity's worker answers `officer_in_ward(officer_id, ward_id) -> bool`. Not remembered:
an officer deactivated a minute ago must not be handed a dossier, and assignments are few.
A missing answer (identity down, or a build of identity without the method) raises
rpc.RpcUnavailable; the caller answers 503 dependency_unavailable."""
from __future__ import annotations

from motcua_common import rpc
from motcua_common.config import Settings

TIMEOUT_SECONDS = 5.0
METHOD = "officer_in_ward"


class OfficerDirectory:
    def __init__(self, settings: Settings, timeout: float = TIMEOUT_SECONDS):
        self.settings, self.timeout = settings, timeout

    def in_ward(self, officer_id: str, ward_id: str) -> bool:
        from nameko.exceptions import RemoteError

        try:
            return bool(rpc.call(self.settings, "identity", METHOD, officer_id, ward_id, timeout=self.timeout))
        except RemoteError as exc:
            # e.g. MethodNotFound while identity runs a build without the question.
            raise rpc.RpcUnavailable(f"identity.{METHOD} failed: {exc.exc_type}") from exc

    def of_ward(self, ward_id: str) -> list[dict]:
        """The ward's active staff, [{officer_id, full_name, role}] (identity's
        `ward_officers`): the desk's «phân công» select and the officers' names it shows."""
        from nameko.exceptions import RemoteError

        try:
            return list(rpc.call(self.settings, "identity", "ward_officers", ward_id, timeout=self.timeout) or [])
        except RemoteError as exc:
            raise rpc.RpcUnavailable(f"identity.ward_officers failed: {exc.exc_type}") from exc
