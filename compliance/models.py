"""Compliance frameworks, requirements, per-account obligations, evidence, audits and status."""

from __future__ import annotations

import secrets
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.utils import timezone

from cs_platform.tenancy.models import TenantOwned


class Framework(TenantOwned):
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=160)
    description = models.CharField(max_length=255, blank=True)
    is_reference = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="framework_tenant_code_uniq")]

    def __str__(self) -> str:
        return self.name


class Requirement(TenantOwned):
    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="requirements")
    # Null: applies to every segment.
    segment = models.ForeignKey("segments.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=60)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    evidence_validity_days = models.PositiveIntegerField(default=365)

    class Meta:
        ordering = ["framework", "code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "framework", "code"], name="requirement_tenant_fw_code_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.framework.code} {self.code}: {self.title}"


class ObligationStatus(models.TextChoices):
    COMPLIANT = "compliant", "Compliant"
    EXPIRING = "expiring", "Expiring (30 days)"
    OVERDUE = "overdue", "Overdue"
    FAILED = "failed", "Failed"
    NOT_STARTED = "not_started", "Not started"


# Worst first: an account's status is the worst of its obligations.
STATUS_SEVERITY = ["failed", "overdue", "expiring", "not_started", "compliant"]


class Obligation(TenantOwned):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="obligations")
    requirement = models.ForeignKey(Requirement, on_delete=models.PROTECT, related_name="obligations")
    due_date = models.DateField()
    status = models.CharField(max_length=12, choices=ObligationStatus.choices, default=ObligationStatus.NOT_STARTED)
    status_computed_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["due_date"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "account", "requirement"], name="obligation_tenant_acct_req_uniq")
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="obligation_tenant_status_idx")]

    def __str__(self) -> str:
        return f"{self.account} – {self.requirement}"


def evidence_upload_to(instance, filename: str) -> str:
    """Where the file is stored: a random name under its tenant and obligation, with the uploaded name's
    extension. The name a person gave the file is kept in `filename` (and served back on download); on
    disk it could be anything a browser sends, up to 255 characters, which with long ids overran the
    column (a 500 on upload) and would leak into paths and logs."""
    suffix = PurePosixPath(filename).suffix.lower()
    suffix = suffix if len(suffix) <= 10 and suffix[1:].isalnum() else ""
    return f"evidence/{instance.tenant_id}/{instance.obligation_id}/{secrets.token_hex(16)}{suffix}"


class Evidence(TenantOwned):
    obligation = models.ForeignKey(Obligation, on_delete=models.CASCADE, related_name="evidence")
    file = models.FileField(upload_to=evidence_upload_to, blank=True)
    filename = models.CharField(max_length=255)
    checksum_sha256 = models.CharField(max_length=64)
    # Detected from the file's content at upload, not taken from the browser; blank on older rows.
    # db_default: rows written by SQL outside the ORM (imports, benchmarks) need no value for it.
    content_type = models.CharField(max_length=100, blank=True, default="", db_default="")
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    valid_from = models.DateField()
    valid_until = models.DateField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-valid_until"]
        verbose_name_plural = "evidence"
        indexes = [models.Index(fields=["tenant", "obligation", "valid_until"], name="evidence_tenant_obl_valid_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("valid_from")), name="evidence_valid_range"
            )
        ]


class AuditOutcome(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class AuditResult(TenantOwned):
    obligation = models.ForeignKey(Obligation, on_delete=models.CASCADE, related_name="audit_results")
    audited_on = models.DateField()
    outcome = models.CharField(max_length=6, choices=AuditOutcome.choices)
    open_findings = models.PositiveIntegerField(default=0)
    auditor = models.CharField(max_length=160, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-audited_on"]
        indexes = [models.Index(fields=["tenant", "obligation", "audited_on"], name="auditresult_tenant_obl_idx")]


class ComplianceStatusSnapshot(TenantOwned):
    """An account's compliance status on a day: the worst obligation status and the counts."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="compliance_snapshots")
    snapshot_date = models.DateField()
    status = models.CharField(max_length=12, choices=ObligationStatus.choices)
    counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["-snapshot_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "account", "snapshot_date"], name="compliancesnap_tenant_day_uniq"
            )
        ]
