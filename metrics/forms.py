"""Input parsing for recording a survey response from the account page. The scale of each survey
type and "not in the future" are checked by metrics.services.survey_response_record."""

from __future__ import annotations

import datetime

from django import forms

from accounts.forms import AccountForm, contact_choices
from accounts.models import Contact
from cs_platform import bounds
from metrics.models import SurveyType


class SurveyResponseForm(AccountForm):
    survey_type = forms.ChoiceField(label="Survey", choices=SurveyType.choices)
    score = forms.IntegerField(help_text="NPS 0-10, CSAT 1-5, CES 1-7.")
    responded_on = bounds.DateField(label="Responded on", widget=forms.DateInput(attrs={"type": "date"}))
    contact = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    comment = bounds.text_field()

    def __init__(self, *args, contacts: list[Contact], today: datetime.date, **kwargs):
        kwargs.setdefault("initial", {"survey_type": SurveyType.NPS, "responded_on": today})
        super().__init__(*args, **kwargs)
        self.fields["contact"].choices = contact_choices(contacts)
        self.contacts = {c.pk: c for c in contacts}
        self.fields["responded_on"].widget.attrs["max"] = today.isoformat()
        self.fields["score"].widget.attrs.update(min=0, max=10)

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["contact"] = self.contacts.get(data["contact"]) if data.get("contact") else None
        return data
