"""Asking identity about a citizen, by nameko RPC, at the moment a dossier needs it.

The dossier service keeps no national id and no phone number: it learns the citizen's
opaque id and the last four phone digits (the lookup check) and forgets the rest."""
from __future__ import annotations

import logging

from motcua_common import rpc
from motcua_common.config import Settings

log = logging.getLogger(__name__)

# Seconds to wait for identity's answer, per try. Identity answers in milliseconds when
# idle; in a busy hour its worker can hold a request behind others for seconds, and a
# citizen at the counter must not be sent away for that. So a slow answer is asked once
# more, with a longer wait. Both are reads, so asking twice changes nothing. "Identity is
# not running" or "the broker is unreachable" is answered at once: waiting cannot help.
ATTEMPT_TIMEOUTS_SECONDS = (5.0, 10.0)


class CitizenDirectory:
    def __init__(self, settings: Settings, timeouts: tuple[float, ...] = ATTEMPT_TIMEOUTS_SECONDS):
        self.settings, self.timeouts = settings, timeouts

    def _ask(self, method: str, argument: str):
        for attempt, timeout in enumerate(self.timeouts, start=1):
            try:
                return rpc.call(self.settings, "identity", method, argument, timeout=timeout)
            except rpc.RpcTimedOut as exc:
                if attempt == len(self.timeouts):
                    raise
                log.warning("identity is slow, asking again", extra={"method": method, "attempt": attempt,
                                                                     "error": str(exc)})

    def contact(self, citizen_id: str) -> dict | None:
        """{citizen_id, phone, phone_last4, ward_id}, or None for an unknown citizen.
        Raises rpc.RpcUnavailable when identity does not answer."""
        return self._ask("citizen_contact", citizen_id)

    def find_by_national_id(self, national_id: str) -> dict | None:
        """{citizen_id, phone_last4, ward_id}, or None when nobody registered this id.
        Raises rpc.RpcUnavailable when identity does not answer."""
        return self._ask("find_citizen", national_id)

    def identity_of(self, citizen_id: str) -> dict | None:
        """{citizen_id, national_id, phone_last4, full_name}, or None: asked when a citizen
        registers, to find a counter record waiting for their national id (counter_records.py).
        Raises rpc.RpcUnavailable when identity does not answer (or cannot answer this)."""
        return self._ask_new("citizen_identity", citizen_id)

    def names(self, citizen_ids: list[str]) -> dict[str, str]:
        """{citizen_id: full name} of those identity knows: the desk's work list shows the
        citizen's name of an online dossier. Raises rpc.RpcUnavailable."""
        return self._ask_new("citizen_names", list(citizen_ids)) or {}

    def _ask_new(self, method: str, argument):
        from nameko.exceptions import RemoteError

        try:
            return self._ask(method, argument)
        except RemoteError as exc:
            # e.g. MethodNotFound while identity runs a build without the question.
            raise rpc.RpcUnavailable(f"identity.{method} failed: {exc.exc_type}") from exc
