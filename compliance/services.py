"""Writes of compliance obligations, evidence and audit results. Each records an audit event."""

from __future__ import annotations

import datetime
import hashlib
import os
import zipfile
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from compliance.models import (
    STATUS_SEVERITY,
    AuditOutcome,
    AuditResult,
    ComplianceStatusSnapshot,
    Evidence,
    Obligation,
    Requirement,
)
from compliance.status import obligation_status, worst
from cs_platform import bounds
from cs_platform.audit.services import audit_record, audit_record_many, model_snapshot
from cs_platform.bulk import bulk_update_rows
from cs_platform.tenancy import context

# Default upload limit; settings.EVIDENCE_MAX_BYTES overrides it.
MAX_EVIDENCE_BYTES = 50 * 1024 * 1024


@transaction.atomic
def obligation_create(
    *, tenant, account: Account, requirement: Requirement, due_date: datetime.date, owner=None, actor=None
) -> Obligation:
    bounds.check(due_date=due_date)
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


# What a compliance file may be: extension -> (kind, Content-Type served on download). Each kind's
# content is checked too (_detect_kind), so a renamed executable is refused whatever its name says.
EVIDENCE_TYPES: dict[str, tuple[str, str]] = {
    ".pdf": ("pdf", "application/pdf"),
    ".png": ("png", "image/png"),
    ".jpg": ("jpeg", "image/jpeg"),
    ".jpeg": ("jpeg", "image/jpeg"),
    ".docx": ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".csv": ("text", "text/csv"),
    ".txt": ("text", "text/plain"),
}
_KIND_LABELS = {
    "pdf": "a PDF",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "docx": "a Word document (.docx)",
    "xlsx": "an Excel workbook (.xlsx)",
    "text": "plain text",
}
# The part of the file the content checks read; the checksum still covers every byte.
_SNIFF_BYTES = 64 * 1024
# Text may hold tabs, line breaks and form feeds, but no other control bytes (binaries always do).
_TEXT_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


def evidence_max_bytes() -> int:
    return int(getattr(settings, "EVIDENCE_MAX_BYTES", MAX_EVIDENCE_BYTES))


def _read_head(upload: UploadedFile) -> bytes:
    upload.seek(0)
    head = upload.read(_SNIFF_BYTES)
    upload.seek(0)
    return head


def _zip_members(upload: UploadedFile) -> set[str] | None:
    """The names in a zip's central directory (no member is decompressed), or None if not a zip."""
    try:
        upload.seek(0)
        with zipfile.ZipFile(upload) as archive:
            return set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    finally:
        upload.seek(0)


def _detect_kind(upload: UploadedFile, head: bytes) -> str | None:
    """What the bytes are, from their signature: pdf, png, jpeg, docx, xlsx, text, or None."""
    # Readers accept the PDF header anywhere in the first 1,024 bytes (PDF 1.7, annex H).
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"PK\x03\x04"):
        # DOCX and XLSX are zips; which one is told by the Office parts inside, not the signature.
        members = _zip_members(upload) or set()
        if "[Content_Types].xml" in members:
            if "word/document.xml" in members:
                return "docx"
            if "xl/workbook.xml" in members:
                return "xlsx"
        return None
    if head and not any(byte in _TEXT_CONTROL for byte in head):
        return "text"
    return None


def _file_errors(upload: UploadedFile) -> tuple[dict[str, str], str]:
    """({"file": reason} or {}, the Content-Type to serve it with)."""
    size = upload.size
    if size == 0:
        return {"file": "The file is empty."}, ""
    limit = evidence_max_bytes()
    if size is not None and size > limit:
        return {"file": f"The file is {size:,} bytes; the limit is {limit:,} bytes."}, ""
    extension = os.path.splitext(upload.name or "")[1].lower()
    if extension not in EVIDENCE_TYPES:
        allowed = ", ".join(sorted(EVIDENCE_TYPES))
        return {"file": f"“{extension or upload.name}” files are not accepted as evidence; use one of {allowed}."}, ""
    kind, content_type = EVIDENCE_TYPES[extension]
    head = _read_head(upload)
    if not head:
        return {"file": "The file is empty."}, ""
    detected = _detect_kind(upload, head)
    if detected != kind:
        return {"file": f"The file is named {extension} but its content is not {_KIND_LABELS[kind]}."}, ""
    return {}, content_type


def _sha256(upload: UploadedFile) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    upload.seek(0)
    return digest.hexdigest(), size


@transaction.atomic
def evidence_add(
    *,
    tenant,
    obligation: Obligation,
    upload: UploadedFile | None,
    valid_from: datetime.date | None,
    valid_until: datetime.date | None,
    actor=None,
) -> Evidence:
    """Store an evidence file with its SHA-256, so a regulator can check the file is the one filed.

    Refused, field by field and with nothing stored: a missing, empty or too large file, an
    extension outside EVIDENCE_TYPES, content that does not match its extension, missing dates, or
    a validity that ends before it starts. The audit event records filename, checksum, size and type."""
    if obligation.tenant_id != tenant.pk:
        raise ValidationError({"obligation": "No such obligation."})
    errors: dict[str, str] = {}
    content_type = ""
    if upload is None:
        errors["file"] = "Choose the evidence file."
    else:
        file_errors, content_type = _file_errors(upload)
        errors.update(file_errors)
    if valid_from is None:
        errors["valid_from"] = "Enter the date the evidence becomes valid."
    if valid_until is None:
        errors["valid_until"] = "Enter the date the evidence expires."
    elif valid_from is not None and valid_until < valid_from:
        errors["valid_until"] = "Evidence cannot expire before it becomes valid."
    for name, day in (("valid_from", valid_from), ("valid_until", valid_until)):
        if day is not None and (message := bounds.date_error(day)):
            errors[name] = message
    if errors:
        raise ValidationError(errors)
    checksum, size = _sha256(upload)
    with context.tenant_context(tenant):
        evidence = Evidence(
            tenant=tenant,
            obligation=obligation,
            filename=upload.name,
            checksum_sha256=checksum,
            content_type=content_type,
            size_bytes=size,
            valid_from=valid_from,
            valid_until=valid_until,
            uploaded_by=actor,
        )
        evidence.file.save(upload.name, upload, save=False)
        try:
            evidence.save()
            audit_record(
                tenant=tenant, actor=actor, action="evidence.add", obj=evidence, after=model_snapshot(evidence)
            )
        except BaseException:
            # The rows roll back with the transaction; the file on disk would not, and an
            # unreferenced evidence file is exactly what an auditor should never find.
            evidence.file.storage.delete(evidence.file.name)
            raise
    return evidence


def evidence_download_record(*, tenant, evidence: Evidence, actor) -> None:
    """Record that `actor` downloaded an evidence file, with the checksum of the file served, so the trail
    shows who took which client compliance document out of the platform, and which version of it."""
    audit_record(
        tenant=tenant,
        actor=actor,
        action="evidence.download",
        obj=evidence,
        after={
            "evidence_id": evidence.pk,
            "obligation_id": evidence.obligation_id,
            "filename": evidence.filename,
            "checksum_sha256": evidence.checksum_sha256,
            "size_bytes": evidence.size_bytes,
        },
    )


@transaction.atomic
def audit_result_record(
    *,
    tenant,
    obligation: Obligation,
    audited_on: datetime.date,
    outcome: str,
    open_findings: int = 0,
    auditor: str = "",
    notes: str = "",
    actor=None,
) -> AuditResult:
    if outcome not in AuditOutcome.values:
        raise ValidationError({"outcome": f"Unknown outcome {outcome!r}; use passed or failed."})
    if open_findings < 0:
        raise ValidationError({"open_findings": "Cannot be negative."})
    if outcome == AuditOutcome.PASSED and open_findings:
        raise ValidationError({"open_findings": "A passed audit cannot leave open findings; record it as failed."})
    with context.tenant_context(tenant):
        result = AuditResult(
            tenant=tenant,
            obligation=obligation,
            audited_on=audited_on,
            outcome=outcome,
            open_findings=open_findings,
            auditor=auditor,
            notes=notes,
        )
        result.full_clean(exclude=["tenant", "obligation"])
        result.save()
        audit_record(tenant=tenant, actor=actor, action="audit_result.record", obj=result, after=model_snapshot(result))
    return result


def _obligation_inputs(*, tenant_id: int, day: datetime.date) -> list[tuple]:
    """Every obligation of the tenant with its latest audit (as of `day`) and its evidence so far, in
    one statement: (id, account, due date, stored status, last outcome, its open findings, latest
    valid-until, evidence count). Joins over window/grouped subqueries rather than two correlated
    subqueries per obligation, which cost a lookup per row on big tenants. Portable SQL (PostgreSQL
    and the SQLite demo); RLS and the explicit tenant filter both apply."""
    from django.db import connection

    obligation, audit, evidence = (m._meta.db_table for m in (Obligation, AuditResult, Evidence))
    sql = f"""
        SELECT o.id, o.account_id, o.due_date, o.status, a.outcome, a.open_findings, e.valid_until_max,
               COALESCE(e.n, 0)
        FROM {obligation} o
        LEFT JOIN (
            SELECT obligation_id, outcome, open_findings,
                   ROW_NUMBER() OVER (PARTITION BY obligation_id ORDER BY audited_on DESC, id DESC) AS rank
            FROM {audit} WHERE tenant_id = %s AND audited_on <= %s
        ) a ON a.obligation_id = o.id AND a.rank = 1
        LEFT JOIN (
            SELECT obligation_id, MAX(valid_until) AS valid_until_max, COUNT(*) AS n
            FROM {evidence} WHERE tenant_id = %s AND valid_from <= %s GROUP BY obligation_id
        ) e ON e.obligation_id = o.id
        WHERE o.tenant_id = %s
    """  # noqa: S608 - table names from the models; values are bound parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant_id, day, tenant_id, day, tenant_id])
        rows = cursor.fetchall()
    if connection.vendor == "sqlite":
        # sqlite3 converts a date column by its declared type, but MAX(valid_until) has none: text.
        def parse(value):
            return datetime.date.fromisoformat(value) if isinstance(value, str) else value

        rows = [(r[0], r[1], parse(r[2]), r[3], r[4], r[5], parse(r[6]), r[7]) for r in rows]
    return rows


def _status_snapshots_upsert(*, tenant, day: datetime.date, per_account: dict[int, list[str]]) -> dict[str, int]:
    """Each account's worst obligation status and counts for `day`, upserted; returns accounts per
    status. On PostgreSQL one INSERT ... SELECT aggregates the obligations just updated (no rows
    shipped through Python); elsewhere the same rows are built in Python."""
    from django.db import connection

    if connection.vendor != "postgresql":
        snapshots = [
            ComplianceStatusSnapshot(
                tenant=tenant,
                account_id=account_id,
                snapshot_date=day,
                status=worst(statuses),
                counts={status: statuses.count(status) for status in sorted(set(statuses))},
            )
            for account_id, statuses in per_account.items()
        ]
        ComplianceStatusSnapshot.objects.bulk_create(
            snapshots,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["tenant", "account", "snapshot_date"],
            update_fields=["status", "counts"],
        )
        counts: dict[str, int] = {}
        for snapshot in snapshots:
            counts[snapshot.status] = counts.get(snapshot.status, 0) + 1
        return counts
    # Worst status = lowest severity rank, looked up in the ranked list (1-based), without sorting
    # each account's statuses.
    severity = "CASE status " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATUS_SEVERITY, 1)) + " END"
    ranked = ", ".join(f"'{s}'" for s in STATUS_SEVERITY)
    sql = f"""
        WITH written AS (
            INSERT INTO {ComplianceStatusSnapshot._meta.db_table} AS s
                (tenant_id, account_id, snapshot_date, status, counts)
            SELECT %(tenant)s, account_id, %(day)s, (ARRAY[{ranked}])[min(severity)],
                   jsonb_object_agg(status, n)
            FROM (SELECT account_id, status, count(*) AS n, {severity} AS severity
                  FROM {Obligation._meta.db_table} WHERE tenant_id = %(tenant)s
                  GROUP BY account_id, status) AS g
            GROUP BY account_id
            ON CONFLICT (tenant_id, account_id, snapshot_date)
            DO UPDATE SET status = EXCLUDED.status, counts = EXCLUDED.counts
            RETURNING status
        )
        SELECT status, count(*) FROM written GROUP BY status
    """  # noqa: S608 - names and statuses from the code; values are bound parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tenant": tenant.pk, "day": day})
        return dict(cursor.fetchall())


def compliance_status_recompute(*, tenant, day: datetime.date, actor=None) -> dict[str, Any]:
    """Recompute every obligation's status as of `day`, record each change as an audit event, and
    upsert each account's snapshot (worst status and counts) for `day`. Set-based: a fixed number
    of queries per tenant. Re-running for the same day changes nothing."""
    with transaction.atomic(), context.tenant_context(tenant):
        rows = _obligation_inputs(tenant_id=tenant.pk, day=day)
        now = timezone.now()
        changed: list[Obligation] = []
        changes: list[dict[str, Any]] = []
        per_account: dict[int, list[str]] = {}
        for pk, account_id, due, old, outcome, findings, valid_until, evidenced in rows:
            new = obligation_status(
                day=day,
                due_date=due,
                last_audit_outcome=outcome,
                last_audit_open_findings=findings,
                valid_until=valid_until,
                ever_evidenced=bool(evidenced),
            )
            per_account.setdefault(account_id, []).append(new)
            if new != old:
                changed.append(Obligation(pk=pk, tenant_id=tenant.pk, status=new, status_computed_at=now))
                changes.append(
                    {
                        "action": "obligation.status_change",
                        "object_type": "compliance.obligation",
                        "object_id": pk,
                        "before": {"status": old},
                        "after": {"status": new, "as_of": day.isoformat()},
                    }
                )
        bulk_update_rows(Obligation, changed, ["status", "status_computed_at"])
        audit_record_many(tenant=tenant, actor=actor, events=changes)
        counts = _status_snapshots_upsert(tenant=tenant, day=day, per_account=per_account)
    return {"obligations": len(rows), "status_changes": len(changes), "accounts_by_status": counts}
