"""ISO weeks ("2026-W48"): the unit the scorecard is sent for, one per user."""

from __future__ import annotations

import dataclasses
import datetime
import re

from cs_platform import bounds

_PATTERN = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclasses.dataclass(frozen=True)
class IsoWeek:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        match = _PATTERN.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not an ISO week such as 2026-W48")
        year, number = int(match[1]), int(match[2])
        # Weeks next to year 1 or 9999 have no previous or next week to link to, nor a day to count from.
        if not bounds.MIN_DATE.year <= year <= bounds.MAX_DATE.year:
            raise ValueError(f"{text!r}: choose a year from {bounds.MIN_DATE.year} to {bounds.MAX_DATE.year}")
        try:
            datetime.date.fromisocalendar(year, number, 1)
        except ValueError:
            raise ValueError(f"{text!r}: {year} has no week {number}") from None
        return cls(year, number)

    @classmethod
    def of(cls, day: datetime.date) -> IsoWeek:
        year, number, _ = day.isocalendar()
        return cls(year, number)

    @property
    def monday(self) -> datetime.date:
        return datetime.date.fromisocalendar(self.year, self.number, 1)

    @property
    def sunday(self) -> datetime.date:
        return self.monday + datetime.timedelta(days=6)

    def previous(self) -> IsoWeek:
        return IsoWeek.of(self.monday - datetime.timedelta(days=7))

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"
