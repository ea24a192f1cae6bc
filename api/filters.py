"""Query-string filters shared by every resource: object ids, moments in time and a whitelisted
ordering. Each turns a bad value into a 400 naming the parameter, never a database error."""

from __future__ import annotations

import datetime

from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions
from rest_framework.filters import OrderingFilter

from cs_platform import bounds


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
    and a far-future moment with an offset can overflow the year 9999. Within the platform's range."""

    default_validators = [bounds.validate_moment]

    def to_python(self, value):
        moment = IsoDateTimeField().to_python(value)
        if moment is None or timezone.is_naive(moment):
            return moment
        try:
            return moment.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a valid date/time.", code="invalid") from None


@extend_schema_field(OpenApiTypes.DATE)
class DayFilter(filters.DateFilter):
    """A date (YYYY-MM-DD) within the platform's range (cs_platform.bounds)."""

    field_class = bounds.DateField


@extend_schema_field(OpenApiTypes.DATETIME)
class MomentFilter(filters.IsoDateTimeFilter):
    """A date-time (ISO 8601 with an offset, or UTC)."""

    field_class = _UtcDateTimeField


def ordering_map(view) -> dict[str, str]:
    """The public ordering names of a list view and the query field each sorts by: `ordering_map`, or
    for views that name their fields as they are, `ordering_fields` (each name its own field)."""
    mapping = getattr(view, "ordering_map", None)
    if mapping is None:
        fields = getattr(view, "ordering_fields", None)
        if not fields:
            raise ImproperlyConfigured(f"{type(view).__name__} lists nothing to order by: set ordering_map.")
        mapping = {name: name for name in fields}
    return mapping


def _with_tie_break(fields: list[str]) -> tuple[str, ...]:
    # Cursor pagination positions on the first field and skips ties with an offset, which is only right
    # when ties come back in the same order on every page: the primary key makes the order total.
    if not any(field.lstrip("-") in ("id", "pk") for field in fields):
        fields = [*fields, "-id" if fields[0].startswith("-") else "id"]
    return tuple(fields)


class MappedOrderingFilter(OrderingFilter):
    """`?ordering=name,-arr`: public names (view.ordering_map: name -> query field, or ordering_fields) in
    any direction. The default filter of every list (REST_FRAMEWORK DEFAULT_FILTER_BACKENDS).

    Cursor pagination positions on the first field and counts ties with an offset, so the ordering
    always ends with the primary key (a stable order among equal values), the view's default ordering
    too. An unknown name is a 400 naming the `ordering` parameter and the names it takes, rather than a
    silently ignored sort."""

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        default = list(view.ordering)
        if not raw:
            return _with_tie_break(default)
        mapping = ordering_map(view)
        fields = []
        for term in (t.strip() for t in raw.split(",") if t.strip()):
            name = term.lstrip("-")
            if name not in mapping:
                raise exceptions.ValidationError(
                    {self.ordering_param: f"Unknown ordering {name!r}; use {', '.join(mapping)} (prefix - to reverse)."}
                )
            fields.append(("-" if term.startswith("-") else "") + mapping[name])
        return _with_tie_break(fields or default)

    def get_schema_operation_parameters(self, view):
        names = ", ".join(ordering_map(view))
        default = ",".join(view.ordering)
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort by one or more of {names} (comma-separated, prefix - to reverse). "
                f"Default {default}. Ties are broken by id. Any other name is a 400.",
                "schema": {"type": "string"},
            }
        ]
