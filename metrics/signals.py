"""Signals the nightly engine sends for layers above it (metrics must not import them).

nightly_run_failed(sender=NightlyRun, tenant=Tenant, run=NightlyRun): a run's attempt failed or stalled
and the admins are being alerted; sent inside the alert's transaction, once per failed attempt. The
webhooks app turns it into the `nightly_run.failed` event."""

from django.dispatch import Signal

nightly_run_failed = Signal()
