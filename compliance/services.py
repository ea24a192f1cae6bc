"""Writes of compliance obligations, evidence and audit results. Each records an audit event."""

from __future__ import annotations

import datetime
import hashlib

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from accounts.models import Account
from compliance.models import AuditOutcome, AuditResult, Evidence, Obligation, Requirement
from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.tenancy import context

MAX_EVIDENCE_BYTES = 50 * 1024 * 1024


@transaction.atomic
def obligation_create(
    *, tenant, account: Account, requirement: Requirement, due_date: datetime.date, owner=None, actor=None
) -> Obligation:
    with context.tenant_context(tenant):
        if requirement.segment_id is not None and requirement.segment_id != account.segment_id:
            raise ValidationError({"requirement": f"“{requirement}” applies to another segment than {account.name}'s."})
        if Obligation.objects.filter(account=account, requirement=requirement).exists():
            raise ValidationError({"requirement": f"{account.name} already has an obligation for “{requirement}”."})
        obligation = Obligation.objects.create(
            tenant=tenant, account=account, requirement=requirement, due_date=due_date, owner=owner
        )
        audit_record(
            tenant=tenant, actor=actor, action="obligation.create", obj=obligation, after=model_snapshot(obligation)
        )
    return obligation


def _sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


@transaction.atomic
def evidence_add(
    *, tenant, obligation: Obligation, upload: UploadedFile, valid_from: datetime.date, valid_until: datetime.date,
    actor=None,
) -> Evidence:  # fmt: skip
    """Store an evidence file with its SHA-256, so a regulator can check the file is the one filed."""
    if valid_until < valid_from:
        raise ValidationError({"valid_until": "Evidence cannot expire before it becomes valid."})
    if upload.size is not None and upload.size > MAX_EVIDENCE_BYTES:
        raise ValidationError({"file": f"The file is {upload.size} bytes; the limit is {MAX_EVIDENCE_BYTES}."})
    if upload.size == 0:
        raise ValidationError({"file": "The file is empty."})
    with context.tenant_context(tenant):
        evidence = Evidence(
            tenant=tenant, obligation=obligation, filename=upload.name, checksum_sha256=_sha256(upload),
            valid_from=valid_from, valid_until=valid_until, uploaded_by=actor,
        )  # fmt: skip
        evidence.file.save(upload.name, upload, save=False)
        evidence.save()
        audit_record(tenant=tenant, actor=actor, action="evidence.add", obj=evidence, after=model_snapshot(evidence))
    return evidence


@transaction.atomic
def audit_result_record(
    *, tenant, obligation: Obligation, audited_on: datetime.date, outcome: str, open_findings: int = 0,
    auditor: str = "", notes: str = "", actor=None,
) -> AuditResult:  # fmt: skip
    if outcome not in AuditOutcome.values:
        raise ValidationError({"outcome": f"Unknown outcome {outcome!r}; use passed or failed."})
    if open_findings < 0:
        raise ValidationError({"open_findings": "Cannot be negative."})
    if outcome == AuditOutcome.PASSED and open_findings:
        raise ValidationError({"open_findings": "A passed audit cannot leave open findings; record it as failed."})
    with context.tenant_context(tenant):
        result = AuditResult.objects.create(
            tenant=tenant, obligation=obligation, audited_on=audited_on, outcome=outcome,
            open_findings=open_findings, auditor=auditor, notes=notes,
        )  # fmt: skip
        audit_record(tenant=tenant, actor=actor, action="audit_result.record", obj=result, after=model_snapshot(result))
    return result
