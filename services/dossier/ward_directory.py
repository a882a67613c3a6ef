"""Asking identity about a ward, by nameko RPC, and remembering the answer for a while.

Identity owns the platform's wards (the administrator opens them there) and announces
each one (WardOpened); the dossier service keeps what it heard (wards.py) and looks there
first (`local`), asking identity only about a ward it has not heard of — one opened before
the event was subscribed, or whose event is still on its way. A ward changes rarely, and the same few wards are asked
about all day, so each API process remembers an answer: a ward that exists for
KNOWN_TTL_SECONDS, a ward that does not for only UNKNOWN_TTL_SECONDS, so that a ward the
administrator has just created takes dossiers within half a minute."""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from motcua_common import rpc
from motcua_common.config import Settings

log = logging.getLogger(__name__)

KNOWN_TTL_SECONDS = 600.0
UNKNOWN_TTL_SECONDS = 30.0
# Wards in the whole country are a few thousand; anybody can send made-up ids, so the
# memory is bounded and the oldest answers are forgotten first.
MAX_REMEMBERED = 5000
# One try: a caller that cannot get an answer carries on without one (see submission.py
# and issuing.py), so waiting longer only keeps a citizen waiting.
TIMEOUT_SECONDS = 5.0


class WardDirectory:
    def __init__(self, settings: Settings, timeout: float = TIMEOUT_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 local: Callable[[str], dict | None] | None = None):
        self.settings, self.timeout, self.clock = settings, timeout, clock
        self.local = local  # ward_id -> this service's record of the ward, or None
        self._answers: OrderedDict[str, tuple[float, dict | None]] = OrderedDict()
        self._lock = threading.Lock()

    def ward(self, ward_id: str) -> dict | None:
        """{ward_id, name, province}, or None for a ward that does not exist.
        Raises rpc.RpcUnavailable when identity does not answer (nothing is remembered then)."""
        if self.local is not None:
            recorded = self.local(ward_id)
            if recorded is not None:
                return recorded
        remembered = self._remembered(ward_id)
        if remembered is not None:
            return remembered[1]
        found = rpc.call(self.settings, "identity", "ward", ward_id, timeout=self.timeout)
        self._remember(ward_id, found)
        return found

    def _remembered(self, ward_id: str) -> tuple[float, dict | None] | None:
        with self._lock:
            answer = self._answers.get(ward_id)
            if answer is not None and answer[0] <= self.clock():
                del self._answers[ward_id]
                return None
            return answer

    def _remember(self, ward_id: str, found: dict | None) -> None:
        ttl = KNOWN_TTL_SECONDS if found is not None else UNKNOWN_TTL_SECONDS
        with self._lock:
            self._answers.pop(ward_id, None)
            self._answers[ward_id] = (self.clock() + ttl, found)
            while len(self._answers) > MAX_REMEMBERED:
                self._answers.popitem(last=False)
