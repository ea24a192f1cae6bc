"""Evidence upload and download in the browser: what is accepted (type by extension and content,
size, dates), what is refused field by field with nothing stored, who may post, and what a
download sends back."""

from __future__ import annotations

import datetime
import hashlib
import io
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.services import account_create
from compliance import services
from compliance.models import Evidence, Requirement
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from tests.helpers import event_count, last_event

TODAY = datetime.date.today()
FROM, UNTIL = TODAY - datetime.timedelta(days=10), TODAY + datetime.timedelta(days=355)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 20
OOXML = "application/vnd.openxmlformats-officedocument"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 40


def _ooxml(part: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(part, "<document/>")
    return buffer.getvalue()


def _plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.bin", b"\x00\x01")
    return buffer.getvalue()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _stored_files(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def obligation(tenant_a):
    """An obligation on an account the CSM owns (so the CSM, their manager and the tenant-wide
    roles see it), with one audit on record."""
    tenant = tenant_a.tenant
    account = account_create(
        tenant=tenant,
        name="Granite Bay Credit Union",
        segment=factories.segment_of(tenant),
        owner_csm=tenant_a.user(Role.CSM),
    )
    with context.tenant_context(tenant):
        requirement = Requirement.objects.get(code="SOC2-T2")
    obligation = factories.ObligationFactory(
        tenant=tenant, account=account, requirement=requirement, status="overdue", due_date=TODAY
    )
    factories.AuditResultFactory(
        tenant=tenant, obligation=obligation, outcome="failed", open_findings=2, auditor="Example LLP"
    )
    return obligation


def _url(obligation) -> str:
    return reverse("evidence_upload", args=[obligation.pk])


def _post(client, obligation, name: str, content: bytes, valid_from=FROM, valid_until=UNTIL, **extra):
    data = {"valid_from": str(valid_from or ""), "valid_until": str(valid_until or ""), **extra}
    if name is not None:
        data["file"] = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(_url(obligation), data)


def _evidence(tenant) -> list[Evidence]:
    with context.tenant_context(tenant):
        return list(Evidence.objects.all())


@pytest.mark.django_db
def test_upload_stores_the_file_its_checksum_and_an_audit_event(client, tenant_a, obligation, media):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    response = _post(client, obligation, "SOC 2 report 2026.pdf", PDF)
    assert response.status_code == 302 and response["Location"] == _url(obligation)

    [evidence] = _evidence(tenant_a.tenant)
    assert evidence.checksum_sha256 == hashlib.sha256(PDF).hexdigest()
    assert (media / evidence.file.name).read_bytes() == PDF
    assert evidence.filename == "SOC 2 report 2026.pdf"
    assert (evidence.content_type, evidence.size_bytes) == ("application/pdf", len(PDF))
    assert (evidence.valid_from, evidence.valid_until) == (FROM, UNTIL)
    assert evidence.uploaded_by == tenant_a.user(Role.COMPLIANCE)

    event = last_event(tenant_a.tenant)
    assert event.action == "evidence.add" and event.actor_id == tenant_a.user(Role.COMPLIANCE).pk
    assert event.after["filename"] == "SOC 2 report 2026.pdf"
    assert event.after["checksum_sha256"] == evidence.checksum_sha256
    assert event.after["size_bytes"] == len(PDF) and event.after["content_type"] == "application/pdf"

    page = client.get(response["Location"]).content.decode()
    assert "stored, SHA-256 " + evidence.checksum_sha256 in page  # the success message
    assert f'<code class="checksum">{evidence.checksum_sha256}</code>' in page
    assert reverse("evidence_download", args=[evidence.pk]) in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("scan.png", PNG, "image/png"),
        ("scan.JPG", JPEG, "image/jpeg"),
        ("scan.jpeg", JPEG, "image/jpeg"),
        ("policy.docx", _ooxml("word/document.xml"), f"{OOXML}.wordprocessingml.document"),
        ("controls.xlsx", _ooxml("xl/workbook.xml"), f"{OOXML}.spreadsheetml.sheet"),
        ("controls.csv", "control,owner,result\nAC-1,Zoë,pass\r\n".encode(), "text/csv"),
        ("notes.txt", "Auditor's letter\tpage 1\n".encode("cp1252"), "text/plain"),
    ],
)
def test_every_allowed_type_is_accepted_with_its_content_type(
    client, tenant_a, obligation, media, name, content, content_type
):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    assert _post(client, obligation, name, content).status_code == 302
    [evidence] = _evidence(tenant_a.tenant)
    assert evidence.content_type == content_type and evidence.checksum_sha256 == hashlib.sha256(content).hexdigest()


def _assert_refused(response, tenant, media, field: str, message: str, events_before: int) -> None:
    assert response.status_code == 400
    form = response.context["form"]
    assert message in " ".join(form.errors[field]), form.errors
    body = response.content.decode()
    assert 'aria-invalid="true"' in body and f'<span class="field-error" id="id_{field}_error">' in body
    assert _evidence(tenant) == [] and _stored_files(media) == []
    assert event_count(tenant) == events_before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("setup.exe", EXE, "“.exe” files are not accepted"),
        ("report", PDF, "files are not accepted"),  # no extension at all
        ("report.pdf", b"Just some text pretending to be a PDF", "named .pdf but its content is not a PDF"),
        ("report.pdf", EXE, "named .pdf but its content is not a PDF"),
        ("scan.png", JPEG, "not a PNG image"),
        ("policy.docx", _plain_zip(), "not a Word document"),
        ("policy.docx", _ooxml("xl/workbook.xml"), "not a Word document"),
        ("notes.txt", EXE, "not plain text"),
        ("data.csv", b"a,b\n\x00\x01\x02", "not plain text"),
        ("empty.pdf", b"", "The file is empty."),
    ],
)
def test_wrong_types_and_empty_files_are_refused_with_nothing_stored(
    client, tenant_a, obligation, media, name, content, message
):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    before = event_count(tenant_a.tenant)
    response = _post(client, obligation, name, content)
    _assert_refused(response, tenant_a.tenant, media, "file", message, before)
    # The dates the user typed are kept.
    body = response.content.decode()
    assert f'value="{FROM.isoformat()}"' in body and f'value="{UNTIL.isoformat()}"' in body


@pytest.mark.django_db
def test_a_file_over_the_limit_is_refused(client, tenant_a, obligation, media, settings):
    settings.EVIDENCE_MAX_BYTES = len(PDF) - 1
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    before = event_count(tenant_a.tenant)
    response = _post(client, obligation, "report.pdf", PDF)
    _assert_refused(response, tenant_a.tenant, media, "file", f"the limit is {len(PDF) - 1:,} bytes", before)
    settings.EVIDENCE_MAX_BYTES = len(PDF)
    assert _post(client, obligation, "report.pdf", PDF).status_code == 302  # exactly at the limit is fine


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("valid_from", "valid_until", "field", "message"),
    [
        (UNTIL, FROM, "valid_until", "cannot expire before it becomes valid"),
        ("", UNTIL, "valid_from", "Enter the date the evidence becomes valid."),
        (FROM, "", "valid_until", "Enter the date the evidence expires."),
        ("2026-13-45", UNTIL, "valid_from", "Enter a valid date."),
    ],
)
def test_bad_dates_are_refused_with_nothing_stored(
    client, tenant_a, obligation, media, valid_from, valid_until, field, message
):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    before = event_count(tenant_a.tenant)
    response = _post(client, obligation, "report.pdf", PDF, valid_from=valid_from, valid_until=valid_until)
    _assert_refused(response, tenant_a.tenant, media, field, message, before)
    if valid_from:
        assert f'value="{valid_from}"' in response.content.decode()


@pytest.mark.django_db
def test_every_problem_is_named_at_once(client, tenant_a, obligation, media):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    response = _post(client, obligation, "setup.exe", EXE, valid_from=UNTIL, valid_until=FROM)
    assert response.status_code == 400 and set(response.context["form"].errors) == {"file", "valid_until"}
    response = _post(client, obligation, None, b"", valid_from="", valid_until="")
    assert set(response.context["form"].errors) == {"file", "valid_from", "valid_until"}
    assert "Choose the evidence file." in response.content.decode()
    assert _evidence(tenant_a.tenant) == [] and _stored_files(media) == []


@pytest.mark.django_db
def test_a_failure_after_the_file_is_written_leaves_no_orphan_file(tenant_a, obligation, media, monkeypatch):
    def broken_audit(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(services, "audit_record", broken_audit)
    with pytest.raises(RuntimeError):
        services.evidence_add(
            tenant=tenant_a.tenant,
            obligation=obligation,
            upload=SimpleUploadedFile("r.pdf", PDF),
            valid_from=FROM,
            valid_until=UNTIL,
        )
    assert _evidence(tenant_a.tenant) == [] and _stored_files(media) == []


@pytest.mark.django_db
def test_the_service_refuses_another_tenants_obligation(tenant_a, tenant_b, media):
    theirs = factories.ObligationFactory(tenant=tenant_b.tenant)
    with pytest.raises(ValidationError):
        services.evidence_add(
            tenant=tenant_a.tenant,
            obligation=theirs,
            upload=SimpleUploadedFile("r.pdf", PDF),
            valid_from=FROM,
            valid_until=UNTIL,
        )
    assert _stored_files(media) == []


@pytest.mark.django_db
def test_the_page_shows_the_obligation_its_evidence_and_audits(client, tenant_a, obligation, media):
    services.evidence_add(
        tenant=tenant_a.tenant,
        obligation=obligation,
        upload=SimpleUploadedFile("old.pdf", PDF),
        valid_from=FROM - datetime.timedelta(days=400),
        valid_until=FROM - datetime.timedelta(days=40),
    )
    client.force_login(tenant_a.user(Role.CSM))
    body = client.get(_url(obligation)).content.decode()
    assert "Granite Bay Credit Union" in body and "SOC 2 Type II report" in body
    assert ">Overdue</span>" in body and TODAY.isoformat() in body  # status and due date
    assert "old.pdf" in body and hashlib.sha256(PDF).hexdigest() in body
    assert "Example LLP" in body and ">Failed</span>" in body  # the audit history
    assert 'enctype="multipart/form-data"' in body  # the CSM may file evidence


@pytest.mark.django_db
def test_the_evidence_page_query_count_does_not_grow_with_evidence(
    client, tenant_a, obligation, django_assert_num_queries
):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    client.get(_url(obligation))
    for count in (1, 20):
        for _ in range(count - len(_evidence(tenant_a.tenant))):
            factories.EvidenceFactory(tenant=tenant_a.tenant, obligation=obligation, uploaded_by=tenant_a.user("csm"))
        # session, user, memberships; the obligation (account, segment, CSM, requirement, framework,
        # owner joined); its evidence (uploader joined); its audits
        with django_assert_num_queries(6):
            client.get(_url(obligation))


# --- Who may see and post ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.VIEWER, Role.EXECUTIVE])
def test_roles_that_may_not_file_evidence_see_the_page_without_the_form_and_get_403(
    client, tenant_a, obligation, media, role
):
    client.force_login(tenant_a.user(role))
    page = client.get(_url(obligation))
    assert page.status_code == 200 and 'enctype="multipart/form-data"' not in page.content.decode()
    response = _post(client, obligation, "report.pdf", PDF)
    assert response.status_code == 403
    assert _evidence(tenant_a.tenant) == [] and _stored_files(media) == []


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER, Role.CSM, Role.COMPLIANCE])
def test_evidence_roles_may_file(client, tenant_a, obligation, media, role):
    client.force_login(tenant_a.user(role))
    assert _post(client, obligation, "report.pdf", PDF).status_code == 302
    assert len(_evidence(tenant_a.tenant)) == 1


@pytest.mark.django_db
def test_a_csm_outside_the_book_gets_404_for_page_post_and_download(client, tenant_a, obligation, media):
    evidence = services.evidence_add(
        tenant=tenant_a.tenant,
        obligation=obligation,
        upload=SimpleUploadedFile("r.pdf", PDF),
        valid_from=FROM,
        valid_until=UNTIL,
    )
    outsider = factories.UserFactory(username="other-csm@alpha.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=outsider, role=Role.CSM)
    client.force_login(outsider)
    assert client.get(_url(obligation)).status_code == 404
    assert _post(client, obligation, "report.pdf", PDF).status_code == 404
    assert client.get(reverse("evidence_download", args=[evidence.pk])).status_code == 404
    assert len(_evidence(tenant_a.tenant)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.COMPLIANCE, Role.ADMIN, Role.VIEWER])
def test_another_tenants_obligation_and_evidence_answer_404(client, tenant_a, tenant_b, media, role):
    theirs = factories.ObligationFactory(tenant=tenant_b.tenant)
    evidence = services.evidence_add(
        tenant=tenant_b.tenant,
        obligation=theirs,
        upload=SimpleUploadedFile("r.pdf", PDF),
        valid_from=FROM,
        valid_until=UNTIL,
    )
    client.force_login(tenant_a.user(role))
    assert client.get(_url(theirs)).status_code == 404
    assert _post(client, theirs, "report.pdf", PDF).status_code == 404
    assert client.get(reverse("evidence_download", args=[evidence.pk])).status_code == 404
    with context.tenant_context(tenant_b.tenant):
        assert Evidence.objects.count() == 1


# --- Download -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.COMPLIANCE, Role.CSM, Role.VIEWER])
def test_download_returns_the_uploaded_bytes_with_safe_headers(client, tenant_a, obligation, media, role):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    _post(client, obligation, "SOC 2 report.pdf", PDF)
    [evidence] = _evidence(tenant_a.tenant)
    client.force_login(tenant_a.user(role))
    response = client.get(reverse("evidence_download", args=[evidence.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="SOC 2 report.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Checksum-SHA256"] == hashlib.sha256(PDF).hexdigest()
    assert response["Content-Length"] == str(len(PDF))


@pytest.mark.django_db
def test_download_names_a_non_ascii_file_safely(client, tenant_a, obligation, media):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    _post(client, obligation, 'Prüfbericht "final".txt', b"Bericht\n")
    [evidence] = _evidence(tenant_a.tenant)
    response = client.get(reverse("evidence_download", args=[evidence.pk]))
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"].startswith("attachment; filename*=utf-8''Pr%C3%BCfbericht")


@pytest.mark.django_db
def test_download_of_a_row_without_a_file_goes_back_to_the_obligation(client, tenant_a, obligation, media):
    # Evidence recorded without a file (imports, the demo data): no download, the page says so.
    evidence = factories.EvidenceFactory(tenant=tenant_a.tenant, obligation=obligation, filename="soc2-report.pdf")
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    response = client.get(reverse("evidence_download", args=[evidence.pk]))
    assert response.status_code == 302 and response["Location"] == _url(obligation)
    page = client.get(response["Location"]).content.decode()
    assert "No file is stored for “soc2-report.pdf”" in page and "(no file stored)" in page
    assert reverse("evidence_download", args=[evidence.pk]) not in page


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_log_in(client, obligation):
    for url in (_url(obligation), reverse("evidence_download", args=[1])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_the_audit_event_is_in_the_tenants_chain(tenant_a, obligation, media):
    evidence = services.evidence_add(
        tenant=tenant_a.tenant,
        obligation=obligation,
        upload=SimpleUploadedFile("r.csv", b"a,b\n1,2\n"),
        valid_from=FROM,
        valid_until=UNTIL,
        actor=tenant_a.user(Role.CSM),
    )
    with context.tenant_context(tenant_a.tenant):
        event = AuditEvent.objects.get(action="evidence.add", object_id=str(evidence.pk))
    assert event.after["content_type"] == "text/csv" and event.after["size_bytes"] == 8


@pytest.mark.django_db
def test_each_download_is_an_audit_event_naming_the_evidence_and_its_checksum(client, tenant_a, obligation, media):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    _post(client, obligation, "SOC 2 report.pdf", PDF)
    [evidence] = _evidence(tenant_a.tenant)
    csm = tenant_a.user(Role.CSM)
    client.force_login(csm)
    before = event_count(tenant_a.tenant)
    for _ in range(2):  # every download, not the first one only
        response = client.get(reverse("evidence_download", args=[evidence.pk]))
        assert b"".join(response.streaming_content) == PDF
    assert event_count(tenant_a.tenant) == before + 2
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_type, event.object_id) == (
        "evidence.download",
        "compliance.evidence",
        str(evidence.pk),
    )
    assert (event.actor_id, event.actor_label) == (csm.pk, csm.username)
    assert event.after == {
        "evidence_id": evidence.pk,
        "obligation_id": obligation.pk,
        "filename": "SOC 2 report.pdf",
        "checksum_sha256": hashlib.sha256(PDF).hexdigest(),
        "size_bytes": len(PDF),
    }


@pytest.mark.django_db
def test_no_file_sent_means_no_download_event(client, tenant_a, tenant_b, obligation, media):
    without_file = factories.EvidenceFactory(tenant=tenant_a.tenant, obligation=obligation, filename="soc2.pdf")
    theirs = factories.EvidenceFactory(tenant=tenant_b.tenant)
    counts = event_count(tenant_a.tenant), event_count(tenant_b.tenant)
    client.get(reverse("evidence_download", args=[without_file.pk]))  # anonymous: sent to log in
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    assert client.get(reverse("evidence_download", args=[without_file.pk])).status_code == 302
    assert client.get(reverse("evidence_download", args=[theirs.pk])).status_code == 404
    assert (event_count(tenant_a.tenant), event_count(tenant_b.tenant)) == counts
