"""Query-string filters shared by every resource: object ids, moments in time and a whitelisted
ordering. Each turns a bad value into a 400 naming the parameter, never a database error."""

from __future__ import annotations

import datetime

from django import forms
from django.utils import timezone
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions
from rest_framework.filters import OrderingFilter


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """An object id: a whole number within bigint range (a 400 for `1.5` or `1e400`)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class _UtcDateTimeField(forms.DateTimeField):
    """ISO 8601, converted to UTC: Python accepts offsets up to ±23:59, PostgreSQL only up to ±15:59,
    and a far-future moment with an offset can overflow the year 9999."""

    def to_python(self, value):
        moment = IsoDateTimeField().to_python(value)
        if moment is None or timezone.is_naive(moment):
            return moment
        try:
            return moment.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a valid date/time.", code="invalid") from None


@extend_schema_field(OpenApiTypes.DATETIME)
class MomentFilter(filters.IsoDateTimeFilter):
    """A date-time (ISO 8601 with an offset, or UTC)."""

    field_class = _UtcDateTimeField


class MappedOrderingFilter(OrderingFilter):
    """`?ordering=name,-arr`: public names (view.ordering_map: name -> query field) in any direction.

    Cursor pagination positions on the first field and counts ties with an offset, so the ordering
    always ends with the primary key (a stable order among equal values). An unknown name is a 400
    naming the `ordering` parameter rather than a silently ignored sort."""

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if not raw:
            return tuple(view.ordering)
        mapping: dict[str, str] = view.ordering_map
        fields = []
        for term in (t.strip() for t in raw.split(",") if t.strip()):
            name = term.lstrip("-")
            if name not in mapping:
                raise exceptions.ValidationError(
                    {self.ordering_param: f"Unknown ordering {name!r}; use {', '.join(mapping)} (prefix - to reverse)."}
                )
            fields.append(("-" if term.startswith("-") else "") + mapping[name])
        if not fields:
            return tuple(view.ordering)
        if not any(field.lstrip("-") in ("id", "pk") for field in fields):
            fields.append("-id" if fields[0].startswith("-") else "id")
        return tuple(fields)

    def get_schema_operation_parameters(self, view):
        names = ", ".join(view.ordering_map)
        default = ",".join(view.ordering)
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort by one or more of {names} (comma-separated, prefix - to reverse). "
                f"Default {default}. Ties are broken by id.",
                "schema": {"type": "string"},
            }
        ]
