"""Compliance pages: the dashboard over the user's book, and per obligation the evidence page
(upload) and evidence downloads. Reads go through compliance.selectors, writes through
compliance.services."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from compliance import selectors
from compliance.forms import EvidenceUploadForm
from compliance.models import STATUS_SEVERITY, ObligationStatus
from compliance.services import evidence_add, evidence_download_record, evidence_max_bytes
from cs_platform.listing import PAGE_SIZES, list_params, paginate
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.policy import Capability, can, requires

EXPIRING_LIMIT = 50
FAILED_AUDITS_LIMIT = 50
PASS_RATE_COLUMNS = ("segments", "audits", "passed", "pass_rates")


@requires()
def compliance_dashboard(request):
    membership = request.membership
    day = tenant_today(request.tenant)
    book = selectors.compliance_book(request.user, membership)
    options = selectors.matrix_filter_options(book)
    params = list_params(
        request.GET,
        filters={
            "segment": {str(s.pk) for s in options.segments},
            "framework": {str(f.pk) for f in options.frameworks},
            "status": set(STATUS_SEVERITY),
            "owner": {str(u.pk) for u in options.owners},
            "q": None,
        },
        sorts=selectors.MATRIX_SORTS,
        default_sort="worst",
    )
    order_by = params.order_by(selectors.MATRIX_SORTS)
    page = paginate(selectors.compliance_matrix(book, filters=params.filters, order_by=order_by), params)
    columns = [f for f in options.frameworks if params.filters.get("framework") in (None, str(f.pk))]
    counts = selectors.status_counts(book)
    headline = [
        {
            "status": status,
            "cell": selectors.status_cell(status),
            "count": counts[status],
            "href": "?" + params.querystring(status=status) + "#matrix",
            "active": params.filters.get("status") == status,
        }
        for status in STATUS_SEVERITY
    ]
    expiring, expiring_total = selectors.expiring_obligations(book, day=day, limit=EXPIRING_LIMIT)
    failed, failed_total = selectors.failed_audits(book, day=day, limit=FAILED_AUDITS_LIMIT)
    pass_rates = selectors.audit_pass_rate_chart(book, segments=options.segments, day=day)
    return render(
        request,
        "compliance/dashboard.html",
        {
            "day": day,
            "options": options,
            "params": params,
            "page": page,
            "columns": columns,
            "rows": selectors.compliance_matrix_rows(list(page.object_list), columns),
            "headline": headline,
            "statuses": [(s, ObligationStatus(s).label) for s in STATUS_SEVERITY],
            "filtered": bool(params.filters),
            "page_sizes": PAGE_SIZES,
            "expiring": expiring,
            "expiring_total": expiring_total,
            "failed": failed,
            "failed_total": failed_total,
            "pass_rates": pass_rates,
            # The chart's text equivalent: the same figures as table rows.
            "pass_rate_rows": list(zip(*(pass_rates[k] for k in PASS_RATE_COLUMNS), strict=True)),
        },
    )


def _obligation_in_book(request, obligation_id: int):
    return selectors.obligation_in_book(selectors.compliance_book(request.user, request.membership), obligation_id)


# Every member reads the obligation's page; posting evidence takes the capability.
@requires(Capability.UPLOAD_EVIDENCE, methods=["POST"], exists=_obligation_in_book)
def evidence_upload(request, obligation_id: int):
    obligation = _obligation_in_book(request, obligation_id)
    if obligation is None:
        # Another tenant's obligation, or one outside the user's book: the same 404, no hint.
        raise Http404("No such obligation.")
    status = 200
    if request.method == "POST":
        form = EvidenceUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                evidence = evidence_add(
                    tenant=request.tenant,
                    obligation=obligation,
                    upload=form.cleaned_data["file"],
                    valid_from=form.cleaned_data["valid_from"],
                    valid_until=form.cleaned_data["valid_until"],
                    actor=request.user,
                )
            except ValidationError as exc:
                for name, errors in exc.message_dict.items():
                    form.add_error(name if name in form.fields else None, errors)
            else:
                messages.success(
                    request,
                    f"Evidence “{evidence.filename}” stored, SHA-256 {evidence.checksum_sha256}. "
                    "The obligation's status is recomputed tonight.",
                )
                return redirect("evidence_upload", obligation_id=obligation.pk)
        status = 400
    else:
        form = EvidenceUploadForm()
    return render(
        request,
        "compliance/evidence.html",
        {
            "obligation": obligation,
            "status": selectors.status_cell(obligation.status),
            "evidence_list": selectors.obligation_evidence(obligation),
            "audits": selectors.obligation_audits(obligation),
            "form": form if can(request, Capability.UPLOAD_EVIDENCE) else None,
            "max_mb": evidence_max_bytes() / (1024 * 1024),
        },
        status=status,
    )


@requires()
def evidence_download(request, evidence_id: int):
    evidence = selectors.evidence_in_book(selectors.compliance_book(request.user, request.membership), evidence_id)
    if evidence is None:
        raise Http404("No such evidence.")
    if not evidence.file or not evidence.file.storage.exists(evidence.file.name):
        # Rows recorded without a file (imports, the demo) are real evidence metadata: send the
        # reader back to the obligation, which says so, rather than to a dead end.
        messages.error(request, f"No file is stored for “{evidence.filename}”; only its details were recorded.")
        return redirect(reverse("evidence_upload", kwargs={"obligation_id": evidence.obligation_id}))
    content_type = evidence.content_type or mimetypes.guess_type(evidence.filename)[0] or "application/octet-stream"
    handle = evidence.file.open("rb")
    # Recorded once the file is open, before a byte leaves: a download that could not start is no download,
    # and a download that could not be recorded does not happen.
    try:
        evidence_download_record(tenant=request.tenant, evidence=evidence, actor=request.user)
    except BaseException:
        handle.close()
        raise
    response = FileResponse(handle, as_attachment=True, filename=evidence.filename, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Checksum-SHA256"] = evidence.checksum_sha256
    # Client compliance files must not linger in shared caches.
    response["Cache-Control"] = "private, no-store"
    return response
