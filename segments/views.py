"""Tenant admins edit their segments' health scorecards (the weights and bands the nightly engine uses)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render

from cs_platform.tenancy.policy import Capability, requires
from segments import selectors
from segments.health_model import MEASURES
from segments.services import scorecard_update


@requires(Capability.EDIT_HEALTH_MODEL)
def health_model(request):
    return render(request, "segments/scorecards.html", {"scorecards": selectors.scorecards_overview()})


def _form_rows(scorecard, posted=None, errors: dict[str, str] | None = None, codes: list[str] | None = None):
    """One row per known measure: the stored (or posted) weight and bands, and that row's errors."""
    stored = {m.measure: m for m in scorecard.measures.all()}
    by_index = {code: index for index, code in enumerate(codes or [])}
    rows = []
    for code, measure in MEASURES.items():
        current = stored.get(code)
        if posted is not None:
            values = {f: posted.get(f"{code}-{f}", "").strip() for f in ("weight", "green_at", "red_below")}
        else:
            values = {
                "weight": f"{current.weight.normalize():f}" if current else "0",
                "green_at": f"{current.green_at.normalize():f}" if current else "75",
                "red_below": f"{current.red_below.normalize():f}" if current else "50",
            }
        row_errors = {}
        if code in by_index:
            prefix = f"measures[{by_index[code]}]."
            row_errors = {k[len(prefix) :]: v for k, v in (errors or {}).items() if k.startswith(prefix)}
        rows.append(
            {"code": code, "label": measure.label, "rule": measure.rule, "values": values, "errors": row_errors}
        )
    return rows


@requires(Capability.EDIT_HEALTH_MODEL, exists=lambda request, scorecard_id: selectors.scorecard_for_edit(scorecard_id))
def health_model_edit(request, scorecard_id: int):
    scorecard = selectors.scorecard_for_edit(scorecard_id)
    if scorecard is None:
        raise Http404("No such scorecard.")
    context: dict[str, Any] = {"scorecard": scorecard}
    if request.method == "POST":
        # Measures with a blank or zero weight are not scored; the rest go to the service, which
        # validates them all and names each bad field.
        codes = [c for c in MEASURES if request.POST.get(f"{c}-weight", "").strip() not in ("", "0", "0.0", "0.00")]
        measures = [
            {
                "measure": code,
                "weight": request.POST.get(f"{code}-weight", "").strip(),
                "green_at": request.POST.get(f"{code}-green_at", "").strip() or "75",
                "red_below": request.POST.get(f"{code}-red_below", "").strip() or "50",
            }
            for code in codes
        ]
        try:
            scorecard_update(
                tenant=request.tenant,
                scorecard=scorecard,
                measures=measures,
                actor=request.user,
                green_at=request.POST.get("green_at", "").strip(),
                red_below=request.POST.get("red_below", "").strip(),
            )
        except ValidationError as exc:
            errors = {key: " ".join(messages_) for key, messages_ in exc.message_dict.items()}
            context.update(
                rows=_form_rows(scorecard, request.POST, errors, codes),
                errors=errors,
                card={"green_at": request.POST.get("green_at", ""), "red_below": request.POST.get("red_below", "")},
            )
            return render(request, "segments/scorecard_edit.html", context, status=400)
        messages.success(request, f"{scorecard.segment.name}: scorecard saved. It applies from the next nightly run.")
        return redirect("health_model")
    context.update(
        rows=_form_rows(scorecard),
        errors={},
        card={"green_at": f"{scorecard.green_at.normalize():f}", "red_below": f"{scorecard.red_below.normalize():f}"},
    )
    return render(request, "segments/scorecard_edit.html", context)
