"""Client accounts (financial institutions), their contacts, touchpoints and CSM permissions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from guardian.managers import UserObjectPermissionManager
from guardian.models import UserObjectPermissionBase

from cs_platform.tenancy.managers import TenantManager
from cs_platform.tenancy.models import TenantOwned


class Tier(models.TextChoices):
    STRATEGIC = "strategic", "Strategic"
    ENTERPRISE = "enterprise", "Enterprise"
    MID_MARKET = "mid_market", "Mid-market"
    GROWTH = "growth", "Growth"


class LifecycleStage(models.TextChoices):
    ONBOARDING = "onboarding", "Onboarding"
    IMPLEMENTATION = "implementation", "Implementation"
    ADOPTION = "adoption", "Adoption"
    EXPANSION = "expansion", "Expansion"
    RENEWAL = "renewal", "Renewal"
    AT_RISK = "at_risk", "At risk"
    CHURNED = "churned", "Churned"


class DataStandard(models.TextChoices):
    FIX = "FIX", "FIX Protocol"
    ISO_20022 = "ISO 20022", "ISO 20022"
    OFX = "OFX", "Open Financial Exchange"
    XBRL = "XBRL", "XBRL"


class Account(TenantOwned):
    name = models.CharField(max_length=200)
    segment = models.ForeignKey("segments.Segment", on_delete=models.PROTECT, related_name="accounts")
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.MID_MARKET)
    arr = models.DecimalField("ARR", max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="USD")
    contract_start = models.DateField(null=True, blank=True)
    renewal_date = models.DateField(null=True, blank=True)
    lifecycle_stage = models.CharField(max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.ONBOARDING)
    owner_csm = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_accounts"
    )
    executive_sponsor = models.CharField(max_length=200, blank=True)
    jurisdictions = models.JSONField(default=list, blank=True, help_text='e.g. ["US-NY", "US-CA", "EU"]')
    regulators = models.JSONField(default=list, blank=True, help_text='e.g. ["SEC", "FINRA", "OCC"]')
    data_standards = models.JSONField(default=list, blank=True, help_text="FIX, ISO 20022, OFX, XBRL")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="account_tenant_name_uniq")]
        indexes = [
            models.Index(fields=["tenant", "segment"], name="account_tenant_segment_idx"),
            models.Index(fields=["tenant", "owner_csm"], name="account_tenant_owner_idx"),
            models.Index(fields=["tenant", "renewal_date"], name="account_tenant_renewal_idx"),
        ]
        permissions = [("manage_account", "Can manage the account as its CSM")]

    def __str__(self) -> str:
        return self.name


class Contact(TenantOwned):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=120, blank=True)
    is_executive_sponsor = models.BooleanField(default=False)
    is_primary = models.BooleanField(default=False)

    class Meta:
        ordering = ["account", "name"]
        indexes = [models.Index(fields=["tenant", "account"], name="contact_tenant_account_idx")]

    def __str__(self) -> str:
        return self.name


class TouchpointKind(models.TextChoices):
    MEETING = "meeting", "Meeting"
    QBR = "qbr", "Quarterly business review"
    EMAIL = "email", "Email"
    CALL = "call", "Call"
    INCIDENT = "incident", "Incident"
    NOTE = "note", "Note"


class Touchpoint(TenantOwned):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="touchpoints")
    kind = models.CharField(max_length=20, choices=TouchpointKind.choices)
    occurred_at = models.DateTimeField()
    subject = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="touchpoints")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["tenant", "account", "occurred_at"], name="touchpoint_tenant_acct_at_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"


class AccountPermissionManager(TenantManager, UserObjectPermissionManager):
    """Fail-closed tenant filtering (first in the MRO) plus guardian's assign/remove helpers."""


class AccountUserObjectPermission(TenantOwned, UserObjectPermissionBase):
    """guardian direct-FK object permission on an account, carrying the tenant (RLS applies).

    Guardian finds this table through the `content_object` FK; a CSM's book is the set of accounts
    they hold view_account on."""

    content_object = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="user_permissions")

    objects = AccountPermissionManager()

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False
        unique_together = []
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user", "permission", "content_object"], name="accountperm_tenant_user_perm_obj_uniq"
            )
        ]
        indexes = [models.Index(fields=["tenant", "user", "permission"], name="accountperm_tenant_user_idx")]
