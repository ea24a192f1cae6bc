"""Receivers of signals from the layers below (metrics must not import webhooks)."""

from __future__ import annotations

from django.dispatch import receiver

from metrics.signals import nightly_run_failed
from webhooks import events
from webhooks.models import EventType


@receiver(nightly_run_failed, dispatch_uid="webhooks_nightly_run_failed")
def nightly_run_failed_emit(sender, *, tenant, run, **kwargs) -> None:
    """The `nightly_run.failed` event, in the alert's transaction: one per failed attempt of a date."""
    events.webhook_event_emit(
        tenant=tenant,
        event_type=EventType.NIGHTLY_RUN_FAILED,
        key=f"{run.run_date.isoformat()}:{run.attempts}",
        data=events.nightly_run_failed_data(run),
    )
