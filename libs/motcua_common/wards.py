"""A ward's id, one rule for every service: lower-case ASCII letters, digits and '-',
2–63 characters, starting with a letter or digit (e.g. `dn-hai-chau`).

It travels in URLs, routing (the edge's queue `motcua.downlink.<ward>`, a broker header),
metric labels and file names (a ward's signing certificate), so it must be the same
plain string everywhere: identity creates wards by this rule and every other service
checks ids against it."""
from __future__ import annotations

import re

WARD_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def is_ward_id(value) -> bool:
    return isinstance(value, str) and bool(WARD_ID.match(value))
