"""The compliance-status rule, as a pure function (the service applies it set-based)."""

from __future__ import annotations

import datetime

from compliance.models import STATUS_SEVERITY

EXPIRING_WITHIN_DAYS = 30


def obligation_status(
    *,
    day: datetime.date,
    due_date: datetime.date,
    last_audit_outcome: str | None,
    last_audit_open_findings: int | None,
    valid_until: datetime.date | None,
    ever_evidenced: bool,
) -> str:
    """failed: the latest audit failed and left open findings;
    compliant / expiring: evidence valid today (expiring when it lapses within 30 days);
    overdue: no valid evidence and the due date has passed, or earlier evidence has lapsed;
    not_started: no evidence yet and the due date is still ahead."""
    if last_audit_outcome == "failed" and (last_audit_open_findings or 0) > 0:
        return "failed"
    if valid_until is not None and valid_until >= day:
        return "expiring" if valid_until <= day + datetime.timedelta(days=EXPIRING_WITHIN_DAYS) else "compliant"
    if ever_evidenced or due_date < day:
        return "overdue"
    return "not_started"


def worst(statuses) -> str | None:
    present = set(statuses)
    return next((status for status in STATUS_SEVERITY if status in present), None)
