"""REST API v1 resources of this app (serializers and viewsets), registered by cs_platform/api_urls.py:

* /api/v1/measurements/, /surveys/, /incidents/ (scope family "metrics"): list, retrieve, create, and
  POST /incidents/{incident_id}/resolve/;
* /api/v1/measurements/bulk, /surveys/bulk, /incidents/bulk (no trailing slash, "metrics:write"):
  all-or-nothing bulk ingest with an optional Idempotency-Key (api/idempotency.py);
* /api/v1/health-scores/ and /health-scores/latest/ (scope family "health"): read-only.

Every row hangs off an account, so every queryset goes through the caller's book (visible_accounts):
another tenant's or another book's object is a 404, and an account id outside it in a body is a 400
on that field. Writes go through metrics.services."""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.db import transaction
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_fields import BookAccountField, in_book
from accounts.models import Contact
from accounts.selectors import visible_accounts
from api.errors import ErrorSerializer, error_body
from api.fields import DayField, MomentField, TenantPkField
from api.filters import DayFilter, IdFilter, MomentFilter
from api.idempotency import (
    HEADER,
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    IdempotencyConflict,
    idempotency_claim,
    idempotency_store,
    request_fingerprint,
)
from api.models import ApiToken
from api.schema import response_example
from api.viewsets import CreateMixin, TenantViewSet, TenantViewSetMixin, action_body
from cs_platform.tenancy.policy import Capability
from metrics import bulk, selectors, services
from metrics.models import HealthBand, HealthSnapshot, Incident, KpiMeasurement, Severity, SurveyResponse, SurveyType
from segments.health_model import describe
from segments.models import KpiDefinition


def _list_schema(serializer: type[serializers.Serializer], **kwargs):
    """A list operation (also for the `latest` action, which is not the viewset's `list`)."""
    return extend_schema(responses={200: serializer(many=True)}, **kwargs)


# --- Measurements ---------------------------------------------------------------------------------------------
# KPI 2 is the reference KPI risk_reduction of segment 1 "bank" (seed 000: 25-35% operational risk
# reduction), the segment of account 42; see segments/api.py for the KPI as the API shows it.
_MEASUREMENT_EXAMPLE = {"account": 42, "kpi": 2, "measured_on": "2026-11-20", "value": "28.5000"}
_MEASUREMENT_READ_EXAMPLE = {
    "id": 8876,
    **_MEASUREMENT_EXAMPLE,
    "kpi_code": "risk_reduction",
    "source": "api",
    "recorded_at": "2026-11-20T11:29:40Z",
}


@response_example("A daily value", _MEASUREMENT_READ_EXAMPLE)
class KpiMeasurementSerializer(serializers.ModelSerializer):
    account = BookAccountField(help_text="Id of an account of the caller's book.")
    kpi = TenantPkField(KpiDefinition, "KPI", help_text="Id of a KPI of the account's segment.")
    kpi_code = serializers.CharField(source="kpi.code", read_only=True)
    value = serializers.DecimalField(max_digits=14, decimal_places=4)

    class Meta:
        model = KpiMeasurement
        fields = ["id", "account", "kpi", "kpi_code", "measured_on", "value", "source", "recorded_at"]
        read_only_fields = ["id", "source", "recorded_at"]


class MeasurementFilter(django_filters.FilterSet):
    account = IdFilter(field_name="account_id", help_text="Only this account's values.")
    kpi = IdFilter(field_name="kpi_id", help_text="Only this KPI (id).")
    kpi_code = django_filters.CharFilter(field_name="kpi__code", help_text="Only KPIs with this code.")
    measured_after = DayFilter(field_name="measured_on", lookup_expr="gte", help_text="On or after.")
    measured_before = DayFilter(field_name="measured_on", lookup_expr="lte", help_text="On or before.")

    class Meta:
        model = KpiMeasurement
        fields: list[str] = []


@extend_schema_view(
    list=_list_schema(KpiMeasurementSerializer),
    create=extend_schema(
        summary="Record a KPI value",
        description="A second value for the same account, KPI and day replaces the first (the audit trail keeps "
        "both). The KPI must belong to the account's segment; the day may not be in the future.",
        examples=[OpenApiExample("A daily value", value=_MEASUREMENT_EXAMPLE, request_only=True)],
    ),
)
class KpiMeasurementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, TenantViewSet):
    """KPI measurements of the accounts in the caller's book: one value per account, KPI and day.
    Scope family `metrics`. Many values at once: POST /api/v1/measurements/bulk. Browser sessions write
    as admins, managers and CSMs."""

    scope_family = "metrics"
    capabilities = {"create": Capability.RECORD_MEASUREMENTS}
    serializer_class = KpiMeasurementSerializer
    filterset_class = MeasurementFilter
    lookup_url_kwarg = "measurement_id"
    ordering_fields = ["measured_on", "recorded_at", "id"]
    ordering = ["-measured_on", "-id"]

    queryset = KpiMeasurement._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return selectors.measurements_visible(self.request.user, self.membership)

    def perform_create(self, serializer) -> None:
        serializer.instance = services.kpi_measurement_record(
            tenant=self.tenant, actor=self.request.user, source="api", **serializer.validated_data
        )


# --- Surveys ----------------------------------------------------------------------------------------------------
# Contact 31 is Priya Raman of account 42 (the contact example in accounts/api.py).
_SURVEY_EXAMPLE = {
    "account": 42,
    "contact": 31,
    "survey_type": "nps",
    "score": 9,
    "responded_on": "2026-11-20",
    "comment": "The wire cut-over went smoothly.",
}


@response_example("An NPS response", {"id": 5120, **_SURVEY_EXAMPLE})
class SurveyResponseSerializer(serializers.ModelSerializer):
    account = BookAccountField(help_text="Id of an account of the caller's book.")
    contact = TenantPkField(
        Contact,
        "contact",
        queryset=in_book(Contact),
        required=False,
        allow_null=True,
        help_text="A contact of the account.",
    )
    survey_type = serializers.ChoiceField(choices=SurveyType.choices)
    score = serializers.IntegerField(help_text="NPS 0-10, CSAT 1-5, CES 1-7.")

    class Meta:
        model = SurveyResponse
        fields = ["id", "account", "contact", "survey_type", "score", "responded_on", "comment"]
        read_only_fields = ["id"]


class SurveyFilter(django_filters.FilterSet):
    account = IdFilter(field_name="account_id", help_text="Only this account's responses.")
    survey_type = django_filters.ChoiceFilter(choices=SurveyType.choices)
    responded_after = DayFilter(field_name="responded_on", lookup_expr="gte", help_text="On or after.")
    responded_before = DayFilter(field_name="responded_on", lookup_expr="lte", help_text="On or before.")

    class Meta:
        model = SurveyResponse
        fields: list[str] = []


@extend_schema_view(
    list=_list_schema(SurveyResponseSerializer),
    create=extend_schema(
        summary="Record a survey response",
        description="The score must be in the survey type's scale; the day may not be in the future (tenant's time "
        "zone); the contact, if given, must belong to the account.",
        examples=[OpenApiExample("An NPS response", value=_SURVEY_EXAMPLE, request_only=True)],
    ),
)
class SurveyResponseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, TenantViewSet):
    """NPS, CSAT and CES survey responses of the accounts in the caller's book. Scope family `metrics`.
    Many at once: POST /api/v1/surveys/bulk. Browser sessions write as admins, executives, managers and CSMs
    (as the account page's survey form)."""

    scope_family = "metrics"
    capabilities = {"create": Capability.RECORD_SURVEYS}
    serializer_class = SurveyResponseSerializer
    filterset_class = SurveyFilter
    lookup_url_kwarg = "survey_id"
    ordering_fields = ["responded_on", "id"]
    ordering = ["-responded_on", "-id"]

    queryset = SurveyResponse._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return selectors.surveys_visible(self.request.user, self.membership)

    def perform_create(self, serializer) -> None:
        serializer.instance = services.survey_response_record(
            tenant=self.tenant, actor=self.request.user, **serializer.validated_data
        )


# --- Incidents --------------------------------------------------------------------------------------------------
_INCIDENT_EXAMPLE = {
    "account": 42,
    "title": "Payment file rejected",
    "severity": "sev2",
    "escalated": False,
    "external_ref": "JIRA-1234",
}
_INCIDENT_READ_EXAMPLE = {"id": 3318, **_INCIDENT_EXAMPLE, "opened_at": "2026-11-20T08:00:00Z", "resolved_at": None}
_RESOLVED_AT = "2026-11-20T11:30:00Z"


@response_example("An open incident", _INCIDENT_READ_EXAMPLE)
class IncidentSerializer(serializers.ModelSerializer):
    account = BookAccountField(help_text="Id of an account of the caller's book.")
    severity = serializers.ChoiceField(choices=Severity.choices)
    opened_at = MomentField(required=False, help_text="Defaults to now.")

    class Meta:
        model = Incident
        fields = ["id", "account", "title", "severity", "opened_at", "resolved_at", "escalated", "external_ref"]
        read_only_fields = ["id", "resolved_at"]


class IncidentResolveSerializer(serializers.Serializer):
    resolved_at = MomentField(required=False, help_text="Defaults to now; not before opened_at.")


class IncidentFilter(django_filters.FilterSet):
    account = IdFilter(field_name="account_id", help_text="Only this account's incidents.")
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    open = django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull", help_text="Unresolved only.")
    opened_after = MomentFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = MomentFilter(field_name="opened_at", lookup_expr="lte")

    class Meta:
        model = Incident
        fields: list[str] = []


@extend_schema_view(
    list=_list_schema(IncidentSerializer),
    create=extend_schema(
        summary="Open an incident",
        examples=[OpenApiExample("A major incident", value=_INCIDENT_EXAMPLE, request_only=True)],
    ),
    resolve=extend_schema(
        summary="Resolve an incident",
        request=IncidentResolveSerializer,
        responses=IncidentSerializer,
        examples=[
            OpenApiExample("Resolved now", value={}, request_only=True),
            OpenApiExample("Resolved at a given time", value={"resolved_at": _RESOLVED_AT}, request_only=True),
            # The serializer's example is an open incident; a resolve answers it resolved.
            OpenApiExample(
                "Resolved",
                value={**_INCIDENT_READ_EXAMPLE, "resolved_at": _RESOLVED_AT},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    ),
)
class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, TenantViewSet):
    """Support incidents of the accounts in the caller's book (escalations and time to resolve feed the
    health score). Scope family `metrics`. Many at once: POST /api/v1/incidents/bulk. Browser sessions open
    and resolve them as admins, managers and CSMs."""

    scope_family = "metrics"
    capabilities = {"create": Capability.MANAGE_INCIDENTS, "resolve": Capability.MANAGE_INCIDENTS}
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    lookup_url_kwarg = "incident_id"
    ordering_fields = ["opened_at", "id"]
    ordering = ["-opened_at", "-id"]

    input_serializers = {"resolve": IncidentResolveSerializer}
    queryset = Incident._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return selectors.incidents_visible(self.request.user, self.membership)

    def perform_create(self, serializer) -> None:
        serializer.instance = services.incident_open(
            tenant=self.tenant, actor=self.request.user, **serializer.validated_data
        )

    @action(detail=True, methods=["post"])
    def resolve(self, request, *args, **kwargs):
        incident = self.get_object()
        data = self.parse(action_body(request)).validated_data
        incident = services.incident_resolve(tenant=self.tenant, incident=incident, actor=request.user, **data)
        return self.answer(incident)


# --- Health scores ----------------------------------------------------------------------------------------------
class HealthComponentSerializer(serializers.Serializer):
    measure = serializers.CharField(help_text="The measure's code, e.g. nps, kpi_attainment, mttr.")
    label = serializers.CharField()
    rule = serializers.CharField(help_text="How the raw value becomes a 0-100 score.")
    weight = serializers.FloatField(help_text="The scorecard weight.")
    effective_weight = serializers.FloatField(help_text="The weight after re-weighting for missing measures.")
    raw = serializers.FloatField(allow_null=True)
    score = serializers.FloatField(allow_null=True, help_text="0-100; null when the data is missing.")
    contribution = serializers.FloatField(help_text="Points this measure adds to the total.")
    band = serializers.CharField(help_text="green, yellow, red, or missing.")
    missing = serializers.BooleanField()
    display = serializers.CharField(help_text="The raw value as a reader sees it on the account page.")
    facts = serializers.DictField(help_text="The inputs behind the raw value.")
    kpis = serializers.ListField(child=serializers.DictField(), help_text="KPI attainment: each KPI, by name.")


class HealthScoreSerializer(serializers.ModelSerializer):
    account_name = serializers.CharField(source="account.name", read_only=True)
    date = serializers.DateField(source="snapshot_date")
    score = serializers.DecimalField(source="total", max_digits=5, decimal_places=2, help_text="0-100.")
    components = serializers.SerializerMethodField()

    class Meta:
        model = HealthSnapshot
        fields = [
            "id",
            "account",
            "account_name",
            "date",
            "score",
            "band",
            "change_7d",
            "change_30d",
            "computed_at",
            "components",
        ]

    @extend_schema_field(HealthComponentSerializer(many=True))
    def get_components(self, snapshot: HealthSnapshot) -> list[dict]:
        # The explanation stored with the score, described as the account page shows it, heaviest first.
        return describe(snapshot.components, kpi_names=self.context["kpi_names"])


class HealthFilter(django_filters.FilterSet):
    account = IdFilter(field_name="account_id", help_text="Only this account's history.")
    band = django_filters.ChoiceFilter(choices=HealthBand.choices)
    date_after = DayFilter(field_name="snapshot_date", lookup_expr="gte", help_text="On or after.")
    date_before = DayFilter(field_name="snapshot_date", lookup_expr="lte", help_text="On or before.")

    class Meta:
        model = HealthSnapshot
        fields: list[str] = []


_HEALTH_EXAMPLE = OpenApiExample(
    "A yellow score and why",
    response_only=True,
    value={
        "id": 90311,
        "account": 42,
        "account_name": "Harbor Point Bank",
        "date": "2026-11-23",
        "score": "58.40",
        "band": "yellow",
        "change_7d": "-6.10",
        "change_30d": "-11.80",
        "computed_at": "2026-11-23T02:04:51Z",
        # Two of the components, as segments.health_model.describe gives them (numbers unrounded, as stored).
        "components": [
            {
                "measure": "kpi_attainment",
                "label": "KPI attainment",
                "rule": "mean of per-KPI scores: 100 if met, -4 per 1 % short",
                "weight": 30.0,
                "effective_weight": 30.0,
                "raw": 25.0,
                "score": 81.34883720930232,
                "contribution": 24.404651162790696,
                "band": "green",
                "missing": False,
                "display": "1 of 4 targets met",
                "facts": {
                    "met": 1,
                    "of": 4,
                    "kpis": [
                        {"kpi": "compliance_audit_success", "value": 96.0, "met": False, "score": 84.0},
                        {"kpi": "customer_trust", "value": 4.1, "met": False, "score": 81.39534883720928},
                        {"kpi": "operational_efficiency", "value": 18.0, "met": False, "score": 60.0},
                        {"kpi": "risk_reduction", "value": 27.5, "met": True, "score": 100.0},
                    ],
                },
                "kpis": [
                    {
                        "kpi": "compliance_audit_success",
                        "value": 96.0,
                        "met": False,
                        "score": 84.0,
                        "name": "Compliance audit success rate",
                    },
                    {
                        "kpi": "customer_trust",
                        "value": 4.1,
                        "met": False,
                        "score": 81.39534883720928,
                        "name": "Customer trust scores",
                    },
                    {
                        "kpi": "operational_efficiency",
                        "value": 18.0,
                        "met": False,
                        "score": 60.0,
                        "name": "Operational efficiency gains",
                    },
                    {
                        "kpi": "risk_reduction",
                        "value": 27.5,
                        "met": True,
                        "score": 100.0,
                        "name": "Risk reduction achievement",
                    },
                ],
            },
            {
                "measure": "nps",
                "label": "NPS",
                "rule": "(NPS + 100) / 2 over 180 days",
                "weight": 20.0,
                "effective_weight": 20.0,
                "raw": 30.76923076923077,
                "score": 65.38461538461539,
                "contribution": 13.076923076923077,
                "band": "yellow",
                "missing": False,
                "display": "NPS +31 (13 responses)",
                "facts": {"n": 13},
                "kpis": [],
            },
        ],
    },
)


@extend_schema_view(list=_list_schema(HealthScoreSerializer, examples=[_HEALTH_EXAMPLE]))
class HealthScoreViewSet(mixins.ListModelMixin, TenantViewSet):
    """Daily health scores of the accounts in the caller's book, each with the components that explain
    it (the measures, their weights, raw values and scores, as on the account page). Scope family
    `health`. `latest/` lists each account's score of the latest nightly run."""

    scope_family = "health"
    serializer_class = HealthScoreSerializer
    filterset_class = HealthFilter
    ordering_fields = ["snapshot_date", "total", "id"]
    ordering = ["-snapshot_date", "-id"]

    queryset = HealthSnapshot._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return selectors.health_history(self.request.user, self.membership).select_related("account")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["kpi_names"] = selectors.kpi_names()  # once per request, not per row
        return context

    @_list_schema(HealthScoreSerializer, summary="Latest health score of each account", examples=[_HEALTH_EXAMPLE])
    @action(detail=False, methods=["get"], ordering=["account_id", "id"])
    def latest(self, request, *args, **kwargs):
        queryset = self.filter_queryset(
            selectors.health_latest(request.user, self.membership).select_related("account")
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


# --- Bulk ingest ------------------------------------------------------------------------------------------------
# The row serializers below are the OpenAPI schema of a bulk row, and nothing else: DRF would take seconds
# over 10,000 rows, so metrics.bulk parses the raw rows set-based and applies the rules of metrics.rules,
# the same as the one-row services. tests/test_service_rules.py holds the two to the same fields.
class MeasurementRowSerializer(serializers.Serializer):
    account = serializers.IntegerField(help_text="Id of an account of the caller's book.")
    kpi = serializers.IntegerField(required=False, help_text="Id of a KPI of the account's segment (or kpi_code).")
    kpi_code = serializers.CharField(required=False, help_text="Code of a KPI of the account's segment (or kpi).")
    measured_on = DayField(help_text="Not in the future (tenant's time zone).")
    value = serializers.DecimalField(max_digits=14, decimal_places=4, help_text="A JSON number or numeric string.")


class SurveyRowSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    survey_type = serializers.ChoiceField(choices=SurveyType.choices)
    score = serializers.IntegerField(help_text="NPS 0-10, CSAT 1-5, CES 1-7.")
    responded_on = DayField(help_text="Not in the future (tenant's time zone).")
    contact = serializers.IntegerField(required=False, allow_null=True, help_text="A contact of the account.")
    comment = serializers.CharField(required=False, allow_blank=True)


class IncidentRowSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    title = serializers.CharField(max_length=200)
    severity = serializers.ChoiceField(choices=Severity.choices)
    opened_at = MomentField(required=False, help_text="Defaults to now; not in the future.")
    resolved_at = MomentField(required=False, allow_null=True, help_text="Not before opened_at.")
    escalated = serializers.BooleanField(required=False, default=False)
    external_ref = serializers.CharField(required=False, allow_blank=True, max_length=80)


def _rows_request(name: str, row: type[serializers.Serializer]) -> type[serializers.Serializer]:
    return type(
        name,
        (serializers.Serializer,),
        {
            "rows": row(
                many=True, max_length=settings.API_BULK_MAX_ROWS, help_text="The rows; all or none are stored."
            ),
            "__doc__": "A JSON object with one key, rows (a bare list is refused).",
        },
    )


BulkMeasurementsSerializer = _rows_request("BulkMeasurementsSerializer", MeasurementRowSerializer)
BulkSurveysSerializer = _rows_request("BulkSurveysSerializer", SurveyRowSerializer)
BulkIncidentsSerializer = _rows_request("BulkIncidentsSerializer", IncidentRowSerializer)


class BulkStoredSerializer(serializers.Serializer):
    stored = serializers.IntegerField(help_text="Rows stored (all of them).")
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="ids[i] is the id of rows[i].")
    sha256 = serializers.CharField(help_text="Digest of the stored values, as recorded in the audit event.")
    created = serializers.IntegerField(required=False, help_text="Measurements: new (account, KPI, day) values.")
    updated = serializers.IntegerField(required=False, help_text="Measurements: values that replaced earlier ones.")


class BulkErrorSerializer(ErrorSerializer):
    error_count = serializers.IntegerField(required=False, help_text="Bad fields in all; `errors` lists 1,000 at most.")
    bad_rows = serializers.IntegerField(required=False, help_text="Rows with at least one bad field.")


_STORED_EXAMPLE = {
    "stored": 2,
    "created": 2,
    "updated": 0,
    "ids": [9001, 9002],
    "sha256": "3f1a0c9e5b7d2a4c6e8f0a1b3c5d7e9f1a2b3c4d5e6f708192a3b4c5d6e7f809",
}
_INVALID_EXAMPLE = {
    "status": 400,
    "code": "invalid",
    "message": "2 of 10000 rows are not valid; nothing was stored.",
    "errors": [
        {"row": 17, "field": "account", "code": "does_not_exist", "message": "No account 999 in your book."},
        {"row": 4120, "field": "measured_on", "code": "future", "message": "The date 2031-01-01 is in the future."},
    ],
    "error_count": 2,
    "bad_rows": 2,
}
_TOO_MANY_EXAMPLE = {
    "status": 400,
    "code": "too_many_rows",
    "message": "At most 10000 rows per request; this one has 12000.",
    "errors": [{"field": "rows", "code": "too_many_rows", "message": "At most 10000 rows per request."}],
}
_TOO_LARGE_EXAMPLE = {
    "status": 413,
    "code": "request_too_large",
    "message": "The request body is over the limit of 16777216 bytes. Bulk endpoints take at most 10000 rows per "
    "request: send the rows in several smaller requests.",
    "errors": [],
}
_CONFLICT_EXAMPLE = {
    "status": 422,
    "code": "idempotency_conflict",
    "message": "The Idempotency-Key 'sync-2026-11-20' was already used with a different request body; use a new key "
    "for a new request.",
    "errors": [],
}


def _bulk_schema(*, entity: str, request: type[serializers.Serializer], example_rows: list[dict]):
    return extend_schema(
        summary=f"Bulk ingest of {entity}",
        description=(
            f"Stores up to {settings.API_BULK_MAX_ROWS:,} {entity} in one transaction, all or none. The body is a JSON "
            'object `{"rows": [...]}` of at most '
            f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes (a larger body is a 413, whatever its row count). "
            "Every row is validated first; if any is bad, nothing is stored and the 400 "
            "lists every bad field with its row index (the first 1,000; `error_count` says how many in all). One "
            "audit event per request names every stored id and a digest of the values.\n\n"
            f"`{HEADER}` (optional, at most {MAX_KEY_LENGTH} printable characters): the first 201 is stored with the "
            "rows. A retry with the same key and the same body gets that answer again, with the header "
            f"`{REPLAYED_HEADER}: true`, and stores nothing; the same key with another body is a 422. A 400 is not "
            "stored, so the rows may be fixed and sent again under the same key. Keys are remembered for "
            f"{settings.API_IDEMPOTENCY_HOURS} hours, per credential: a key is the sending token's own (a browser "
            "session's: the user's), so other integrations of the tenant may use the same key for their requests."
            "\n\nTokens need `metrics:write`; browser sessions write in the roles that may create one row of the "
            "resource (see its POST)."
        ),
        request=request,
        parameters=[
            OpenApiParameter(
                HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description=f"A client-chosen key (at most {MAX_KEY_LENGTH} printable characters) making retries safe.",
            )
        ],
        responses={
            201: OpenApiResponse(BulkStoredSerializer, description="Every row stored (or the stored first answer)."),
            400: OpenApiResponse(
                BulkErrorSerializer,
                description='Bad rows (nothing stored), too many rows, or a body that is not {"rows": [...]}.',
            ),
            413: OpenApiResponse(
                ErrorSerializer,
                description=f"The body is over DATA_UPLOAD_MAX_MEMORY_SIZE ({settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} "
                "bytes here), whatever its row count: nothing is read or stored; split the rows.",
            ),
            422: OpenApiResponse(ErrorSerializer, description="The Idempotency-Key was used with another body."),
        },
        examples=[
            OpenApiExample("Two rows", value={"rows": example_rows}, request_only=True),
            OpenApiExample("Stored", value=_STORED_EXAMPLE, response_only=True, status_codes=["201"]),
            OpenApiExample("Bad rows", value=_INVALID_EXAMPLE, response_only=True, status_codes=["400"]),
            OpenApiExample("Too many rows", value=_TOO_MANY_EXAMPLE, response_only=True, status_codes=["400"]),
            OpenApiExample("Body too large", value=_TOO_LARGE_EXAMPLE, response_only=True, status_codes=["413"]),
            OpenApiExample("Key reused", value=_CONFLICT_EXAMPLE, response_only=True, status_codes=["422"]),
        ],
    )


class _BulkIngestView(TenantViewSetMixin, APIView):
    scope_family = "metrics"
    endpoint: str
    capabilities: dict[str, Capability]

    def ingest(self, **kwargs) -> dict[str, Any]:
        raise NotImplementedError

    def _refuse(self, code: str, message: str, field: str | None, status_code: int = 400) -> Response:
        errors = [{"field": field, "code": code, "message": message}] if field else []
        return Response(error_body(status_code, code, message, errors), status=status_code)

    def post(self, request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER)
        # Printable: a control character (NUL above all, which PostgreSQL cannot store) is no one's key.
        if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()):
            return self._refuse("invalid", f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters.", HEADER)
        data = request.data
        rows = data.get("rows") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            return self._refuse("invalid", 'The body must be a JSON object {"rows": [...]}.', "rows")
        limit = settings.API_BULK_MAX_ROWS
        if len(rows) > limit:
            return Response(
                error_body(
                    400,
                    "too_many_rows",
                    f"At most {limit} rows per request; this one has {len(rows)}.",
                    [{"field": "rows", "code": "too_many_rows", "message": f"At most {limit} rows per request."}],
                ),
                status=400,
            )
        if not rows:
            return self._refuse("empty", "There are no rows to store.", "rows")
        try:
            with transaction.atomic():
                claim = None
                if key is not None:
                    # The key is the credential's own (a token's, or a session user's): two integrations
                    # picking the same key must not get each other's answers.
                    claim = idempotency_claim(
                        tenant=self.tenant,
                        endpoint=self.endpoint,
                        key=key,
                        fingerprint=request_fingerprint(data),
                        token=request.auth if isinstance(request.auth, ApiToken) else None,
                        user=request.user,
                    )
                    if claim.replay is not None:
                        return Response(
                            claim.replay.response_body,
                            status=claim.replay.status_code,
                            headers={REPLAYED_HEADER: "true"},
                        )
                result = self.ingest(
                    tenant=self.tenant,
                    rows=rows,
                    actor=request.user,
                    accounts=visible_accounts(request.user, self.membership),
                    note={"idempotency_key": key} if key is not None else None,
                )
                if claim is not None:
                    idempotency_store(claim, status_code=201, body=result)
        except bulk.BulkRowsInvalid as exc:
            listed = exc.errors[: bulk.BULK_ERRORS_LISTED]
            more = (
                f" The first {len(listed)} of {len(exc.errors)} errors are listed."
                if len(listed) < len(exc.errors)
                else ""
            )
            body = error_body(
                400, "invalid", f"{exc.bad_rows} of {len(rows)} rows are not valid; nothing was stored.{more}", listed
            )
            body.update(error_count=len(exc.errors), bad_rows=exc.bad_rows)
            return Response(body, status=400)
        except IdempotencyConflict as exc:
            return self._refuse("idempotency_conflict", str(exc), None, status_code=422)
        return Response(result, status=status.HTTP_201_CREATED)


@_bulk_schema(
    entity="KPI measurements",
    request=BulkMeasurementsSerializer,
    example_rows=[
        _MEASUREMENT_EXAMPLE,
        {"account": 42, "kpi_code": "operational_efficiency", "measured_on": "2026-11-19", "value": "24.2500"},
    ],
)
class MeasurementsBulkView(_BulkIngestView):
    """All-or-nothing bulk ingest of KPI measurements (a value for an existing account, KPI and day replaces it)."""

    endpoint = "api_measurements_bulk"
    capabilities = {"post": Capability.RECORD_MEASUREMENTS}

    def ingest(self, **kwargs) -> dict[str, Any]:
        return bulk.kpi_measurements_bulk_ingest(**kwargs)


@_bulk_schema(
    entity="survey responses",
    request=BulkSurveysSerializer,
    example_rows=[
        {"account": 42, "survey_type": "nps", "score": 9, "responded_on": "2026-11-20"},
        {"account": 43, "survey_type": "csat", "score": 4, "responded_on": "2026-11-20", "comment": "Quick fix"},
    ],
)
class SurveysBulkView(_BulkIngestView):
    """All-or-nothing bulk ingest of survey responses."""

    endpoint = "api_surveys_bulk"
    capabilities = {"post": Capability.RECORD_SURVEYS}

    def ingest(self, **kwargs) -> dict[str, Any]:
        return bulk.survey_responses_bulk_ingest(**kwargs)


@_bulk_schema(
    entity="incidents",
    request=BulkIncidentsSerializer,
    example_rows=[
        {
            "account": 42,
            "title": "Payment file rejected",
            "severity": "sev2",
            "opened_at": "2026-11-20T08:00:00Z",
            "resolved_at": "2026-11-20T11:30:00Z",
            "escalated": True,
            "external_ref": "JIRA-1234",
        },
        {"account": 43, "title": "Slow statements", "severity": "sev4"},
    ],
)
class IncidentsBulkView(_BulkIngestView):
    """All-or-nothing bulk ingest of incidents."""

    endpoint = "api_incidents_bulk"
    capabilities = {"post": Capability.MANAGE_INCIDENTS}

    def ingest(self, **kwargs) -> dict[str, Any]:
        return bulk.incidents_bulk_ingest(**kwargs)


def register(router) -> None:
    router.register("measurements", KpiMeasurementViewSet, basename="api-measurement")
    router.register("surveys", SurveyResponseViewSet, basename="api-survey")
    router.register("incidents", IncidentViewSet, basename="api-incident")
    router.register("health-scores", HealthScoreViewSet, basename="api-health-score")


urlpatterns: list = [
    path("measurements/bulk", MeasurementsBulkView.as_view(), name="api_measurements_bulk"),
    path("surveys/bulk", SurveysBulkView.as_view(), name="api_surveys_bulk"),
    path("incidents/bulk", IncidentsBulkView.as_view(), name="api_incidents_bulk"),
]
