"""Compliance-audit status: the rule, transitions recorded once in the audit trail, account worst."""

from __future__ import annotations

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance.models import ComplianceStatusSnapshot, Obligation, Requirement
from compliance.selectors import audit_pass_rate_chart
from compliance.services import audit_result_record, compliance_status_recompute, evidence_add, obligation_create
from compliance.status import obligation_status
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from tests import factories

DAY = datetime.date(2026, 6, 1)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"valid_until": DAY + datetime.timedelta(days=31)}, "compliant"),
        ({"valid_until": DAY + datetime.timedelta(days=30)}, "expiring"),
        ({"valid_until": DAY}, "expiring"),
        ({"valid_until": DAY - datetime.timedelta(days=1), "ever_evidenced": True}, "overdue"),
        ({"due_date": DAY - datetime.timedelta(days=1)}, "overdue"),
        ({}, "not_started"),
        (
            {
                "valid_until": DAY + datetime.timedelta(days=200),
                "last_audit_outcome": "failed",
                "last_audit_open_findings": 2,
            },
            "failed",
        ),
        (
            {
                "valid_until": DAY + datetime.timedelta(days=200),
                "last_audit_outcome": "failed",
                "last_audit_open_findings": 0,
            },
            "compliant",
        ),
    ],
)
def test_obligation_status_rule(kwargs, expected):
    args = {
        "day": DAY,
        "due_date": DAY + datetime.timedelta(days=10),
        "last_audit_outcome": None,
        "last_audit_open_findings": None,
        "valid_until": None,
        "ever_evidenced": False,
    }
    args.update(kwargs)
    assert obligation_status(**args) == expected


def _events(tenant, action):
    with context.tenant_context(tenant):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


@pytest.mark.django_db
def test_transitions_are_recorded_once_and_the_account_takes_the_worst(tenant_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    tenant = tenant_a.tenant
    account = factories.AccountFactory(tenant=tenant)
    with context.tenant_context(tenant):
        soc2, pci = Requirement.objects.get(code="SOC2-T2"), Requirement.objects.get(code="PCI-AOC")
    ob_soc2 = obligation_create(
        tenant=tenant, account=account, requirement=soc2, due_date=DAY + datetime.timedelta(days=90)
    )
    obligation_create(tenant=tenant, account=account, requirement=pci, due_date=DAY + datetime.timedelta(days=90))
    evidence_add(
        tenant=tenant,
        obligation=ob_soc2,
        upload=SimpleUploadedFile("soc2.pdf", b"%PDF-1.7 report"),
        valid_from=DAY - datetime.timedelta(days=300),
        valid_until=DAY + datetime.timedelta(days=60),
    )

    summary = compliance_status_recompute(tenant=tenant, day=DAY)
    assert summary["status_changes"] == 1  # soc2: not_started -> compliant; pci stays not_started
    with context.tenant_context(tenant):
        snap = ComplianceStatusSnapshot.objects.get(account=account, snapshot_date=DAY)
    assert snap.status == "not_started" and snap.counts == {"compliant": 1, "not_started": 1}

    later = DAY + datetime.timedelta(days=40)  # 20 days before the evidence lapses
    compliance_status_recompute(tenant=tenant, day=later)
    again = compliance_status_recompute(tenant=tenant, day=later)
    assert again["status_changes"] == 0  # re-running the same date changes nothing
    changes = _events(tenant, "obligation.status_change")
    assert [(e.object_id, e.before["status"], e.after["status"]) for e in changes] == [
        (str(ob_soc2.pk), "not_started", "compliant"),
        (str(ob_soc2.pk), "compliant", "expiring"),
    ]

    audit_result_record(tenant=tenant, obligation=ob_soc2, audited_on=later, outcome="failed", open_findings=3)
    compliance_status_recompute(tenant=tenant, day=later)
    with context.tenant_context(tenant):
        assert Obligation.objects.get(pk=ob_soc2.pk).status == "failed"
        assert ComplianceStatusSnapshot.objects.get(account=account, snapshot_date=later).status == "failed"
        assert ComplianceStatusSnapshot.objects.filter(account=account).count() == 2  # one per date


@pytest.mark.django_db
def test_audit_pass_rate_per_segment(tenant_a):
    tenant = tenant_a.tenant
    bank = factories.AccountFactory(tenant=tenant)
    with context.tenant_context(tenant):
        requirements = list(Requirement.objects.order_by("code")[:4])
    for i, requirement in enumerate(requirements):
        obligation = obligation_create(tenant=tenant, account=bank, requirement=requirement, due_date=DAY)
        audit_result_record(
            tenant=tenant,
            obligation=obligation,
            audited_on=DAY,
            outcome="failed" if i == 0 else "passed",
            open_findings=1 if i == 0 else 0,
        )
    with context.tenant_context(tenant):
        from accounts.models import Account
        from segments.models import Segment

        rates = audit_pass_rate_chart(Account.objects.all(), segments=list(Segment.objects.all()), day=DAY)
    assert rates == {"segments": ["Banks and Credit Unions"], "audits": [4], "passed": [3], "pass_rates": [75.0]}
