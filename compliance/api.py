"""REST API v1 resources of this app (serializers and viewsets), registered by cs_platform/api_urls.py: obligations,
evidence metadata, compliance audit results and accounts' daily compliance status. Token scope family
"compliance".

Reads go through compliance.selectors (always within visible_accounts: compliance officers see the whole
tenant, CSMs their book); writes through compliance.services. Browser sessions write by the capability
each viewset declares (cs_platform.tenancy.policy: ADD_OBLIGATIONS, RECORD_AUDITS); tokens by scope."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers

from accounts.api_fields import BookAccountField, in_book
from api.fields import DayField, MemberUserField, TenantPkField, display_name
from api.filters import DayFilter, IdFilter
from api.schema import EXAMPLE_SERVER, response_example
from api.viewsets import CreateMixin, TenantViewSet
from compliance import selectors
from compliance.models import (
    AuditOutcome,
    AuditResult,
    ComplianceStatusSnapshot,
    Evidence,
    Framework,
    Obligation,
    ObligationStatus,
    Requirement,
)
from compliance.services import audit_result_record, obligation_create
from cs_platform.tenancy.policy import Capability
from segments import reference

# --- Serializers -----------------------------------------------------------------------------------------

# The response examples tell one story: Harbor Point Bank (account 42) owes a SOC 2 Type II report
# (obligation 17, requirement 3), filed the 2026 report in October, and failed the 2026-11-20 audit with two
# open findings, so the nightly of 2026-11-23 shows the obligation, and the account, as failed.
# The framework and requirement are seed 000's (segments.reference).
_SOC2 = next(f for f in reference.FRAMEWORKS if f.code == "soc2")
_OBLIGATION_REQUEST = {"account": 42, "requirement": 3, "due_date": "2027-03-31", "owner": 9}
_OBLIGATION_READ_EXAMPLE = {
    "id": 17,
    **_OBLIGATION_REQUEST,
    "account_name": "Harbor Point Bank",
    "requirement": {
        "id": 3,
        "code": _SOC2.requirements[0][0],
        "title": _SOC2.requirements[0][1],
        "evidence_validity_days": 365,
        "framework": {"id": 7, "code": _SOC2.code, "name": _SOC2.name},
    },
    "status": "failed",
    "status_computed_at": "2026-11-23T02:10:00Z",
    "owner_name": "Marcus Okafor",
    "latest_audit": {"id": 64, "audited_on": "2026-11-20", "outcome": "failed", "open_findings": 2},
    "evidence": {"count": 1, "latest_valid_until": "2027-09-30"},
}
# What adding it answered: nothing filed or audited yet, status not computed until the nightly.
_OBLIGATION_CREATED_EXAMPLE = {
    **_OBLIGATION_READ_EXAMPLE,
    "status": "not_started",
    "status_computed_at": None,
    "latest_audit": None,
    "evidence": {"count": 0, "latest_valid_until": None},
}
_EVIDENCE_EXAMPLE = {
    "id": 233,
    "obligation": 17,
    "account": 42,
    "name": "harbor-point-soc2-type2-2026.pdf",
    "sha256": "9f2c4e7a1b8d3f60c5e2a9147d6b0e8f3a5c7d9e1f2b4a6c8d0e2f4a6b8c0d2e",
    "size_bytes": 1843200,
    "content_type": "application/pdf",
    "valid_from": "2026-10-01",
    "valid_until": "2027-09-30",
    "uploaded_by": 9,
    "uploaded_by_name": "Marcus Okafor",
    "uploaded_at": "2026-10-06T13:22:41Z",
    "download_url": f"{EXAMPLE_SERVER}/compliance/evidence/233/download/",
}
_AUDIT_REQUEST = {
    "obligation": 17,
    "audited_on": "2026-11-20",
    "outcome": "failed",
    "open_findings": 2,
    "auditor": "Northbridge Assurance",
    "notes": "Access reviews not evidenced for Q3.",
}
_STATUS_EXAMPLE = {
    "id": 5120,
    "account": 42,
    "account_name": "Harbor Point Bank",
    "date": "2026-11-23",
    "status": "failed",
    "counts": {"compliant": 6, "expiring": 1, "failed": 1},
}


class FrameworkRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Framework
        fields = ["id", "code", "name"]


class RequirementRefSerializer(serializers.ModelSerializer):
    framework = FrameworkRefSerializer(read_only=True)

    class Meta:
        model = Requirement
        fields = ["id", "code", "title", "evidence_validity_days", "framework"]


class LatestAuditSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    audited_on = serializers.DateField()
    outcome = serializers.ChoiceField(choices=AuditOutcome.choices)
    open_findings = serializers.IntegerField()


class EvidenceSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    latest_valid_until = serializers.DateField(
        allow_null=True, help_text="The latest validity end of the obligation's evidence (null: none filed)."
    )


@response_example("SOC 2 audit failed", _OBLIGATION_READ_EXAMPLE)
class ObligationSerializer(serializers.ModelSerializer):
    account_name = serializers.CharField(source="account.name", read_only=True)
    requirement = RequirementRefSerializer(read_only=True)
    owner_name = serializers.SerializerMethodField()
    latest_audit = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()

    class Meta:
        model = Obligation
        fields = [
            "id",
            "account",
            "account_name",
            "requirement",
            "due_date",
            "status",
            "status_computed_at",
            "owner",
            "owner_name",
            "latest_audit",
            "evidence",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_owner_name(self, obligation: Obligation) -> str | None:
        return display_name(obligation.owner)

    @extend_schema_field(LatestAuditSerializer(allow_null=True))
    def get_latest_audit(self, obligation: Obligation) -> dict | None:
        if obligation.latest_audit_id is None:
            return None
        return {
            "id": obligation.latest_audit_id,
            "audited_on": obligation.latest_audit_on,
            "outcome": obligation.latest_audit_outcome,
            "open_findings": obligation.latest_audit_findings,
        }

    @extend_schema_field(EvidenceSummarySerializer)
    def get_evidence(self, obligation: Obligation) -> dict:
        return {"count": obligation.evidence_count, "latest_valid_until": obligation.evidence_valid_until}


class ObligationCreateSerializer(serializers.Serializer):
    account = BookAccountField()
    requirement = TenantPkField(Requirement)
    due_date = DayField()
    owner = MemberUserField(required=False, allow_null=True, default=None, help_text="An active member's user id.")


@response_example("SOC 2 report", _EVIDENCE_EXAMPLE)
class EvidenceSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="obligation.account_id", read_only=True)
    name = serializers.CharField(source="filename", read_only=True)
    sha256 = serializers.CharField(source="checksum_sha256", read_only=True)
    uploaded_by_name = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = [
            "id",
            "obligation",
            "account",
            "name",
            "sha256",
            "size_bytes",
            "content_type",
            "valid_from",
            "valid_until",
            "uploaded_by",
            "uploaded_by_name",
            "uploaded_at",
            "download_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_uploaded_by_name(self, evidence: Evidence) -> str | None:
        return display_name(evidence.uploaded_by)

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, evidence: Evidence) -> str:
        # The browser download (session login, same book check); the API itself never serves the bytes.
        url = reverse("evidence_download", kwargs={"evidence_id": evidence.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


@response_example("failed with findings", {"id": 64, **_AUDIT_REQUEST, "account": 42})
class AuditResultSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="obligation.account_id", read_only=True)

    class Meta:
        model = AuditResult
        fields = ["id", "obligation", "account", "audited_on", "outcome", "open_findings", "auditor", "notes"]
        read_only_fields = fields


class AuditResultCreateSerializer(serializers.Serializer):
    obligation = TenantPkField(Obligation, "obligation", queryset=in_book(Obligation))
    audited_on = DayField()
    outcome = serializers.ChoiceField(choices=AuditOutcome.choices)
    open_findings = serializers.IntegerField(default=0, help_text="A passed audit leaves none.")
    auditor = serializers.CharField(max_length=160, required=False, allow_blank=True, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="")


@response_example("failed", _STATUS_EXAMPLE)
class ComplianceStatusSerializer(serializers.ModelSerializer):
    account_name = serializers.CharField(source="account.name", read_only=True)
    date = serializers.DateField(source="snapshot_date", read_only=True)
    counts = serializers.DictField(
        child=serializers.IntegerField(), read_only=True, help_text='Obligations per status, e.g. {"overdue": 2}.'
    )

    class Meta:
        model = ComplianceStatusSnapshot
        fields = ["id", "account", "account_name", "date", "status", "counts"]
        read_only_fields = fields


# --- Filters -----------------------------------------------------------------------------------------------


class ObligationFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id", label="Obligations of this account (id).")
    framework = filters.CharFilter(field_name="requirement__framework__code", label="Framework code, e.g. soc2.")
    requirement = IdFilter(field_name="requirement_id", label="Obligations under this requirement (id).")
    status = filters.ChoiceFilter(choices=ObligationStatus.choices, label="As last computed by the nightly.")
    due_before = DayFilter(field_name="due_date", lookup_expr="lte", label="Due on or before this date.")
    due_after = DayFilter(field_name="due_date", lookup_expr="gte", label="Due on or after this date.")
    expiring_before = DayFilter(
        field_name="evidence_valid_until", lookup_expr="lte", label="Latest evidence valid until this date or earlier."
    )
    expiring_after = DayFilter(
        field_name="evidence_valid_until", lookup_expr="gte", label="Latest evidence valid until this date or later."
    )

    class Meta:
        model = Obligation
        fields = ["account", "framework", "requirement", "status", "due_before", "due_after"]


class EvidenceFilter(filters.FilterSet):
    obligation = IdFilter(field_name="obligation_id", label="Evidence of this obligation (id).")
    account = IdFilter(field_name="obligation__account_id", label="Evidence of this account's obligations (id).")
    expiring_before = DayFilter(field_name="valid_until", lookup_expr="lte", label="Valid until this date or earlier.")
    content_type = filters.CharFilter(label="Detected content type, e.g. application/pdf.")

    class Meta:
        model = Evidence
        fields = ["obligation", "account", "expiring_before", "content_type"]


class AuditResultFilter(filters.FilterSet):
    obligation = IdFilter(field_name="obligation_id", label="Audits of this obligation (id).")
    account = IdFilter(field_name="obligation__account_id", label="Audits of this account's obligations (id).")
    framework = filters.CharFilter(field_name="obligation__requirement__framework__code", label="Framework code.")
    outcome = filters.ChoiceFilter(choices=AuditOutcome.choices)
    audited_before = DayFilter(field_name="audited_on", lookup_expr="lte")
    audited_after = DayFilter(field_name="audited_on", lookup_expr="gte")

    class Meta:
        model = AuditResult
        fields = ["obligation", "account", "framework", "outcome", "audited_before", "audited_after"]


class ComplianceStatusFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id", label="This account's snapshots (id).")
    status = filters.ChoiceFilter(choices=ObligationStatus.choices, label="The account's worst obligation status.")
    date = DayFilter(method="filter_date", label="The snapshot day; the tenant's latest snapshot day if left out.")
    framework = filters.CharFilter(
        method="filter_framework",
        label="Accounts with obligations under this framework code (the status stays the account's overall one).",
    )

    class Meta:
        model = ComplianceStatusSnapshot
        fields = ["account", "status", "date", "framework"]

    def filter_date(self, queryset, name, value):
        return queryset.filter(snapshot_date=value)

    def filter_framework(self, queryset, name, value):
        in_framework = Obligation.objects.filter(requirement__framework__code=value).values("account_id")
        return queryset.filter(Q(account_id__in=in_framework))


# --- Viewsets ----------------------------------------------------------------------------------------------


class ComplianceViewSet(TenantViewSet):
    scope_family = "compliance"


_OBLIGATION_EXAMPLE = OpenApiExample("SOC 2 report due", value=_OBLIGATION_REQUEST, request_only=True)
_OBLIGATION_CREATED = OpenApiExample(
    "SOC 2 report due", value=_OBLIGATION_CREATED_EXAMPLE, response_only=True, status_codes=["201"]
)
_AUDIT_EXAMPLE = OpenApiExample("Failed with findings", value=_AUDIT_REQUEST, request_only=True)


@extend_schema_view(
    list=extend_schema(summary="List compliance obligations"),
    retrieve=extend_schema(summary="One compliance obligation"),
    create=extend_schema(
        summary="Add an obligation to an account",
        description="One per account and requirement; the requirement must apply to the account's segment. "
        "Sessions: admins, managers, CSMs and compliance officers. Tokens: compliance:write.",
        request=ObligationCreateSerializer,
        responses={201: ObligationSerializer},
        examples=[_OBLIGATION_EXAMPLE, _OBLIGATION_CREATED],
    ),
)
class ObligationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, ComplianceViewSet):
    """Compliance obligations of the caller's book: requirement and framework, due date, status as last
    computed by the nightly, owner, the latest audit and a summary of the evidence filed."""

    lookup_url_kwarg = "obligation_id"
    filterset_class = ObligationFilter
    serializer_class = ObligationSerializer
    ordering = ("due_date", "id")
    ordering_fields = ["due_date", "id"]

    capabilities = {"create": Capability.ADD_OBLIGATIONS}
    input_serializers = {"create": ObligationCreateSerializer}
    queryset = Obligation._plain.none()

    def visible_queryset(self) -> QuerySet[Obligation]:
        return selectors.obligation_list(self.request.user, self.membership)

    def perform_create(self, serializer) -> None:
        serializer.instance = obligation_create(
            tenant=self.tenant, actor=self.request.user, **serializer.validated_data
        )


@extend_schema_view(
    list=extend_schema(summary="List evidence (metadata)"),
    retrieve=extend_schema(summary="One evidence file's metadata"),
)
class EvidenceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ComplianceViewSet):
    """Evidence filed against the caller's book's obligations: name, SHA-256, size, detected content type,
    validity, uploader. Metadata only: `download_url` is the browser download (a logged-in session of the
    same book); files are uploaded on the obligation's evidence page."""

    lookup_url_kwarg = "evidence_id"
    filterset_class = EvidenceFilter
    serializer_class = EvidenceSerializer
    ordering = ("-valid_until", "-id")
    ordering_fields = ["valid_until", "uploaded_at", "id"]

    queryset = Evidence._plain.none()

    def visible_queryset(self) -> QuerySet[Evidence]:
        return selectors.evidence_list(self.request.user, self.membership)


@extend_schema_view(
    list=extend_schema(summary="List compliance audit results"),
    retrieve=extend_schema(summary="One compliance audit result"),
    create=extend_schema(
        summary="Record a compliance audit result",
        description="A passed audit leaves no open findings. The obligation's status follows at the next "
        "nightly recompute. Sessions: admins, managers, CSMs and compliance officers. Tokens: compliance:write.",
        request=AuditResultCreateSerializer,
        responses={201: AuditResultSerializer},
        examples=[_AUDIT_EXAMPLE],
    ),
)
class AuditResultViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, ComplianceViewSet):
    """Compliance audits of the caller's book's obligations (outcome, open findings, auditor). Not the
    audit trail of changes, which is /api/v1/audit-events/."""

    lookup_url_kwarg = "audit_result_id"
    filterset_class = AuditResultFilter
    serializer_class = AuditResultSerializer
    ordering = ("-audited_on", "-id")
    ordering_fields = ["audited_on", "id"]

    capabilities = {"create": Capability.RECORD_AUDITS}
    input_serializers = {"create": AuditResultCreateSerializer}
    queryset = AuditResult._plain.none()

    def visible_queryset(self) -> QuerySet[AuditResult]:
        return selectors.audit_result_list(self.request.user, self.membership)

    def perform_create(self, serializer) -> None:
        serializer.instance = audit_result_record(
            tenant=self.tenant, actor=self.request.user, **serializer.validated_data
        )


@extend_schema_view(
    list=extend_schema(summary="List accounts' compliance status"),
    retrieve=extend_schema(summary="One account's compliance status on one day"),
)
class ComplianceStatusViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ComplianceViewSet):
    """Each account's compliance status on a day, from the nightly snapshot: the worst status of its
    obligations and the number of obligations per status. The list shows the tenant's latest snapshot day
    unless `date` names another; per-obligation statuses are in /api/v1/obligations/."""

    lookup_url_kwarg = "status_id"
    filterset_class = ComplianceStatusFilter
    serializer_class = ComplianceStatusSerializer
    ordering = ("account_id", "id")
    ordering_fields = ["account_id", "id"]

    queryset = ComplianceStatusSnapshot._plain.none()

    def visible_queryset(self) -> QuerySet[ComplianceStatusSnapshot]:
        snapshots = selectors.compliance_status_list(self.request.user, self.membership)
        if self.action == "list" and not self.request.query_params.get("date"):
            # The current status by default; a detail URL names its day itself.
            snapshots = snapshots.filter(snapshot_date=selectors.latest_snapshot_day())
        return snapshots


def register(router) -> None:
    router.register("obligations", ObligationViewSet, basename="api-obligation")
    router.register("evidence", EvidenceViewSet, basename="api-evidence")
    router.register("audit-results", AuditResultViewSet, basename="api-audit-result")
    router.register("compliance-statuses", ComplianceStatusViewSet, basename="api-compliance-status")


urlpatterns: list = []
