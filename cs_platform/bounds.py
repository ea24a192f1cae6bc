"""The bounds every value from outside must respect, in one place (issue #15 item 8).

Python, PostgreSQL and the pages do not agree on what a value may be: Python dates run from year 1 to
9999 and PostgreSQL's from 4713 BC, but a date near either end overflows as soon as it is shifted by a
time zone or a number of days (a journey starting 9999-12-31, an incident at 0001-01-01T00:00+14:00 that
PostgreSQL stores in 1 BC and Python cannot read back); PostgreSQL refuses NUL in any text; a bigint
column holds less than a Python int; Python's json module recurses once per level of nesting. So every
date and moment the product accepts lies in [MIN_DATE, MAX_DATE], no text holds NUL, free text has a
length, and JSON from outside has a depth. Services check these rules (business rules live there:
`check` for plain values, TenantOwned.clean_fields for every model they full_clean); forms and
serializers use the same validators for early, per-field errors."""

from __future__ import annotations

import datetime
import json
import re
from collections import deque
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

MIN_DATE = datetime.date(1900, 1, 1)
MAX_DATE = datetime.date(2200, 12, 31)
MIN_MOMENT = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
MAX_MOMENT = datetime.datetime(2200, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC)
DATE_MESSAGE = f"Enter a date from {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}."
MOMENT_MESSAGE = f"Enter a date and time from {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}."
NUL_MESSAGE = "Null characters are not allowed."
# Free text (notes, descriptions, comments, resolutions): a page of text, not a file upload.
TEXT_MAX_LENGTH = 10_000
# Lists of short strings a user edits (an account's jurisdictions, regulators, data standards).
LIST_MAX_ITEMS = 50
# Ids are bigint: a larger number names no row (Django's integer fields check their own columns' ranges).
MAX_ID = 2**63 - 1
# JSON from outside: the deepest legitimate body is a bulk request ({"rows": [{...}]}), three levels.
JSON_MAX_DEPTH = 20


# --- Single values ------------------------------------------------------------------------------------
def date_error(value: datetime.date) -> str | None:
    if isinstance(value, datetime.datetime):
        return moment_error(value)
    return None if MIN_DATE <= value <= MAX_DATE else DATE_MESSAGE


def moment_error(value: datetime.datetime) -> str | None:
    # Aware moments compare as instants (Python compares them without building a shifted datetime, so
    # 0001-01-01T00:00+14:00 compares fine although it is year 0 in UTC); naive ones as wall-clock times.
    low, high = MIN_MOMENT, MAX_MOMENT
    if timezone.is_naive(value):
        low, high = low.replace(tzinfo=None), high.replace(tzinfo=None)
    return None if low <= value <= high else MOMENT_MESSAGE


def text_error(value: str, max_length: int | None = None) -> str | None:
    if "\x00" in value:
        return NUL_MESSAGE
    if max_length is not None and len(value) > max_length:
        return f"At most {max_length:,} characters (this has {len(value):,})."
    return None


def validate_date(value: datetime.date) -> None:
    """A Django validator (forms, DRF serializer fields and filters accept it as is)."""
    if (message := date_error(value)) is not None:
        raise ValidationError(message, code="date_out_of_range")


def validate_moment(value: datetime.datetime) -> None:
    if (message := moment_error(value)) is not None:
        raise ValidationError(message, code="date_out_of_range")


def value_error(value: Any) -> tuple[str, str] | None:
    """(code, message) when a plain value breaks a bound; None when it is fine or not a bounded kind."""
    if isinstance(value, datetime.datetime):
        message = moment_error(value)
    elif isinstance(value, datetime.date):
        message = date_error(value)
    elif isinstance(value, str):
        return ("null_characters_not_allowed", NUL_MESSAGE) if "\x00" in value else None
    else:
        return None
    return ("date_out_of_range", message) if message else None


def check(**values: Any) -> None:
    """For services: raise a ValidationError naming every field whose date, moment or text is out of
    bounds (other kinds of value pass through), before the value is used in any arithmetic."""
    errors = {}
    for field, value in values.items():
        problem = value_error(value)
        if problem is not None:
            errors[field] = ValidationError(problem[1], code=problem[0])
    if errors:
        raise ValidationError(errors)


def check_text(max_length: int = TEXT_MAX_LENGTH, **values: str) -> None:
    """For services: free text without NUL and within max_length, each error naming its field."""
    errors = {}
    for field, value in values.items():
        if isinstance(value, str) and (message := text_error(value, max_length)):
            code = "null_characters_not_allowed" if message == NUL_MESSAGE else "max_length"
            errors[field] = ValidationError(message, code=code)
    if errors:
        raise ValidationError(errors)


# --- Model instances ----------------------------------------------------------------------------------
def instance_errors(instance: models.Model, exclude: set[str] = frozenset()) -> dict[str, list[ValidationError]]:
    """Bound errors of a model instance's field values, for Model.clean_fields: dates and moments out
    of range, NUL in any text, free text (TextField) over TEXT_MAX_LENGTH, lists in JSON fields over
    LIST_MAX_ITEMS. CharField lengths and integer ranges Django already checks."""
    errors: dict[str, list[ValidationError]] = {}
    for field in instance._meta.concrete_fields:
        if field.name in exclude or not field.editable:
            continue
        value = getattr(instance, field.attname)
        if value is None:
            continue
        code, message = None, None
        if isinstance(field, models.DateTimeField) and isinstance(value, datetime.datetime):
            code, message = "date_out_of_range", moment_error(value)
        elif isinstance(field, models.DateField) and isinstance(value, datetime.date):
            code, message = "date_out_of_range", date_error(value)
        elif isinstance(field, models.TextField) and isinstance(value, str):
            code, message = "invalid", text_error(value, TEXT_MAX_LENGTH)
        elif isinstance(value, str):
            code, message = "null_characters_not_allowed", text_error(value)
        elif isinstance(field, models.JSONField):
            code, message = "invalid", json_value_error(value)
        if message:
            errors[field.name] = [ValidationError(message, code=code)]
    return errors


def json_value_error(value: Any) -> str | None:
    """Why a value stored in a JSON column is refused: too deep, a list too long, NUL in a string."""
    problem = _json_problem(value, max_depth=JSON_MAX_DEPTH)
    if problem is not None:
        return problem[2]
    if isinstance(value, list) and len(value) > LIST_MAX_ITEMS:
        return f"At most {LIST_MAX_ITEMS} items."
    return None


# --- Forms --------------------------------------------------------------------------------------------
class DateField(forms.DateField):
    """A form date in [MIN_DATE, MAX_DATE]; the browser's date picker is told the same range."""

    default_validators = [validate_date]

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        if widget.input_type == "date":
            attrs.setdefault("min", MIN_DATE.isoformat())
            attrs.setdefault("max", MAX_DATE.isoformat())
        return attrs


class DateTimeField(forms.DateTimeField):
    """A form date and time within the bounds (checked as the instant it is in the current time zone)."""

    default_validators = [validate_moment]

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        if widget.input_type == "datetime-local":
            attrs.setdefault("min", f"{MIN_DATE.isoformat()}T00:00")
            attrs.setdefault("max", f"{MAX_DATE.isoformat()}T23:59")
        return attrs


def text_field(*, required: bool = False, attrs: dict | None = None, **kwargs) -> forms.CharField:
    """A free-text form field (a textarea) bounded like the service bounds it."""
    widget = forms.Textarea(attrs={"rows": 3, **(attrs or {})})
    return forms.CharField(required=required, max_length=TEXT_MAX_LENGTH, widget=widget, **kwargs)


# --- JSON from outside --------------------------------------------------------------------------------
class JsonRefused(ValueError):
    """JSON text that parses but may not be used, or nests too deep to parse. `path` names the value
    (dotted keys and list indexes, "rows.3.comment"), None for the whole document."""

    def __init__(self, message: str, *, code: str, path: str | None = None):
        super().__init__(message)
        self.message, self.code, self.path = message, code, path


# A NUL or a surrogate can only reach a string through a \u escape (strict JSON refuses raw control
# characters, and text decoded from UTF-8 holds no surrogates): only then is every string looked at.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_loads(text: str, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """json.loads for text from outside: refuses (JsonRefused) nesting deeper than max_depth, strings
    or keys holding NUL or a lone surrogate (neither PostgreSQL nor UTF-8 can hold them), and NaN or
    Infinity. Any other syntax error is json's own ValueError."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        # Deeper than the interpreter's stack: far past max_depth, whatever the exact level.
        raise JsonRefused(_too_deep(max_depth), code="too_deep") from None
    problem = _json_problem(data, max_depth=max_depth, strings=bool(_SUSPECT_ESCAPE.search(text)))
    if problem is not None:
        path, code, message = problem
        raise JsonRefused(message, code=code, path=path)
    return data


def _refuse_constant(name: str):
    raise JsonRefused(f"{name} is not a JSON number.", code="parse_error")


def _too_deep(max_depth: int) -> str:
    return f"JSON nested more than {max_depth} levels deep is not accepted."


def _json_problem(data: Any, *, max_depth: int, strings: bool = True) -> tuple[str | None, str, str] | None:
    """(path, code, message) of the first bad value, or None. Strings are only read when `strings`."""
    if _deeper_than(data, max_depth):
        return None, "too_deep", _too_deep(max_depth)
    return _bad_string(data) if strings else None


def _deeper_than(data: Any, max_depth: int) -> bool:
    # Level by level, containers only: a 10,000-row bulk request is checked in a few milliseconds, and no
    # recursion (the depth is what is being checked).
    level, depth = [data], 0
    while level:
        depth += 1
        if depth > max_depth:
            return True
        deeper = []
        for value in level:
            items = value.values() if type(value) is dict else value if type(value) is list else ()
            deeper.extend([item for item in items if type(item) is dict or type(item) is list])
        level = deeper
    return False


def _bad_string(data: Any) -> tuple[str | None, str, str] | None:
    queue: deque[tuple[str | None, Any]] = deque([(None, data)])
    while queue:
        path, value = queue.popleft()
        if type(value) is dict:
            for key, item in value.items():
                child = f"{path}.{key}" if path is not None else str(key)
                if problem := _string_problem(key):
                    return child, *problem
                queue.append((child, item))
        elif type(value) is list:
            queue.extend((f"{path}.{i}" if path is not None else str(i), item) for i, item in enumerate(value))
        elif problem := _string_problem(value):
            return path, *problem
    return None


def _string_problem(value: Any) -> tuple[str, str] | None:
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        return "null_characters_not_allowed", NUL_MESSAGE
    if _SURROGATE.search(value):
        return "invalid", "Unpaired surrogates (\\ud800-\\udfff) are not text."
    return None
