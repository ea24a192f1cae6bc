"""Two writers of the same (account, KPI, day) keys at the same moment, on two real connections
(tests/concurrency.py forces the overlap): together they report each key created once and replaced
once, the replacement's audit event names the other writer's value as "before", the stored values are
the last committer's, and the audit chain verifies. Issue #16 item 1: previously the second writer's
stale read answered "created" for rows it overwrote and no before/after event was written."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.models import Account
from accounts.services import account_create
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from metrics.bulk import kpi_measurements_bulk_ingest
from metrics.models import Incident, KpiMeasurement
from metrics.services import incident_open, incident_resolve, kpi_measurement_record
from segments.models import KpiDefinition
from tests import factories
from tests.concurrency import race

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks of PostgreSQL")

TODAY = datetime.date.today()
DAYS = 30  # keys per account and KPI
ACCOUNTS = 3


class _World:
    def __init__(self, tenant) -> None:
        self.tenant = tenant
        users = get_user_model().objects
        self.first = users.create_user(username=f"race-first-{tenant.pk}", email=f"first-{tenant.pk}@race.test")
        self.second = users.create_user(username=f"race-second-{tenant.pk}", email=f"second-{tenant.pk}@race.test")
        segment = factories.segment_of(tenant)
        self.accounts = [
            account_create(tenant=tenant, actor=None, name=f"Race Bank {i}", segment=segment) for i in range(ACCOUNTS)
        ]
        with context.tenant_context(tenant):
            self.kpi = KpiDefinition.objects.filter(segment=segment).order_by("pk").first()
        days = [TODAY - datetime.timedelta(days=n) for n in range(DAYS)]
        self.keys = [(account.pk, self.kpi.pk, day) for account in self.accounts for day in days]

    def rows(self, offset: int) -> list[dict]:
        """One row per key; the value tells the writers apart (offset) and the keys apart (index)."""
        return [
            {"account": a, "kpi": k, "measured_on": d.isoformat(), "value": offset + i}
            for i, (a, k, d) in enumerate(self.keys)
        ]

    def bulk(self, offset: int, actor) -> dict:
        with context.tenant_context(self.tenant):
            book = Account.objects.all()
        return kpi_measurements_bulk_ingest(tenant=self.tenant, rows=self.rows(offset), accounts=book, actor=actor)

    def stored(self) -> dict[tuple, Decimal]:
        with context.tenant_context(self.tenant):
            found = KpiMeasurement.objects.values_list("account_id", "kpi_id", "measured_on", "value")
            return {(a, k, d): v for a, k, d, v in found}

    def updates_by(self, actor) -> dict[tuple, tuple[Decimal, Decimal]]:
        """{key: (before, after)} of the actor's kpi_measurement.update events."""
        with context.tenant_context(self.tenant):
            rows = KpiMeasurement.objects.values_list("pk", "account_id", "kpi_id", "measured_on")
            keys = {pk: (a, k, d) for pk, a, k, d in rows}
            events = AuditEvent.objects.filter(action="kpi_measurement.update", actor_id=actor.pk)
            found = {}
            for event in events:
                key = keys[int(event.object_id)]
                assert key not in found, f"two update events by {actor} for {key}"
                found[key] = (Decimal(event.before["value"]), Decimal(event.after["value"]))
            return found

    def assert_audit_intact(self) -> None:
        out = io.StringIO()
        call_command("verify_audit", tenant=self.tenant.slug, stdout=out)  # raises CommandError when broken
        assert f"Audit chain of {self.tenant.slug} intact" in out.getvalue()


@pytest.fixture
def world(tenant_committed, django_db_blocker):
    with django_db_blocker.unblock():
        return _World(tenant_committed)


FIRST, SECOND, EARLIER = 1000, 5000, 100  # value offsets of the two racing writers and of the rows before


@pytest.mark.parametrize("rows_before", [False, True], ids=["new keys", "existing keys"])
def test_two_bulk_ingests_of_the_same_keys_report_and_audit_what_each_changed(world, django_db_blocker, rows_before):
    n = len(world.keys)
    with django_db_blocker.unblock():
        if rows_before:
            world.bulk(EARLIER, actor=None)

    first, second = race(
        world.tenant,
        lambda: world.bulk(FIRST, world.first),
        lambda: world.bulk(SECOND, world.second),
        blocker=django_db_blocker,
    )

    # Together: every key created exactly once (before the race or by the first writer) and every key
    # replaced by the second writer, which waited for the first's rows.
    assert (first["created"], first["updated"]) == ((0, n) if rows_before else (n, 0))
    assert (second["created"], second["updated"]) == (0, n)
    assert first["ids"] == second["ids"]
    with django_db_blocker.unblock():
        values = [Decimal(SECOND + i) for i in range(n)]
        assert world.stored() == dict(zip(world.keys, values, strict=True))  # the last committer's values
        # Each replaced value has its before/after event, "before" being the value actually replaced.
        assert world.updates_by(world.second) == {
            key: (Decimal(FIRST + i), Decimal(SECOND + i)) for i, key in enumerate(world.keys)
        }
        assert world.updates_by(world.first) == (
            {key: (Decimal(EARLIER + i), Decimal(FIRST + i)) for i, key in enumerate(world.keys)} if rows_before else {}
        )
        with context.tenant_context(world.tenant):
            summaries = AuditEvent.objects.filter(action="kpi_measurement.bulk_record").order_by("seq")
            assert [(e.after["created"], e.after["updated"]) for e in summaries][-2:] == [
                (first["created"], first["updated"]),
                (0, n),
            ]
        world.assert_audit_intact()


@pytest.mark.parametrize("row_before", [False, True], ids=["new key", "existing key"])
def test_two_single_records_of_the_same_day_audit_the_value_replaced(world, django_db_blocker, row_before):
    account, day = world.accounts[0], TODAY

    def record(value, actor):
        def call():
            return kpi_measurement_record(
                tenant=world.tenant, account=account, kpi=world.kpi, measured_on=day, value=value, actor=actor
            )

        return call

    with django_db_blocker.unblock():
        if row_before:
            record(7, None)()
    first, second = race(world.tenant, record(11, world.first), record(13, world.second), blocker=django_db_blocker)
    assert first.pk == second.pk
    with django_db_blocker.unblock():
        assert world.stored() == {(account.pk, world.kpi.pk, day): Decimal(13)}
        key = (account.pk, world.kpi.pk, day)
        assert world.updates_by(world.second) == {key: (Decimal(11), Decimal(13))}
        assert world.updates_by(world.first) == ({key: (Decimal(7), Decimal(11))} if row_before else {})
        with context.tenant_context(world.tenant):
            creates = AuditEvent.objects.filter(action="kpi_measurement.create").count()
        assert creates == 1
        world.assert_audit_intact()


def test_a_single_record_racing_a_bulk_ingest_is_audited_as_a_replacement(world, django_db_blocker):
    """The two write paths queue on the same rows: a manual correction made while an integration's
    bulk ingest of the same day is in flight replaces its value, and says so."""
    account, day = world.accounts[0], world.keys[0][2]

    def correct():
        return kpi_measurement_record(
            tenant=world.tenant, account=account, kpi=world.kpi, measured_on=day, value=42, actor=world.second
        )

    bulk, corrected = race(world.tenant, lambda: world.bulk(FIRST, world.first), correct, blocker=django_db_blocker)
    assert (bulk["created"], bulk["updated"]) == (len(world.keys), 0)
    with django_db_blocker.unblock():
        key = (account.pk, world.kpi.pk, day)
        assert world.stored()[key] == Decimal(42)
        assert world.updates_by(world.second) == {key: (Decimal(FIRST), Decimal(42))}
        world.assert_audit_intact()


def test_two_resolves_of_an_incident_at_once_give_one_resolution(world, django_db_blocker):
    """Each request read the incident open; the second must not resolve it again over the first (a
    second event whose "before" says open, and a resolution time silently replaced)."""
    opened = timezone.now().replace(microsecond=0) - datetime.timedelta(hours=3)
    with django_db_blocker.unblock():
        incident = incident_open(
            tenant=world.tenant, account=world.accounts[0], title="Wires late", severity="sev2", opened_at=opened
        )
        with context.tenant_context(world.tenant):
            copies = [Incident.objects.get(pk=incident.pk) for _ in range(2)]  # each request's own read: open
    times = [opened + datetime.timedelta(hours=1), opened + datetime.timedelta(hours=2)]

    def resolve(copy, at, actor):
        return lambda: incident_resolve(tenant=world.tenant, incident=copy, resolved_at=at, actor=actor)

    with pytest.raises(ValidationError, match="already resolved"):
        race(
            world.tenant,
            resolve(copies[0], times[0], world.first),
            resolve(copies[1], times[1], world.second),
            blocker=django_db_blocker,
        )
    with django_db_blocker.unblock(), context.tenant_context(world.tenant):
        assert Incident.objects.get(pk=incident.pk).resolved_at == times[0]
        assert AuditEvent.objects.filter(action="incident.resolve").count() == 1
        world.assert_audit_intact()
