"""Serializer fields for ids in request bodies, restricted to the caller's tenant (the book's own fields,
an account of the caller's book and rows hanging off one, are accounts.api_fields). An id of another
tenant or outside the book reads as missing, with the same message as one that never existed: a 400
naming the field, never a hint that the object exists."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cs_platform import bounds
from cs_platform.tenancy.models import Membership


def id_messages(noun: str) -> dict[str, str]:
    return {"does_not_exist": f"No such {noun}.", "incorrect_type": f"Expected a {noun} id (a number)."}


@extend_schema_field(OpenApiTypes.INT)
class TenantPkField(serializers.PrimaryKeyRelatedField):
    """An object of a tenant-owned `model` of the current tenant. Its fail-closed manager is usable only
    once the request selected the tenant, hence the lookup per request; `queryset` narrows it further
    (a callable taking the request, e.g. contacts of the caller's book)."""

    def __init__(self, model, noun: str | None = None, queryset=None, **kwargs):
        self.model, self.narrow = model, queryset
        kwargs["error_messages"] = {**id_messages(noun or model._meta.verbose_name), **kwargs.get("error_messages", {})}
        if not kwargs.get("read_only"):
            kwargs["queryset"] = model._plain.none()
        super().__init__(**kwargs)

    def get_queryset(self):
        if self.narrow is not None:
            return self.narrow(self.context["request"])
        return self.model.objects.all()


@extend_schema_field(OpenApiTypes.INT)
class MemberUserField(serializers.PrimaryKeyRelatedField):
    """A user with an active membership in the current tenant (Membership's manager is tenant-scoped)."""

    default_error_messages = {
        "does_not_exist": "No such user in this tenant.",
        "incorrect_type": "Expected a user id (a number).",
    }

    def __init__(self, **kwargs):
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", get_user_model()._default_manager.none())
        super().__init__(**kwargs)

    def get_queryset(self):
        members = Membership.objects.filter(is_active=True).values("user_id")
        return get_user_model()._default_manager.filter(pk__in=members)


def display_name(user) -> str | None:
    return (user.get_full_name() or user.get_username()) if user is not None else None


class DayField(serializers.DateField):
    """A date in the platform's range (cs_platform.bounds: 1900-01-01 to 2200-12-31): a 400 naming the
    field, rather than a value whose arithmetic or time-zone shift overflows later."""

    default_validators = [bounds.validate_date]


class MomentField(serializers.DateTimeField):
    """A date and time in the platform's range, as an instant (an offset of +14:00 on 0001-01-01 is 1 BC
    in UTC, which PostgreSQL stores and Python cannot read back)."""

    default_validators = [bounds.validate_moment]
