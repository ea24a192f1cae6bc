"""Browser forms of the compliance pages. They only parse input; compliance.services validates it
(file type, size, dates), so the browser and any other caller get the same rules and messages."""

from __future__ import annotations

from django import forms

from compliance.services import EVIDENCE_TYPES
from cs_platform import bounds


class EvidenceUploadForm(forms.Form):
    # Not required here: evidence_add names a missing file or date itself, with the other errors.
    file = forms.FileField(
        label="Evidence file",
        required=False,
        allow_empty_file=True,
        widget=forms.FileInput(attrs={"accept": ",".join(sorted(EVIDENCE_TYPES))}),
        help_text="PDF, PNG, JPEG, Word (.docx), Excel (.xlsx), CSV or plain text.",
    )
    valid_from = bounds.DateField(
        label="Valid from", required=False, widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})
    )
    valid_until = bounds.DateField(
        label="Valid until", required=False, widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})
    )
