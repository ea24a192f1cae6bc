"""Growing lockouts on top of django-axes.

axes asks AXES_COOLOFF_TIME (this module's cool_off) how long failures count and a lockout lasts, for
the username and address of the request at hand. The answer is the step of LOGIN_LOCKOUT_STEPS given by
how many lockouts that username or address has had within LOGIN_LOCKOUT_MEMORY_SECONDS (identity's
LoginLockout rows, written when axes announces a lockout: services.login_lockout_record)."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from cs_platform.identity import selectors
from cs_platform.identity.client_address import client_address

# Set by the views on the request for steps that post no username (the code step, re-authentication).
USERNAME_ATTR = "identity_username"
_CACHE_ATTR = "_identity_cool_off"


def attempted_username(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    named = getattr(request, USERNAME_ATTR, None)
    if named:
        return named
    value = request.POST.get(settings.AXES_USERNAME_FORM_FIELD, "") if request.method == "POST" else ""
    return value[:255]


def step_for(level: int) -> datetime.timedelta:
    """The cool-off of the `level`-th lockout (1-based); the last step repeats."""
    steps = settings.LOGIN_LOCKOUT_STEPS
    return datetime.timedelta(seconds=steps[min(max(level, 1), len(steps)) - 1])


def cool_off(request: HttpRequest | None = None) -> datetime.timedelta:
    """axes' AXES_COOLOFF_TIME: the current lockout step of this request's username and address."""
    if request is None:
        return step_for(1)
    cached = getattr(request, _CACHE_ATTR, None)
    if cached is None:
        level = selectors.recent_lockout_count(username=attempted_username(request), ip=client_address(request))
        cached = step_for(level)
        setattr(request, _CACHE_ATTR, cached)
    return cached


def remember_cool_off(request: HttpRequest, value: datetime.timedelta) -> None:
    """A new lockout was just recorded: later questions in this request get its (longer) step."""
    setattr(request, _CACHE_ATTR, value)


def human_duration(delta: datetime.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400 and seconds % 86400 == 0:
        count, unit = seconds // 86400, "day"
    elif seconds >= 3600 and seconds % 3600 == 0:
        count, unit = seconds // 3600, "hour"
    elif seconds >= 60:
        count, unit = -(-seconds // 60), "minute"
    else:
        count, unit = seconds, "second"
    return f"{count} {unit}{'' if count == 1 else 's'}"


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """axes' AXES_LOCKOUT_CALLABLE: a page saying what happened and how long to wait, status 429.

    The same page whether the username exists or not, and whether the username or the address is
    locked: it must not tell an attacker which accounts exist."""
    wait = cool_off(request)
    response = render(
        request,
        "identity/locked_out.html",
        {"wait": human_duration(wait), "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    response["Retry-After"] = str(int(wait.total_seconds()))
    return response
