"""What time it is, and which day it is at the ward. Injected, so tests can fix the day."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo


class SystemClock:
    def __init__(self, tz_name: str = "Asia/Ho_Chi_Minh"):
        self.tz = ZoneInfo(tz_name)

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def today(self) -> date:
        """The local date in Vietnam: a dossier handed in at 06:30 ICT is received that
        day, although it is still the day before in UTC."""
        return self.now().astimezone(self.tz).date()
