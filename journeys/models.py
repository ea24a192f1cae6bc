"""Journey templates (seed 000 phases), account journeys, and decisions/blockers (seed 002)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from cs_platform.tenancy.models import TenantOwned


class JourneyTemplate(TenantOwned):
    name = models.CharField(max_length=160)
    description = models.TextField(blank=True)
    # Null: applies to every segment.
    segment = models.ForeignKey("segments.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    is_default = models.BooleanField(default=False)
    is_reference = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="journeytemplate_tenant_name_uniq")]

    def __str__(self) -> str:
        return self.name


class Phase(TenantOwned):
    template = models.ForeignKey(JourneyTemplate, on_delete=models.CASCADE, related_name="phases")
    order = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=160)
    objective = models.CharField(max_length=255, blank=True)
    start_day = models.PositiveSmallIntegerField(help_text="Days after the journey starts.")
    end_day = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["template", "order"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "template", "order"], name="phase_tenant_template_order_uniq"),
            models.CheckConstraint(condition=models.Q(end_day__gt=models.F("start_day")), name="phase_days_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.start_day}-{self.end_day} days)"


class PhaseActivity(TenantOwned):
    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="activities")
    order = models.PositiveSmallIntegerField()
    text = models.CharField(max_length=255)

    class Meta:
        ordering = ["phase", "order"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "phase", "order"], name="phaseactivity_tenant_phase_order_uniq")
        ]

    def __str__(self) -> str:
        return self.text


class SuccessCriterion(TenantOwned):
    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="criteria")
    order = models.PositiveSmallIntegerField()
    text = models.CharField(max_length=255)

    class Meta:
        ordering = ["phase", "order"]
        verbose_name_plural = "success criteria"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "phase", "order"], name="criterion_tenant_phase_order_uniq")
        ]

    def __str__(self) -> str:
        return self.text


class JourneyStatus(models.TextChoices):
    ON_TRACK = "on_track", "On track"
    AT_RISK = "at_risk", "At risk"
    LATE = "late", "Late"
    COMPLETED = "completed", "Completed"


class AccountJourney(TenantOwned):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="journeys")
    template = models.ForeignKey(JourneyTemplate, on_delete=models.PROTECT, related_name="account_journeys")
    started_on = models.DateField()
    current_phase = models.ForeignKey(Phase, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=JourneyStatus.choices, default=JourneyStatus.ON_TRACK)
    status_reason = models.CharField(max_length=255, blank=True)
    status_computed_on = models.DateField(null=True, blank=True)
    completed_on = models.DateField(null=True, blank=True)
    # Days from the journey start to the end of onboarding (every Compliance Assessment and Integration
    # activity done) and to first value (the first Performance Optimization activity done).
    onboarding_days = models.PositiveIntegerField(null=True, blank=True)
    time_to_value_days = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "account", "template", "started_on"], name="accountjourney_tenant_acct_tpl_uniq"
            )
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="journey_tenant_status_idx")]

    def __str__(self) -> str:
        return f"{self.account} – {self.template}"


class ActivityStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class JourneyActivity(TenantOwned):
    """Progress of one template activity within one account's journey."""

    journey = models.ForeignKey(AccountJourney, on_delete=models.CASCADE, related_name="activity_progress")
    activity = models.ForeignKey(PhaseActivity, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=ActivityStatus.choices, default=ActivityStatus.NOT_STARTED)
    due_on = models.DateField()
    completed_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["due_on"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "journey", "activity"], name="journeyactivity_tenant_uniq")
        ]


class DecisionKind(models.TextChoices):
    DECISION = "decision", "Decision"
    BLOCKER = "blocker", "Blocker"


class DecisionStatus(models.TextChoices):
    OPEN = "open", "Open"
    ESCALATED = "escalated", "Escalated"
    RESOLVED = "resolved", "Resolved"
    FALLBACK_APPLIED = "fallback", "Fallback applied"


class Decision(TenantOwned):
    """A decision or blocker: one owner, a due date and a fallback (seed 002). Unresolved 48 hours past
    due it escalates to the owner's manager."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="decisions")
    journey = models.ForeignKey(
        AccountJourney, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    kind = models.CharField(max_length=10, choices=DecisionKind.choices, default=DecisionKind.DECISION)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_decisions")
    due_date = models.DateField()
    fallback = models.CharField(max_length=255, help_text="What happens if no decision is made by the due date.")
    # Seed 002's weekly summary links open blockers, their owners and the expected customer impact.
    customer_impact = models.CharField(
        max_length=255, blank=True, help_text="What the client feels if this is not decided in time."
    )
    status = models.CharField(max_length=10, choices=DecisionStatus.choices, default=DecisionStatus.OPEN)
    resolution = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_date"]
        indexes = [
            models.Index(fields=["tenant", "status", "due_date"], name="decision_tenant_status_due_idx"),
            models.Index(fields=["tenant", "account"], name="decision_tenant_account_idx"),
        ]

    def __str__(self) -> str:
        return self.title
