"""Reference data remembered in the API process: wards, services and counters change a few
times a year, tickets hundreds of times an hour, and every kiosk request reads them. Kept
apart from the store so the store stays plain database access; the use cases decide what
is remembered (counters.py, tickets.py) and forget it when they change it."""
from __future__ import annotations

import time
from typing import Callable, Hashable

# Each API process remembers reference data this long (an edit made through another
# process shows within it; through this one, at once): a ward admin's new service, counter
# or opening hours reach every kiosk within 10 s. Three cached reads per kiosk request
# (ward, service, counters serving it) cost one database read each per 10 s per process.
REFERENCE_TTL_SECONDS = 10.0


class ReferenceCache:
    def __init__(self, ttl_seconds: float = REFERENCE_TTL_SECONDS):
        self.ttl_seconds = ttl_seconds
        self._entries: dict[Hashable, tuple[float, object]] = {}

    def remembered(self, key: Hashable, load: Callable[[], object]):
        """`load()`'s value, from memory for ttl_seconds. Absence is never remembered: a
        ward or service added a moment ago is found at once."""
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if value is not None and value is not False:
            self._entries[key] = (now + self.ttl_seconds, value)
        return value

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
