"""Input parsing for the account forms. Business rules (not in the future, the contact is this
account's, who may receive an account) live in the services; these forms only turn text into values
and offer the choices that make sense."""

from __future__ import annotations

import datetime

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from accounts.models import Contact, TouchpointKind
from cs_platform import bounds
from cs_platform.tenancy.models import Membership

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def person_label(user) -> str:
    return user.get_full_name() or user.get_username()


def contact_choices(contacts: list[Contact]) -> list[tuple[str, str]]:
    return [("", "— none —")] + [(str(c.pk), f"{c.name}{f' ({c.title})' if c.title else ''}") for c in contacts]


class AccountForm(forms.Form):
    """A form whose service may still refuse the input: the service's messages go on their fields.
    (Django marks fields with errors aria-invalid and links their help text.)"""

    def add_service_errors(self, error: ValidationError) -> None:
        message_dict = error.message_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.messages}
        for field, messages_ in message_dict.items():
            for message in messages_:
                self.add_error(field if field in self.fields else None, message)


class TouchpointForm(AccountForm):
    kind = forms.ChoiceField(choices=TouchpointKind.choices)
    occurred_at = bounds.DateTimeField(
        label="Occurred at",
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    subject = forms.CharField(max_length=200)
    notes = bounds.text_field()
    contact = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)

    def __init__(self, *args, contacts: list[Contact], now: datetime.datetime, **kwargs):
        kwargs.setdefault("initial", {"kind": TouchpointKind.CALL, "occurred_at": now.replace(second=0, microsecond=0)})
        super().__init__(*args, **kwargs)
        # Only this account's contacts are offered; anything else posted is refused as an invalid choice.
        self.fields["contact"].choices = contact_choices(contacts)
        self.contacts = {c.pk: c for c in contacts}

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["contact"] = self.contacts.get(data["contact"]) if data.get("contact") else None
        return data


class ReassignForm(AccountForm):
    owner_csm = forms.TypedChoiceField(label="New owner CSM", coerce=int)

    def __init__(self, *args, candidates: list[Membership], **kwargs):
        super().__init__(*args, **kwargs)
        self.users = {m.user_id: m.user for m in candidates}
        self.fields["owner_csm"].choices = [("", "— choose —")] + [
            (str(m.user_id), f"{person_label(m.user)} ({m.get_role_display()})") for m in candidates
        ]
