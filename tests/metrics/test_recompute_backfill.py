"""recompute --backfill-weeks: a new installation gets the weekly history the dashboards' trends read."""

import datetime
import io

import pytest
from django.core.management import CommandError, call_command

from cs_platform.tenancy import context
from metrics.models import HealthSnapshot
from tests import factories

pytestmark = pytest.mark.django_db


def test_backfill_runs_the_weekly_dates_and_the_30_day_mark_oldest_first(tenant_a):
    factories.AccountFactory(tenant=tenant_a.tenant, name="Backfilled Bank")
    out = io.StringIO()
    call_command("recompute", "--tenant", "alpha", "--date", "2026-11-20", "--backfill-weeks", "2", stdout=out)
    ran = [line.split()[1].rstrip(":") for line in out.getvalue().splitlines()]
    assert ran == ["2026-10-21", "2026-11-06", "2026-11-13", "2026-11-20"]
    with context.tenant_context(tenant_a.tenant):
        days = sorted(HealthSnapshot.objects.values_list("snapshot_date", flat=True))
        latest = HealthSnapshot.objects.get(snapshot_date=datetime.date(2026, 11, 20))
    assert [d.isoformat() for d in days] == ran
    # The last run found the snapshots 7 and 30 days back, so its changes are real numbers.
    assert latest.change_7d is not None and latest.change_30d is not None


def test_backfill_weeks_out_of_range_is_refused(tenant_a):
    with pytest.raises(CommandError, match="--backfill-weeks must be between 0 and 104"):
        call_command("recompute", "--tenant", "alpha", "--backfill-weeks", "500")
