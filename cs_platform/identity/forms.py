"""Forms of the identity pages. Every field is bounded (Django's CharField also refuses NUL bytes); the
rules themselves (password validators, code checks) live in the services."""

from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm
from django.core.validators import MaxLengthValidator

from cs_platform.identity.lockout import USERNAME_ATTR
from cs_platform.tenancy.models import Role

PASSWORD_MAX_LENGTH = 4096  # far above any passphrase; keeps hashing cost bounded


def _bound(field: forms.CharField, limit: int) -> None:
    """Cap a field Django's auth forms build unbounded (or whose max_length they set after the field
    was made, so no validator checks it): an over-long username would reach axes' 255-character
    column and fail as a 500."""
    field.max_length = limit
    field.widget.attrs["maxlength"] = limit
    field.validators.append(MaxLengthValidator(limit))


class LoginForm(AuthenticationForm):
    """Django's form (authenticate() through django-axes, the same error for a wrong name or password)."""

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        _bound(self.fields["username"], self.username_field.max_length or 150)
        _bound(self.fields["password"], PASSWORD_MAX_LENGTH)


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        help_text="The 6 digits your authenticator app shows, or one of your recovery codes.",
    )


class ReauthForm(forms.Form):
    password = forms.CharField(
        label="Password", max_length=PASSWORD_MAX_LENGTH, strip=False, widget=forms.PasswordInput
    )
    code = forms.CharField(label="Code", max_length=32, required=False, strip=True)

    def __init__(self, *args, needs_code: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].required = needs_code


class PasswordChangeForm(SetPasswordForm):
    """The current password, then the new one twice. The current one is checked through authenticate(),
    so guessing it from a hijacked session is throttled and locked out like a login."""

    old_password = forms.CharField(
        label="Current password", max_length=PASSWORD_MAX_LENGTH, strip=False, widget=forms.PasswordInput
    )
    field_order = ["old_password", "new_password1", "new_password2"]

    def __init__(self, user, *args, request=None, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request
        for name in ("new_password1", "new_password2"):
            _bound(self.fields[name], PASSWORD_MAX_LENGTH)

    def clean_old_password(self):
        old = self.cleaned_data["old_password"]
        if self.request is not None:
            setattr(self.request, USERNAME_ATTR, self.user.get_username())  # for the lockout's length
        checked = authenticate(self.request, username=self.user.get_username(), password=old)
        if checked is None or checked.pk != self.user.pk:
            raise forms.ValidationError("Your current password is not right.", code="password_incorrect")
        return old


class BoundedSetPasswordForm(SetPasswordForm):
    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        for name in ("new_password1", "new_password2"):
            _bound(self.fields[name], PASSWORD_MAX_LENGTH)


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254)


class MfaPolicyForm(forms.Form):
    roles = forms.MultipleChoiceField(
        label="Roles that must use MFA", choices=Role.choices, required=False, widget=forms.CheckboxSelectMultiple
    )


def password_help() -> list[str]:
    return password_validation.password_validators_help_texts()
