"""Input parsing for decisions, their resolution and activity completion. The rules (a fallback is
required, the owner is an active member, the journey is this account's, dates not in the future nor
before the journey) are the services'."""

from __future__ import annotations

import datetime

from django import forms

from accounts.forms import AccountForm, person_label
from cs_platform import bounds
from cs_platform.tenancy.models import Membership
from journeys.models import AccountJourney, DecisionKind


class DecisionForm(AccountForm):
    kind = forms.ChoiceField(choices=DecisionKind.choices)
    title = forms.CharField(max_length=200)
    description = bounds.text_field()
    owner = forms.TypedChoiceField(coerce=int, help_text="One owner, who decides or unblocks.")
    due_date = bounds.DateField(label="Due date", widget=forms.DateInput(attrs={"type": "date"}))
    # Not required here: the service says why a fallback is needed, in the domain's words.
    fallback = forms.CharField(
        required=False,
        max_length=255,
        help_text="What happens if nobody decides by the due date.",
        widget=forms.TextInput(attrs={"required": True}),
    )
    customer_impact = forms.CharField(
        required=False,
        max_length=255,
        label="Expected customer impact",
        help_text="What the client feels if this is not decided in time (shown in the weekly scorecard).",
    )
    journey = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)

    def __init__(self, *args, owners: list[Membership], journeys: list[AccountJourney], **kwargs):
        super().__init__(*args, **kwargs)
        self.owners = {m.user_id: m.user for m in owners}
        self.journeys = {j.pk: j for j in journeys}
        self.fields["owner"].choices = [("", "— choose —")] + [(str(m.user_id), person_label(m.user)) for m in owners]
        self.fields["journey"].choices = [("", "— none —")] + [
            (str(j.pk), f"{j.template.name} (from {j.started_on:%Y-%m-%d})") for j in journeys
        ]

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["owner"] = self.owners[data["owner"]]
        data["journey"] = self.journeys.get(data["journey"]) if data.get("journey") else None
        return data


class DecisionResolveForm(AccountForm):
    # Not required here: the service says what is missing.
    resolution = bounds.text_field(attrs={"required": True}, help_text="What was decided.")
    apply_fallback = forms.BooleanField(label="Apply the fallback", required=False)


class ActivityCompleteForm(AccountForm):
    completed_on = bounds.DateField(label="Completed on", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, today: datetime.date, started_on: datetime.date, **kwargs):
        kwargs.setdefault("initial", {"completed_on": today})
        super().__init__(*args, **kwargs)
        self.fields["completed_on"].widget.attrs.update(min=started_on.isoformat(), max=today.isoformat())
