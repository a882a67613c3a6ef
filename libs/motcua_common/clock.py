"""What time it is, and which day it is at the ward: one clock, injected everywhere (a
service's deps carry it), so tests can fix the day and no rule reads the system time."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

VIETNAM = "Asia/Ho_Chi_Minh"


class SystemClock:
    def __init__(self, tz_name: str = VIETNAM):
        self.tz = ZoneInfo(tz_name)

    def now(self) -> datetime:
        """Now, in UTC (what is stored and sent)."""
        return datetime.now(timezone.utc)

    def today(self) -> date:
        """The local date in Vietnam: a dossier handed in at 06:30 ICT is received that
        day, although it is still the day before in UTC."""
        return self.now().astimezone(self.tz).date()

    def local(self, moment: datetime | None = None) -> datetime:
        """A moment (now by default) on the ward's wall clock."""
        return (moment or self.now()).astimezone(self.tz)


class FixedClock(SystemClock):
    """A clock that stays where it is put (tests, replays); `advance` moves it on."""

    def __init__(self, at: datetime, tz_name: str = VIETNAM):
        super().__init__(tz_name)
        self.at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta) -> None:
        from datetime import timedelta

        self.at = self.at + timedelta(**delta)
