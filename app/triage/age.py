"""Ages and dates as the service counts them: in England, on the Europe/London calendar."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

# Eligibility is decided on the day the referral was received *in England*: a referral received at
# 23:30 UTC on 30 June in summer time arrives on 1 July, and a 1 July birthday counts.
SERVICE_TIME_ZONE = ZoneInfo("Europe/London")


def age_on(date_of_birth: date, on: date) -> int:
    """Age in whole years on the date ``on``.

    Someone born on 29 February turns a year older on 1 March in non-leap years (they have not yet
    reached "29 February" on the 28th). Raises ValueError when ``date_of_birth`` is after ``on``.
    """
    if date_of_birth > on:
        raise ValueError("date_of_birth is after the date the age is wanted on")
    # Comparing (month, day) pairs handles 29 February without special cases: (2, 28) < (2, 29),
    # so the birthday has not passed on the 28th, and (3, 1) > (2, 29), so it has on 1 March.
    birthday_not_yet_reached = (on.month, on.day) < (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - birthday_not_yet_reached


def local_date(dt: datetime) -> date:
    """The Europe/London calendar date of an aware datetime; ValueError if ``dt`` is naive."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return dt.astimezone(SERVICE_TIME_ZONE).date()
