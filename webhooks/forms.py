"""Endpoint form (URL, description, events as checkboxes) and the disable form (a reason)."""

from __future__ import annotations

from django import forms

from webhooks.models import EventType


class WebhookEndpointForm(forms.Form):
    # Plain text fields: the service validates (https, public address) and names the error, in one
    # place for every caller.
    url = forms.CharField(required=False)
    description = forms.CharField(required=False)
    events = forms.MultipleChoiceField(choices=EventType.choices, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].valid_value = lambda value: True  # unknown values: the service refuses them


class WebhookDisableForm(forms.Form):
    reason = forms.CharField(required=False)


def event_choices(form: WebhookEndpointForm, initial: list[str] | None = None) -> list[dict]:
    """[{value, label, checked}] for the event checkboxes, keeping posted choices."""
    chosen = set(form.data.getlist("events")) if form.is_bound else set(initial or [])
    return [{"value": value, "label": label, "checked": value in chosen} for value, label in EventType.choices]
