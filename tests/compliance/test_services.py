import datetime
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance.models import Requirement
from compliance.selectors import compliance_book, status_counts
from compliance.services import audit_result_record, evidence_add, obligation_create
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from tests.helpers import last_event

DAY = datetime.date(2026, 11, 1)


def _requirement(tenant, code="SOC2-T2"):
    with context.tenant_context(tenant):
        return Requirement.objects.get(code=code)


@pytest.mark.django_db
def test_evidence_is_stored_with_its_sha256(tenant_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    obligation = obligation_create(
        tenant=tenant_a.tenant, account=account, requirement=_requirement(tenant_a.tenant), due_date=DAY
    )
    content = b"%PDF-1.7\nSOC 2 Type II report, period 2025-10-01 to 2026-09-30"
    evidence = evidence_add(
        tenant=tenant_a.tenant,
        obligation=obligation,
        upload=SimpleUploadedFile("soc2.pdf", content),
        valid_from=DAY,
        valid_until=DAY + datetime.timedelta(days=365),
        actor=tenant_a.user(Role.COMPLIANCE),
    )
    assert evidence.checksum_sha256 == hashlib.sha256(content).hexdigest()
    assert (tmp_path / evidence.file.name).read_bytes() == content
    event = last_event(tenant_a.tenant)
    assert event.action == "evidence.add" and event.after["checksum_sha256"] == evidence.checksum_sha256


@pytest.mark.django_db
def test_evidence_validity_must_be_a_forward_range(tenant_a):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    obligation = obligation_create(
        tenant=tenant_a.tenant, account=account, requirement=_requirement(tenant_a.tenant), due_date=DAY
    )
    with pytest.raises(ValidationError) as raised:
        evidence_add(
            tenant=tenant_a.tenant,
            obligation=obligation,
            upload=SimpleUploadedFile("x.pdf", b"%PDF-1.7 x"),
            valid_from=DAY,
            valid_until=DAY - datetime.timedelta(days=1),
        )
    assert list(raised.value.message_dict) == ["valid_until"]


@pytest.mark.django_db
def test_duplicate_obligations_and_inconsistent_audits_are_refused(tenant_a):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    requirement = _requirement(tenant_a.tenant)
    obligation = obligation_create(tenant=tenant_a.tenant, account=account, requirement=requirement, due_date=DAY)
    with pytest.raises(ValidationError, match="already has an obligation"):
        obligation_create(tenant=tenant_a.tenant, account=account, requirement=requirement, due_date=DAY)
    with pytest.raises(ValidationError, match="cannot leave open findings"):
        audit_result_record(
            tenant=tenant_a.tenant, obligation=obligation, audited_on=DAY, outcome="passed", open_findings=2
        )
    audit_result_record(
        tenant=tenant_a.tenant,
        obligation=obligation,
        audited_on=DAY,
        outcome="failed",
        open_findings=2,
        auditor="Example LLP",
    )
    assert last_event(tenant_a.tenant).after["open_findings"] == 2
    with context.tenant_context(tenant_a.tenant):
        counts = status_counts(compliance_book(tenant_a.user(Role.COMPLIANCE)))
    assert counts == {"failed": 0, "overdue": 0, "expiring": 0, "not_started": 1, "compliant": 0}


@pytest.mark.django_db
def test_a_long_file_name_is_kept_as_given_but_stored_under_a_short_random_one(tenant_a, tmp_path, settings):
    """The name a browser sends can be 255 characters of anything; stored as given it overran the file
    column once the ids were long (a 500 on upload). It is kept for the download, not used on disk."""
    settings.MEDIA_ROOT = tmp_path
    obligation = factories.ObligationFactory(tenant=tenant_a.tenant)
    name = ("'\"><img src=x onerror=alert(1)> SOC 2 report " * 8)[:240] + ".PDF"  # no slash: a path
    upload = SimpleUploadedFile(name, b"%PDF-1.4 evidence", content_type="application/pdf")
    evidence = evidence_add(
        tenant=tenant_a.tenant,
        obligation=obligation,
        upload=upload,
        valid_from=datetime.date(2026, 1, 1),
        valid_until=datetime.date(2026, 12, 31),
        actor=tenant_a.user("compliance"),
    )
    assert evidence.filename == name
    stored = evidence.file.name
    assert stored.startswith(f"evidence/{tenant_a.tenant.pk}/{obligation.pk}/") and stored.endswith(".pdf")
    assert len(stored) <= 100 and "<" not in stored
    assert (tmp_path / stored).read_bytes() == b"%PDF-1.4 evidence"
