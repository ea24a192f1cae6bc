"""Time series the health score is computed from, and the daily health snapshots."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from cs_platform.tenancy.models import TenantOwned


class KpiMeasurement(TenantOwned):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="kpi_measurements")
    kpi = models.ForeignKey("segments.KpiDefinition", on_delete=models.PROTECT, related_name="measurements")
    measured_on = models.DateField()
    value = models.DecimalField(max_digits=14, decimal_places=4)
    source = models.CharField(max_length=40, default="manual", help_text="api, csv, manual, demo")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-measured_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "account", "kpi", "measured_on"], name="kpimeasurement_tenant_acct_kpi_day_uniq"
            )
        ]
        indexes = [models.Index(fields=["tenant", "kpi", "measured_on"], name="kpimeasurement_tenant_kpi_idx")]


class SurveyType(models.TextChoices):
    NPS = "nps", "NPS (0-10)"
    CSAT = "csat", "CSAT (1-5)"
    CES = "ces", "CES (1-7)"


SURVEY_SCALES = {SurveyType.NPS: (0, 10), SurveyType.CSAT: (1, 5), SurveyType.CES: (1, 7)}


class SurveyResponse(TenantOwned):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="survey_responses")
    contact = models.ForeignKey("accounts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    survey_type = models.CharField(max_length=5, choices=SurveyType.choices)
    score = models.PositiveSmallIntegerField(validators=[MinValueValidator(0), MaxValueValidator(10)])
    responded_on = models.DateField()
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-responded_on"]
        indexes = [
            models.Index(
                fields=["tenant", "account", "survey_type", "responded_on"], name="survey_tenant_acct_type_idx"
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(survey_type="nps", score__gte=0, score__lte=10)
                    | models.Q(survey_type="csat", score__gte=1, score__lte=5)
                    | models.Q(survey_type="ces", score__gte=1, score__lte=7)
                ),
                name="survey_score_in_scale",
            )
        ]


class Severity(models.TextChoices):
    SEV1 = "sev1", "Sev 1 (critical)"
    SEV2 = "sev2", "Sev 2 (major)"
    SEV3 = "sev3", "Sev 3 (minor)"
    SEV4 = "sev4", "Sev 4 (low)"


class Incident(TenantOwned):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="incidents")
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=5, choices=Severity.choices)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    escalated = models.BooleanField(default=False)
    external_ref = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["tenant", "account", "opened_at"], name="incident_tenant_acct_open_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(resolved_at__isnull=True) | models.Q(resolved_at__gte=models.F("opened_at")),
                name="incident_resolved_after_opened",
            )
        ]


class HealthBand(models.TextChoices):
    GREEN = "green", "Green"
    YELLOW = "yellow", "Yellow"
    RED = "red", "Red"
    GREY = "grey", "No data"


class HealthSnapshot(TenantOwned):
    """One account's health on one day: total, band and every component, so the score explains itself.

    components: [{"measure", "weight", "raw", "score", "effective_weight", "contribution", "band", "missing",
    "facts"}], heaviest measure first; segments.health_model.describe turns them into sentences for the page."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="health_snapshots")
    snapshot_date = models.DateField()
    total = models.DecimalField(max_digits=5, decimal_places=2)
    band = models.CharField(max_length=6, choices=HealthBand.choices)
    components = models.JSONField(default=list)
    change_7d = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    change_30d = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-snapshot_date"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "account", "snapshot_date"], name="health_tenant_acct_day_uniq")
        ]
        indexes = [models.Index(fields=["tenant", "snapshot_date", "band"], name="health_tenant_day_band_idx")]


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class NightlyRun(TenantOwned):
    """One nightly recompute of one tenant for one date: what ran, how it ended, and why it failed.
    Visible to the tenant's admins; the unique key makes "already done for this date" a lookup."""

    # A failed night is run again until it has had this many attempts (the watchdog and the 15-minute
    # dispatch both stop there); the runs page, the admins' home and the alert say so.
    MAX_ATTEMPTS = 3

    run_date = models.DateField()
    status = models.CharField(max_length=8, choices=RunStatus.choices, default=RunStatus.RUNNING)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Stamped by the running attempt (settings.NIGHTLY_HEARTBEAT_SECONDS); older than NIGHTLY_STALE_SECONDS
    # while "running" means its worker died, and the watchdog fails and retries the run.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The attempt whose failure the admins were last alerted to: one alert per failed attempt, not per tick.
    alerted_attempt = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-run_date"]
        constraints = [models.UniqueConstraint(fields=["tenant", "run_date"], name="nightlyrun_tenant_date_uniq")]

    def last_sign_of_life(self):
        return self.heartbeat_at or self.started_at

    def is_stale(self, now=None) -> bool:
        """Running, but no heartbeat for NIGHTLY_STALE_SECONDS: its worker is gone (the watchdog will
        fail it within NIGHTLY_WATCHDOG_SECONDS; pages show it as stuck until then)."""
        import datetime

        from django.conf import settings

        if self.status != RunStatus.RUNNING:
            return False
        limit = datetime.timedelta(seconds=settings.NIGHTLY_STALE_SECONDS)
        return (now or timezone.now()) - self.last_sign_of_life() > limit
