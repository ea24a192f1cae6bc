"""The rules a KPI measurement, survey response or incident must meet, stated once: the one-row services
(metrics.services) raise them as a ValidationError on the field, the bulk validator (metrics.bulk) lists
them per row, with the same code and message. Serializers and forms only parse; they apply none of these.

Each check returns None when the value is acceptable, else the Refusal; none touches the database."""

from __future__ import annotations

import datetime
from typing import NamedTuple

from django.core.exceptions import ValidationError

from metrics.models import SURVEY_SCALES

# A client clock a little ahead of ours is not "the future" (for moments; days are the tenant's days).
CLOCK_SKEW = datetime.timedelta(minutes=5)


class Refusal(NamedTuple):
    code: str
    message: str

    def error(self, field: str) -> ValidationError:
        """The refusal as a service raises it: on `field`, with its code (the API answers that code)."""
        return ValidationError({field: ValidationError(self.message, code=self.code)})


def kpi_of_account_segment(*, kpi_segment_id: int, account_segment_id: int) -> Refusal | None:
    if kpi_segment_id != account_segment_id:
        return Refusal("wrong_segment", "This KPI belongs to another segment than the account's.")
    return None


def measured_on_not_future(day: datetime.date, *, today: datetime.date) -> Refusal | None:
    # "Today" is the tenant's: a Tokyo team recording this morning's value must not be refused because it
    # is still yesterday in UTC.
    if day > today:
        return Refusal("future", "A measurement cannot be dated in the future.")
    return None


def responded_on_not_future(day: datetime.date, *, today: datetime.date) -> Refusal | None:
    if day > today:
        return Refusal("future", "A survey response cannot be dated in the future.")
    return None


def survey_score_in_scale(survey_type: str, score: int) -> Refusal | None:
    low, high = SURVEY_SCALES[survey_type]
    if not low <= score <= high:
        return Refusal("out_of_range", f"A {survey_type.upper()} score must be a whole number from {low} to {high}.")
    return None


def moment_not_future(moment: datetime.datetime, *, now: datetime.datetime) -> Refusal | None:
    """Incidents are records of what happened: opened and resolved at or before now (give or take a clock)."""
    if moment > now + CLOCK_SKEW:
        return Refusal("future", "A time in the future is not allowed.")
    return None


def resolved_after_opened(*, opened_at: datetime.datetime, resolved_at: datetime.datetime) -> Refusal | None:
    if resolved_at < opened_at:
        return Refusal("before_opened", "An incident cannot be resolved before it was opened.")
    return None
