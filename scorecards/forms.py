"""The member's scorecard email preferences: on/off and which segments (checkboxes)."""

from __future__ import annotations

from django import forms


class ScorecardPreferencesForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Send me the weekly scorecard email")
    # Any posted values are accepted here: the service checks them against the tenant's segments, so
    # the message naming `segment_ids` is the same from every caller.
    segment_ids = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, segments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment_ids"].choices = [(str(s.pk), s.name) for s in segments]
        self.fields["segment_ids"].valid_value = lambda value: True

    def clean_segment_ids(self) -> list[int]:
        try:
            return sorted({int(value) for value in self.cleaned_data["segment_ids"]})
        except (TypeError, ValueError):
            raise forms.ValidationError("Choose segments from the list.", code="invalid") from None
