"""Writes of one KPI measurement, survey response or incident at a time, each recording an audit event.
Many rows at once: metrics.bulk; the nightly health scores: metrics.health."""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from cs_platform import bounds
from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.tenancy import context
from cs_platform.tenancy.clock import tenant_today
from metrics import rules
from metrics.models import Incident, KpiMeasurement, SurveyResponse, SurveyType
from segments.models import KpiDefinition


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({field: f"{value!r} is not a number."}) from None
    if not number.is_finite():
        raise ValidationError({field: f"{value!r} is not a finite number."})
    return number


def _require_day(day: Any, field: str) -> None:
    if not isinstance(day, datetime.date) or isinstance(day, datetime.datetime):
        raise ValidationError({field: "A date is required."})
    bounds.check(**{field: day})


@transaction.atomic
def kpi_measurement_record(
    *,
    tenant,
    account: Account,
    kpi: KpiDefinition,
    measured_on: datetime.date,
    value: Any,
    source: str = "manual",
    actor=None,
) -> KpiMeasurement:
    """Record (or correct) one account's KPI value for a day; a second value for the same day
    replaces the first and the audit event keeps both. Concurrent writers of the same day queue on
    the row (SELECT ... FOR UPDATE), so "before" is always the value this call replaced.
    The KPI must be one of the account's segment; the day may not be after the tenant's today."""
    if refusal := rules.kpi_of_account_segment(kpi_segment_id=kpi.segment_id, account_segment_id=account.segment_id):
        raise refusal.error("kpi")
    _require_day(measured_on, "measured_on")
    if refusal := rules.measured_on_not_future(measured_on, today=tenant_today(tenant)):
        raise refusal.error("measured_on")
    with context.tenant_context(tenant):
        number = _decimal(value, "value")
        same_day = KpiMeasurement.objects.filter(account=account, kpi=kpi, measured_on=measured_on)
        existing = same_day.select_for_update().first()
        if existing is None:
            measurement = KpiMeasurement(
                tenant=tenant, account=account, kpi=kpi, measured_on=measured_on, value=number, source=source
            )
            measurement.full_clean(exclude=["tenant", "account", "kpi"], validate_unique=False)
            try:
                with transaction.atomic():  # a savepoint: a unique violation leaves the transaction usable
                    measurement.save(force_insert=True)
            except IntegrityError:
                # Another request inserted this day after our read and committed (PostgreSQL made our
                # INSERT wait for it): lock its row and replace it below, auditing its value as "before".
                existing = same_day.select_for_update().first()
                if existing is None:
                    raise
            else:
                audit_record(
                    tenant=tenant,
                    actor=actor,
                    action="kpi_measurement.create",
                    obj=measurement,
                    after=model_snapshot(measurement),
                )
                return measurement
        # Locked until we commit: nobody can change the row between this snapshot and our write.
        before = model_snapshot(existing)
        existing.value, existing.source = number, source
        existing.full_clean(exclude=["tenant", "account", "kpi"], validate_unique=False)
        existing.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="kpi_measurement.update",
            obj=existing,
            before=before,
            after=model_snapshot(existing),
        )
        measurement = existing
    return measurement


@transaction.atomic
def survey_response_record(
    *,
    tenant,
    account: Account,
    survey_type: str,
    score: int,
    responded_on: datetime.date,
    comment: str = "",
    contact=None,
    actor=None,
) -> SurveyResponse:
    if survey_type not in SurveyType.values:
        raise ValidationError({"survey_type": f"Unknown survey type {survey_type!r}; use nps, csat or ces."})
    if isinstance(score, bool) or not isinstance(score, int):
        raise ValidationError({"score": "A whole number is required."})
    if refusal := rules.survey_score_in_scale(survey_type, score):
        raise refusal.error("score")
    _require_day(responded_on, "responded_on")
    bounds.check_text(comment=comment)
    if refusal := rules.responded_on_not_future(responded_on, today=tenant_today(tenant)):
        raise refusal.error("responded_on")
    with context.tenant_context(tenant):
        if contact is not None and contact.account_id != account.pk:
            raise ValidationError({"contact": "The contact belongs to another account."})
        response = SurveyResponse.objects.create(
            tenant=tenant,
            account=account,
            contact=contact,
            survey_type=survey_type,
            score=score,
            responded_on=responded_on,
            comment=comment,
        )
        audit_record(
            tenant=tenant, actor=actor, action="survey_response.create", obj=response, after=model_snapshot(response)
        )
    return response


@transaction.atomic
def incident_open(
    *,
    tenant,
    account: Account,
    title: str,
    severity: str,
    opened_at: datetime.datetime | None = None,
    escalated: bool = False,
    external_ref: str = "",
    actor=None,
) -> Incident:
    """Open an incident on `account`, at `opened_at` (not in the future) or now."""
    now = timezone.now()
    if opened_at is not None:
        bounds.check(opened_at=opened_at)
        if refusal := rules.moment_not_future(opened_at, now=now):
            raise refusal.error("opened_at")
    with context.tenant_context(tenant):
        incident = Incident(
            tenant=tenant,
            account=account,
            title=title,
            severity=severity,
            opened_at=opened_at or now,
            escalated=escalated,
            external_ref=external_ref,
        )
        incident.full_clean(exclude=["tenant", "account"])
        incident.save()
        audit_record(tenant=tenant, actor=actor, action="incident.open", obj=incident, after=model_snapshot(incident))
    return incident


@transaction.atomic
def incident_resolve(
    *, tenant, incident: Incident, resolved_at: datetime.datetime | None = None, actor=None
) -> Incident:
    with context.tenant_context(tenant):
        # The caller's copy may be stale: lock the row and read it again, so two resolves racing each
        # other give one resolution (the other is refused) and "before" is what was really replaced.
        incident.refresh_from_db(from_queryset=Incident.objects.select_for_update())
        now = timezone.now()
        resolved_at = resolved_at or now
        bounds.check(resolved_at=resolved_at)
        if incident.resolved_at is not None:
            raise ValidationError({"resolved_at": "The incident is already resolved."})
        refusal = rules.resolved_after_opened(opened_at=incident.opened_at, resolved_at=resolved_at)
        if refusal or (refusal := rules.moment_not_future(resolved_at, now=now)):
            raise refusal.error("resolved_at")
        before = model_snapshot(incident)
        incident.resolved_at = resolved_at
        incident.save(update_fields=["resolved_at"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="incident.resolve",
            obj=incident,
            before=before,
            after=model_snapshot(incident),
        )
    return incident
