"""The nightly health computation: score every account of a tenant for a day and upsert one snapshot
per (account, day), with one audit event carrying a digest of what was written. Two engines write the
same rows: PostgreSQL's one statement (metrics.scoring_sql) and the in-memory reference
(segments.health_model). When and for which tenants this runs is the nightly pipeline's business."""

from __future__ import annotations

import datetime
import hashlib
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from cs_platform.audit.services import audit_record
from cs_platform.tenancy import context
from metrics.models import HealthSnapshot
from metrics.scoring_sql import health_snapshots_upsert
from metrics.selectors import health_inputs
from segments.health_model import MEASURES, score_account
from segments.models import ScorecardMeasure
from segments.services import scorecard_defaults_ensure, scorecards_for_scoring


def _health_digest(rows: list[tuple[int, Decimal, str]]) -> str:
    """SHA-256 over "account|total|band" lines in account order; the SQL engine computes the same."""
    return hashlib.sha256("\n".join(f"{a}|{t}|{b}" for a, t, b in sorted(rows)).encode()).hexdigest()


def _health_python(*, tenant, day: datetime.date, account_ids: list[int] | None) -> tuple[int, dict[str, int], str]:
    """The reference engine: inputs gathered in a fixed number of grouped queries
    (metrics.selectors.health_inputs), scored in memory by segments.health_model, upserted 2,000 rows a time."""
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
                tenant=tenant,
                account_id=account_id,
                snapshot_date=day,
                total=result.total,
                band=result.band,
                components=result.components,
                change_7d=None if before_7 is None else result.total - before_7,
                change_30d=None if before_30 is None else result.total - before_30,
                computed_at=now,
            )
        )
        bands[result.band] = bands.get(result.band, 0) + 1
    HealthSnapshot.objects.bulk_create(
        snapshots,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["tenant", "account", "snapshot_date"],
        update_fields=["total", "band", "components", "change_7d", "change_30d", "computed_at"],
    )
    return len(snapshots), bands, _health_digest([(s.account_id, s.total, s.band) for s in snapshots])


def _refuse_unknown_measures() -> None:
    """A scorecard measure the engine cannot compute (written around scorecard_update's validation)
    fails the run loudly, as the Python engine does, rather than being silently left out (one query)."""
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

    engine: "sql" (PostgreSQL: metrics.scoring_sql, one statement) or "python" (segments.health_model, the
    reference, and the only one on SQLite). Default: "sql" wherever it can run. Both write identical
    snapshots and record the same audit event, digest included."""
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
            tenant=tenant,
            actor=actor,
            action="health.recompute",
            object_type="metrics.healthsnapshot",
            after={
                "date": day.isoformat(),
                "accounts": accounts,
                "bands": bands,
                "sha256": digest,
                "chunk": [min(account_ids), max(account_ids)] if account_ids else None,
            },
        )
    return {"accounts": accounts, "bands": bands}
