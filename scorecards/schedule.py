"""When the weekly scorecard email goes out: each tenant's send moment (SCORECARD_WEEKDAY at
SCORECARD_LOCAL_HOUR in its time zone), whether a week is due, prepared, or waiting for its send day's
nightly run, and why an early manual send is refused."""

from __future__ import annotations

import datetime
import zoneinfo

from django.conf import settings
from django.utils import timezone

from cs_platform.tenancy import context
from metrics.models import NightlyRun, RunStatus
from scorecards.models import ScorecardDelivery
from scorecards.weeks import IsoWeek


def scorecard_send_day(week: IsoWeek) -> datetime.date:
    """The day the week's email goes out (SCORECARD_WEEKDAY of the week)."""
    return week.monday + datetime.timedelta(days=settings.SCORECARD_WEEKDAY - 1)


def _send_moment(week: IsoWeek, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """SCORECARD_LOCAL_HOUR on the week's send day, as a wall-clock time in the tenant's zone. Compared
    with a time in the same zone, Python compares wall clocks, so daylight saving moves nothing: 07:00
    stays 07:00 local in summer and winter."""
    return datetime.datetime.combine(
        scorecard_send_day(week), datetime.time(settings.SCORECARD_LOCAL_HOUR), tzinfo=zone
    )


def scorecard_week_due(tenant, now: datetime.datetime | None = None) -> IsoWeek | None:
    """The ISO week whose email is due for `tenant` now: its current week (in its time zone) once the
    local time is at or after SCORECARD_WEEKDAY SCORECARD_LOCAL_HOUR; None earlier in the week."""
    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    local_now = (now or timezone.now()).astimezone(zone)
    week = IsoWeek.of(local_now.date())
    return week if local_now >= _send_moment(week, zone) else None


# How long past the send hour the email waits for that morning's nightly run before it goes out with
# the latest figures there are (and says so).
NIGHTLY_WAIT = datetime.timedelta(hours=5)


def scorecard_waits_for_nightly(
    tenant, week: IsoWeek, *, nightly_done: bool, now: datetime.datetime | None = None
) -> bool:
    """True while the week's email should not go out yet: the send day's nightly run (health,
    compliance, segment figures) has not finished and the wait is not over. Sending before it would
    show the previous day's figures under this week's date."""
    if nightly_done:
        return False
    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    return (now or timezone.now()).astimezone(zone) < _send_moment(week, zone) + NIGHTLY_WAIT


def scorecard_week_state(week: IsoWeek) -> tuple[bool, bool]:
    """(prepared, nightly_done) of the current tenant's `week`: whether its delivery rows exist, and
    whether the nightly run of its send day has finished. Two indexed queries."""
    prepared = ScorecardDelivery.objects.filter(week=str(week)).exists()
    nightly_done = NightlyRun.objects.filter(status=RunStatus.DONE, run_date=scorecard_send_day(week)).exists()
    return prepared, nightly_done


def scorecard_send_refusal(tenant, week: IsoWeek, *, now: datetime.datetime | None = None) -> str | None:
    """Why sending `week`'s real emails now would be wrong, or None when it is fine (one query at most).

    Delivery rows are one per user and week, so an early send is not a harmless extra: the scheduled
    send would find the rows sent and the week's proper email would never go. Refused: a week whose
    send moment (SCORECARD_WEEKDAY SCORECARD_LOCAL_HOUR, tenant time) has not come, and the current
    week while its send day's nightly run has not finished (the figures would be the day before's). A
    past week may always be sent: its figures are capped at its send day whenever they are read."""
    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    local_now = (now or timezone.now()).astimezone(zone)
    send_day = scorecard_send_day(week)
    due = _send_moment(week, zone)
    if local_now < due:
        return (
            f"The emails of {week} are due {due:%A %Y-%m-%d %H:%M} {tenant.time_zone}; it is "
            f"{local_now:%Y-%m-%d %H:%M} there. Sending them early would use older figures and leave the "
            "scheduled send nothing to do."
        )
    if week == IsoWeek.of(local_now.date()):
        with context.tenant_context(tenant):
            done = NightlyRun.objects.filter(run_date=send_day, status=RunStatus.DONE).exists()
        if not done:
            return (
                f"The nightly run of {send_day:%Y-%m-%d} (the send day of {week}) has not finished, so the "
                f"figures would be the day before's. Run `manage.py recompute --tenant {tenant.slug} "
                f"--date {send_day:%Y-%m-%d}` first."
            )
    return None


def next_scorecard_send(tenant, *, now: datetime.datetime | None = None) -> datetime.datetime:
    """When the next weekly email goes out for `tenant`: the next SCORECARD_WEEKDAY at
    SCORECARD_LOCAL_HOUR in the tenant's time zone, strictly after `now` (aware, in that zone)."""
    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    local_now = (now or timezone.now()).astimezone(zone)
    day = local_now.date() + datetime.timedelta(days=(settings.SCORECARD_WEEKDAY - local_now.isoweekday()) % 7)
    while True:
        # Built from the wall-clock date and hour (not by adding hours), so a daylight-saving change
        # in between still gives 07:00 local time.
        moment = datetime.datetime.combine(day, datetime.time(settings.SCORECARD_LOCAL_HOUR), tzinfo=zone)
        if moment > local_now:
            return moment
        day += datetime.timedelta(days=7)
