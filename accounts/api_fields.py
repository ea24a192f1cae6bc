"""Serializer fields for ids of the caller's book in request bodies (any app's api.py): an account of
the book, or a row hanging off one. An id outside the book reads as missing, with the same message as
one that never existed (api.fields says why)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Account
from accounts.selectors import visible_accounts
from api.fields import id_messages


@extend_schema_field(OpenApiTypes.INT)
class BookAccountField(serializers.PrimaryKeyRelatedField):
    """An account of the caller's book (visible_accounts)."""

    default_error_messages = id_messages("account")

    def __init__(self, **kwargs):
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", Account._plain.none())  # names the model for the schema only
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Account]:
        request = self.context["request"]
        return visible_accounts(request.user, request._request.membership)


def in_book(model):
    """For api.fields.TenantPkField(queryset=...): the `model` rows that hang off an account of the
    caller's book."""

    def rows(request):
        return model.objects.filter(account__in=visible_accounts(request.user, request._request.membership))

    return rows
