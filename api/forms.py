"""The token creation form: a name, scopes as checkboxes grouped by resource family, an optional expiry."""

from __future__ import annotations

from django import forms

from api.models import ALL_SCOPES, SCOPE_FAMILIES
from cs_platform import bounds


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    # Unknown values are left for the service to refuse, so the message is the same from every caller.
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in ALL_SCOPES], required=False)
    expires_on = bounds.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False  # the service names the error, in one place
        self.fields["scopes"].valid_value = lambda value: True


def scope_groups(form: ApiTokenForm) -> list[dict]:
    """[{family, scopes: [{value, access, checked}]}] for the checkbox table, keeping posted choices."""
    chosen = set(form.data.getlist("scopes")) if form.is_bound else set()
    return [
        {
            "family": family,
            "scopes": [
                {"value": f"{family}:{access}", "access": access, "checked": f"{family}:{access}" in chosen}
                for access in modes
            ],
        }
        for family, modes in SCOPE_FAMILIES.items()
    ]
