"""Vietnamese mobile numbers, one rule for every service (identity registers them, notify
texts them)."""
from __future__ import annotations

import re


def normalise_phone(value: object) -> str | None:
    """A Vietnamese mobile number in any common form -> E.164 (+84xxxxxxxxx), or None.

    Accepts 0901234567, 090 123 4567, 090.123.4567, 84901234567, +84 90 123 4567. Only
    mobile networks (3x, 5x, 7x, 8x, 9x) receive SMS; landlines (02x) are refused."""
    if not isinstance(value, str):
        return None
    digits = re.sub(r"[\s.\-()]", "", value.strip())
    if digits.startswith("+84"):
        national = digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        return None
    if not re.fullmatch(r"[35789]\d{8}", national):
        return None
    return f"+84{national}"
