"""Writes of KPI measurements, survey responses and incidents. Each records an audit event; bulk
ingest records one event with a digest of what was stored, and is all-or-nothing."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.tenancy import context
from metrics.models import SURVEY_SCALES, HealthSnapshot, Incident, KpiMeasurement, SurveyResponse, SurveyType
from segments.models import KpiDefinition


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({field: f"{value!r} is not a number."}) from None
    if not number.is_finite():
        raise ValidationError({field: f"{value!r} is not a finite number."})
    return number


def _check_kpi(account: Account, kpi: KpiDefinition) -> None:
    if kpi.segment_id != account.segment_id:
        raise ValidationError({"kpi": f"KPI “{kpi.name}” belongs to another segment than {account.name}'s."})


@transaction.atomic
def kpi_measurement_record(
    *, tenant, account: Account, kpi: KpiDefinition, measured_on: datetime.date, value: Any, source: str = "manual",
    actor=None,
) -> KpiMeasurement:  # fmt: skip
    """Record (or correct) one account's KPI value for a day; a second value for the same day
    replaces the first and the audit event keeps both."""
    with context.tenant_context(tenant):
        _check_kpi(account, kpi)
        number = _decimal(value, "value")
        existing = KpiMeasurement.objects.filter(account=account, kpi=kpi, measured_on=measured_on).first()
        before = model_snapshot(existing) if existing else None
        measurement = existing or KpiMeasurement(tenant=tenant, account=account, kpi=kpi, measured_on=measured_on)
        measurement.value = number
        measurement.source = source
        measurement.full_clean(exclude=["tenant", "account", "kpi"], validate_unique=False)
        measurement.save()
        audit_record(
            tenant=tenant, actor=actor, action="kpi_measurement.update" if existing else "kpi_measurement.create",
            obj=measurement, before=before, after=model_snapshot(measurement),
        )  # fmt: skip
    return measurement


@transaction.atomic
def kpi_measurements_bulk_record(
    *, tenant, rows: Iterable[dict[str, Any]], source: str = "api", actor=None
) -> dict[str, int]:
    """All-or-nothing ingest of many measurements: every row is validated first; any bad row raises
    a ValidationError listing each bad row by index and field, and nothing is written.

    rows: {"account": Account, "kpi": KpiDefinition or a KPI code of the account's segment,
    "measured_on": date, "value": number}. Existing (account, kpi, day) values are replaced.
    Set-based: a constant number of queries."""
    rows = list(rows)
    errors: dict[str, list[str]] = {}
    clean: dict[tuple[int, int, datetime.date], Decimal] = {}
    by_code: dict[tuple[int, str], KpiDefinition] = {}
    if any(isinstance(row.get("kpi"), str) for row in rows):
        with context.tenant_context(tenant):
            by_code = {(k.segment_id, k.code): k for k in KpiDefinition.objects.all()}
    for index, row in enumerate(rows):
        try:
            if isinstance(row.get("kpi"), str):
                code = row["kpi"]
                row = {**row, "kpi": by_code.get((row["account"].segment_id, code))}
                if row["kpi"] is None:
                    known = sorted(c for (segment, c) in by_code if segment == row["account"].segment_id)
                    raise ValidationError(
                        {"kpi": f"Unknown KPI {code!r} for this account's segment; known: {', '.join(known)}."}
                    )
            _check_kpi(row["account"], row["kpi"])
            if not isinstance(row.get("measured_on"), datetime.date):
                raise ValidationError({"measured_on": "A date is required."})
            clean[(row["account"].pk, row["kpi"].pk, row["measured_on"])] = _decimal(row.get("value"), "value")
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors[f"rows[{index}].{field}"] = messages
    if errors:
        raise ValidationError(errors)
    with context.tenant_context(tenant):
        objects = [
            KpiMeasurement(tenant=tenant, account_id=a, kpi_id=k, measured_on=d, value=v, source=source)
            for (a, k, d), v in clean.items()
        ]
        KpiMeasurement.objects.bulk_create(
            objects,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["tenant", "account", "kpi", "measured_on"],
            update_fields=["value", "source"],
        )
        digest = hashlib.sha256(
            "\n".join(f"{a}|{k}|{d.isoformat()}|{v}" for (a, k, d), v in sorted(clean.items())).encode()
        ).hexdigest()
        audit_record(
            tenant=tenant, actor=actor, action="kpi_measurement.bulk_record", object_type="metrics.kpimeasurement",
            after={"rows": len(objects), "source": source, "sha256": digest},
        )  # fmt: skip
    return {"stored": len(objects)}


@transaction.atomic
def survey_response_record(
    *, tenant, account: Account, survey_type: str, score: int, responded_on: datetime.date, comment: str = "",
    contact=None, actor=None,
) -> SurveyResponse:  # fmt: skip
    if survey_type not in SurveyType.values:
        raise ValidationError({"survey_type": f"Unknown survey type {survey_type!r}; use nps, csat or ces."})
    low, high = SURVEY_SCALES[survey_type]
    if not isinstance(score, int) or not low <= score <= high:
        raise ValidationError({"score": f"A {survey_type.upper()} score must be a whole number from {low} to {high}."})
    if not isinstance(responded_on, datetime.date) or isinstance(responded_on, datetime.datetime):
        raise ValidationError({"responded_on": "A date is required."})
    from metrics.nightly import local_today  # nightly imports this module

    # "Today" is the tenant's: a Tokyo team recording this morning's response must not be refused
    # because it is still yesterday in UTC.
    if responded_on > local_today(tenant):
        raise ValidationError({"responded_on": "A survey response cannot be dated in the future."})
    with context.tenant_context(tenant):
        if contact is not None and contact.account_id != account.pk:
            raise ValidationError({"contact": "The contact belongs to another account."})
        response = SurveyResponse.objects.create(
            tenant=tenant, account=account, contact=contact, survey_type=survey_type, score=score,
            responded_on=responded_on, comment=comment,
        )  # fmt: skip
        audit_record(tenant=tenant, actor=actor, action="survey_response.create", obj=response,
                     after=model_snapshot(response))  # fmt: skip
    return response


@transaction.atomic
def incident_open(
    *, tenant, account: Account, title: str, severity: str, opened_at: datetime.datetime | None = None,
    escalated: bool = False, external_ref: str = "", actor=None,
) -> Incident:  # fmt: skip
    with context.tenant_context(tenant):
        incident = Incident(
            tenant=tenant, account=account, title=title, severity=severity, opened_at=opened_at or timezone.now(),
            escalated=escalated, external_ref=external_ref,
        )  # fmt: skip
        incident.full_clean(exclude=["tenant", "account"])
        incident.save()
        audit_record(tenant=tenant, actor=actor, action="incident.open", obj=incident, after=model_snapshot(incident))
    return incident


@transaction.atomic
def incident_resolve(
    *, tenant, incident: Incident, resolved_at: datetime.datetime | None = None, actor=None
) -> Incident:
    with context.tenant_context(tenant):
        resolved_at = resolved_at or timezone.now()
        if incident.resolved_at is not None:
            raise ValidationError({"resolved_at": "The incident is already resolved."})
        if resolved_at < incident.opened_at:
            raise ValidationError({"resolved_at": "An incident cannot be resolved before it was opened."})
        before = model_snapshot(incident)
        incident.resolved_at = resolved_at
        incident.save(update_fields=["resolved_at"])
        audit_record(
            tenant=tenant, actor=actor, action="incident.resolve", obj=incident, before=before,
            after=model_snapshot(incident),
        )  # fmt: skip
    return incident


# --- Nightly health -----------------------------------------------------------------------------------
SURVEY_WINDOW_DAYS = 180
INCIDENT_WINDOW_DAYS = 90
KPI_WINDOW_DAYS = 120  # the latest value of each KPI within this window counts
DECISION_WINDOW_DAYS = 90


def _health_digest(rows: list[tuple[int, Decimal, str]]) -> str:
    """SHA-256 over "account|total|band" lines in account order; the SQL engine computes the same."""
    return hashlib.sha256("\n".join(f"{a}|{t}|{b}" for a, t, b in sorted(rows)).encode()).hexdigest()


def _health_python(*, tenant, day: datetime.date, account_ids: list[int] | None) -> tuple[int, dict[str, int], str]:
    """The reference engine: inputs gathered in a fixed number of grouped queries
    (metrics.selectors.health_inputs), scored in memory by metrics.scoring, upserted 2,000 rows a time."""
    from metrics.scoring import score_account
    from metrics.selectors import health_inputs
    from segments.services import scorecards_for_scoring

    configs = scorecards_for_scoring(tenant=tenant)
    inputs, previous = health_inputs(day=day, account_ids=account_ids)
    snapshots: list[HealthSnapshot] = []
    bands: dict[str, int] = {}
    now = timezone.now()
    for account_id, (segment_id, account_inputs) in inputs.items():
        config = configs[segment_id]
        result = score_account(account_inputs, config.measures, green_at=config.green_at, red_below=config.red_below)
        before_7, before_30 = previous.get(account_id, (None, None))
        snapshots.append(
            HealthSnapshot(
                tenant=tenant, account_id=account_id, snapshot_date=day, total=result.total, band=result.band,
                components=result.components,
                change_7d=None if before_7 is None else result.total - before_7,
                change_30d=None if before_30 is None else result.total - before_30,
                computed_at=now,
            )
        )  # fmt: skip
        bands[result.band] = bands.get(result.band, 0) + 1
    HealthSnapshot.objects.bulk_create(
        snapshots, batch_size=2000, update_conflicts=True, unique_fields=["tenant", "account", "snapshot_date"],
        update_fields=["total", "band", "components", "change_7d", "change_30d", "computed_at"],
    )  # fmt: skip
    return len(snapshots), bands, _health_digest([(s.account_id, s.total, s.band) for s in snapshots])


def _refuse_unknown_measures() -> None:
    """A scorecard measure the engine cannot compute (written around scorecard_update's validation)
    fails the run loudly, as the Python engine does, rather than being silently left out (one query)."""
    from metrics.scoring import MEASURES
    from segments.models import ScorecardMeasure

    unknown = list(
        ScorecardMeasure.objects.exclude(measure__in=list(MEASURES)).values_list("scorecard__segment__code", "measure")
    )
    if unknown:
        listed = ", ".join(f"{measure!r} (segment {segment})" for segment, measure in unknown)
        raise ValueError(f"Scorecard measures the engine does not know: {listed}")


def health_snapshots_compute(
    *, tenant, day: datetime.date, account_ids: list[int] | None = None, actor=None, engine: str | None = None
) -> dict[str, Any]:
    """Score every account (or the given chunk) for `day` and upsert one snapshot per (account, day);
    re-running for the same day rewrites the same values, never a second row.

    engine: "sql" (PostgreSQL: metrics.scoring_sql, one statement) or "python" (metrics.scoring, the
    reference, and the only one on SQLite). Default: "sql" wherever it can run. Both write identical
    snapshots and record the same audit event, digest included."""
    from django.db import connection

    from metrics.scoring_sql import health_snapshots_upsert
    from segments.services import scorecard_defaults_ensure

    engine = engine or ("sql" if connection.vendor == "postgresql" else "python")
    if engine not in ("sql", "python"):
        raise ValueError(f"engine must be 'sql' or 'python', not {engine!r}")
    with transaction.atomic(), context.tenant_context(tenant):
        if engine == "sql":
            scorecard_defaults_ensure(tenant=tenant)
            _refuse_unknown_measures()
            if account_ids is not None and not account_ids:
                accounts, bands, digest = 0, {}, _health_digest([])
            else:
                accounts, bands, digest = health_snapshots_upsert(tenant_id=tenant.pk, day=day, account_ids=account_ids)
        else:
            accounts, bands, digest = _health_python(tenant=tenant, day=day, account_ids=account_ids)
        audit_record(
            tenant=tenant, actor=actor, action="health.recompute", object_type="metrics.healthsnapshot",
            after={"date": day.isoformat(), "accounts": accounts, "bands": bands, "sha256": digest,
                   "chunk": [min(account_ids), max(account_ids)] if account_ids else None},
        )  # fmt: skip
    return {"accounts": accounts, "bands": bands}
