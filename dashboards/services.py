"""Writes of the dashboards app: the nightly per-segment snapshots. Recorded in the audit trail."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from cs_platform.audit.services import audit_record
from cs_platform.tenancy import context
from dashboards.models import SegmentSnapshot
from dashboards.selectors import segment_summaries, summary_to_figures


def segment_snapshots_compute(*, tenant, day: datetime.date, actor=None) -> dict[str, Any]:
    """Aggregate every account of the tenant per segment as of `day` (after that day's health run) and
    upsert one SegmentSnapshot per segment and day; re-running rewrites the same rows."""
    with transaction.atomic(), context.tenant_context(tenant):
        summaries = segment_summaries(Account.objects.all(), as_of=day, today=day)
        now = timezone.now()
        SegmentSnapshot.objects.bulk_create(
            [
                SegmentSnapshot(
                    tenant=tenant,
                    segment_id=s.segment_id,
                    snapshot_date=day,
                    figures=summary_to_figures(s),
                    computed_at=now,
                )
                for s in summaries
            ],
            update_conflicts=True,
            unique_fields=["tenant", "segment", "snapshot_date"],
            update_fields=["figures", "computed_at"],
        )
        counts = {s.code: s.accounts for s in summaries}
        audit_record(
            tenant=tenant,
            actor=actor,
            action="segment_snapshots.compute",
            object_type="dashboards.segmentsnapshot",
            after={"date": day.isoformat(), "accounts": counts},
        )
    return {"segments": len(summaries), "accounts": sum(counts.values())}
