"""Helpers for the identity tests: addresses, authentication-event reads, TOTP codes, moving the
stored login clocks back instead of sleeping, and a real SMTP server."""

from __future__ import annotations

import datetime
import time

import pytest
from axes.models import AccessAttempt, AccessAttemptExpiration
from django.db.models import F
from django_otp.oath import TOTP

from cs_platform.audit.models import AuditEvent
from cs_platform.identity.models import LoginLockout
from cs_platform.tenancy import context


def code_for(device, offset_steps: int = 0) -> str:
    """The code an authenticator app shows for `device` now (or `offset_steps` time steps later: a
    device refuses a step it already accepted, so a second code in one test takes the next step)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


def next_code(device) -> str:
    """A code the device will accept now: this time step's, or the next one's if this step was spent
    (it may be, by an enrolment or a login a moment ago in the same test)."""
    device.refresh_from_db()
    now_step = int((time.time() - device.t0) // device.step)
    return code_for(device, 1 if device.last_t >= now_step else 0)


def auth_events(world, action: str | None = None, user=None) -> list[AuditEvent]:
    """The tenant's auth.* events, oldest first (optionally one action, about one user)."""
    with context.tenant_context(world.tenant):
        events = AuditEvent.objects.filter(action__startswith="auth.").order_by("seq")
        if action:
            events = events.filter(action=action)
        if user is not None:
            events = events.filter(object_type="auth.user", object_id=str(user.pk))
        return list(events)


def age_login_records(seconds: int) -> None:
    """Move every stored login-throttling time `seconds` into the past: the same as waiting, for axes'
    attempt rows and their expiries and for our lockout history."""
    delta = datetime.timedelta(seconds=seconds)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - delta)
    AccessAttemptExpiration.objects.update(expires_at=F("expires_at") - delta)
    LoginLockout.objects.update(started_at=F("started_at") - delta, until=F("until") - delta)


@pytest.fixture
def eager_tasks():
    """Celery runs tasks in-process, as in the demo (no broker): the task body runs for real."""
    from cs_platform.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
