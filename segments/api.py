"""REST API v1 resources of this app (serializers and viewsets), registered by cs_platform/api_urls.py: segments
and their KPI definitions. Reads go through segments.selectors, writes through segments.services."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers

from api.fields import TenantPkField
from api.filters import IdFilter, MappedOrderingFilter
from api.schema import response_example
from api.viewsets import CreateMixin, TenantViewSet, UpdateMixin
from cs_platform.tenancy.policy import Capability
from segments import reference, selectors, services
from segments.models import Comparator, Direction, KpiDefinition, Segment

# --- Examples ----------------------------------------------------------------------------------------------
# Segment 1 "bank" and its KPIs 1-4 as reference_data_load stores them for a tenant. They are built from
# segments.reference (checked against seed 000 by tests/segments/test_reference_data.py), so the examples
# keep the seed's wording and bands; the decimals are strings in the serializers' decimal places.
_BANK = reference.SEGMENTS[0]


def _decimal(value, places: int) -> str | None:
    return None if value is None else f"{value:.{places}f}"


_BANK_KPIS = [
    {
        "id": order + 1,
        "code": kpi.code,
        "name": kpi.name,
        "description": "",
        "target_text": kpi.target_text,
        "unit": kpi.unit,
        "direction": kpi.direction,
        "comparator": kpi.comparator,
        "target_low": _decimal(kpi.target_low, 4),
        "target_high": _decimal(kpi.target_high, 4),
        "weight": _decimal(kpi.weight, 2),
        "is_reference": True,
        "sort_order": order,
    }
    for order, kpi in enumerate(_BANK.kpis)
]
_SEGMENT_READ_EXAMPLE = {
    "id": 1,
    "code": _BANK.code,
    "name": _BANK.name,
    "description": "",
    "characteristics": list(_BANK.characteristics),
    "success_factors": [{"name": name, "description": text} for name, text in _BANK.success_factors],
    "sort_order": 0,
    "kpis": _BANK_KPIS,
}
# risk_reduction, the bank's "25-35% operational risk reduction" band.
_KPI_READ_EXAMPLE = {**_BANK_KPIS[1], "segment": 1, "segment_code": _BANK.code}


@response_example("bank KPI", _KPI_READ_EXAMPLE)
class KpiDefinitionSerializer(serializers.ModelSerializer):
    segment = TenantPkField(Segment, "segment", help_text="Segment id; set on creation, a KPI does not move.")
    segment_code = serializers.SlugField(source="segment.code", read_only=True)
    direction = serializers.ChoiceField(Direction.choices)
    comparator = serializers.ChoiceField(
        Comparator.choices,
        help_text="How a value is judged against the band: gte and top_quartile need target_low, lt needs "
        "target_high, between and eq need both.",
    )

    class Meta:
        model = KpiDefinition
        fields = [
            "id",
            "segment",
            "segment_code",
            "code",
            "name",
            "description",
            "target_text",
            "unit",
            "direction",
            "comparator",
            "target_low",
            "target_high",
            "weight",
            "is_reference",
            "sort_order",
        ]
        read_only_fields = ["id", "is_reference"]


class SegmentKpiSerializer(KpiDefinitionSerializer):
    """A KPI nested in its segment (the segment is the parent)."""

    class Meta(KpiDefinitionSerializer.Meta):
        fields = [f for f in KpiDefinitionSerializer.Meta.fields if f not in ("segment", "segment_code")]
        read_only_fields = fields


class SuccessFactorSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False, default="")


@response_example("bank", _SEGMENT_READ_EXAMPLE)
class SegmentSerializer(serializers.ModelSerializer):
    characteristics = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    success_factors = SuccessFactorSerializer(many=True, required=False)
    kpis = SegmentKpiSerializer(many=True, read_only=True, help_text="The segment's KPI definitions.")

    class Meta:
        model = Segment
        fields = ["id", "code", "name", "description", "characteristics", "success_factors", "sort_order", "kpis"]
        read_only_fields = ["id", "code"]


class SegmentFilter(filters.FilterSet):
    code = filters.CharFilter(help_text="Segment code, e.g. insurer (exact).")
    name = filters.CharFilter(lookup_expr="icontains", help_text="Name contains (any case).")
    kpi_code = filters.CharFilter(
        method="filter_kpi_code", help_text="Segments with a KPI of this code (the segment lists all its KPIs)."
    )

    class Meta:
        model = Segment
        fields: list[str] = []

    def filter_kpi_code(self, queryset, name, value):
        # A subquery, not a join: a join would repeat a segment per matching KPI row.
        return queryset.filter(pk__in=KpiDefinition.objects.filter(code=value).values("segment_id"))


class KpiFilter(filters.FilterSet):
    segment = IdFilter(field_name="segment_id", help_text="Segment id.")
    segment_code = filters.CharFilter(field_name="segment__code", help_text="Segment code, e.g. bank.")
    code = filters.CharFilter(help_text="KPI code, e.g. policy_renewal_rate (exact; codes repeat across segments).")
    name = filters.CharFilter(lookup_expr="icontains", help_text="Name contains (any case).")
    direction = filters.ChoiceFilter(choices=Direction.choices)
    comparator = filters.ChoiceFilter(choices=Comparator.choices)
    unit = filters.CharFilter(lookup_expr="iexact", help_text="Unit, e.g. % or days (any case).")
    is_reference = filters.BooleanFilter(help_text="true: from the reference framework; false: the tenant's own.")

    class Meta:
        model = KpiDefinition
        fields: list[str] = []


_SEGMENT_PATCH = {
    "description": "Retail and commercial banks.",
    "characteristics": ["Basel III capital rules"],
    "success_factors": [{"name": "Regulatory Compliance", "description": "Clean exams."}],
}


@extend_schema_view(
    list=extend_schema(summary="List segments"),
    retrieve=extend_schema(summary="Get a segment"),
    partial_update=extend_schema(
        summary="Change a segment's description",
        examples=[
            OpenApiExample("describe", request_only=True, value=_SEGMENT_PATCH),
            # The segment as changed, rather than the serializer's example of it as loaded.
            OpenApiExample(
                "described", response_only=True, status_codes=["200"], value={**_SEGMENT_READ_EXAMPLE, **_SEGMENT_PATCH}
            ),
        ],
    ),
)
class SegmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, UpdateMixin, TenantViewSet):
    """The tenant's client segments (banks, insurers, asset managers...), each with its KPI definitions
    nested, in display order. Every member reads them. Admins (browser session) or a token with
    segments:write may PATCH the descriptive fields; the code is fixed (scorecards and imports find a
    segment by it). Changes are audited."""

    scope_family = "segments"
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilter
    filter_backends = [filters.DjangoFilterBackend, MappedOrderingFilter]
    ordering = ("sort_order", "id")
    ordering_map = {"sort_order": "sort_order", "name": "name", "id": "id"}
    lookup_url_kwarg = "segment_id"
    http_method_names = ["get", "patch", "head", "options"]
    capabilities = {"partial_update": Capability.EDIT_SEGMENTS}

    queryset = Segment._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return selectors.segments_with_kpis()

    def perform_update(self, serializer) -> None:
        changes = dict(serializer.validated_data)
        if "success_factors" in changes:
            changes["success_factors"] = [dict(item) for item in changes["success_factors"]]
        serializer.instance = services.segment_update(
            tenant=self.tenant, segment=serializer.instance, actor=self.request.user, **changes
        )


_KPI_EXAMPLE = {
    "segment": 1,
    "code": "wire_stp_rate",
    "name": "Wire straight-through rate",
    "description": "",
    "target_text": "At least 95 %",
    "unit": "%",
    "direction": "higher",
    "comparator": "gte",
    "target_low": "95",
    "target_high": None,
    "weight": "20",
    "sort_order": 10,
}
# The created KPI is the tenant's own (is_reference false), not the reference KPI of the serializer's example.
_KPI_CREATED_EXAMPLE = {
    "id": 31,
    **_KPI_EXAMPLE,
    "segment_code": "bank",
    "target_low": "95.0000",
    "weight": "20.00",
    "is_reference": False,
}
_KPI_PATCH = {"target_low": "30", "target_high": "40", "target_text": "30-40% operational risk reduction"}


@extend_schema_view(
    list=extend_schema(summary="List KPI definitions"),
    retrieve=extend_schema(summary="Get a KPI definition"),
    create=extend_schema(
        summary="Add a tenant KPI to a segment",
        examples=[
            OpenApiExample("kpi", value=_KPI_EXAMPLE, request_only=True),
            OpenApiExample("created", value=_KPI_CREATED_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    ),
    partial_update=extend_schema(
        summary="Change a KPI's target band, wording or weight",
        examples=[
            OpenApiExample("target", request_only=True, value=_KPI_PATCH),
            OpenApiExample(
                "retargeted",
                response_only=True,
                status_codes=["200"],
                value={**_KPI_READ_EXAMPLE, **_KPI_PATCH, "target_low": "30.0000", "target_high": "40.0000"},
            ),
        ],
    ),
)
class KpiDefinitionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, UpdateMixin, TenantViewSet):
    """The KPI definitions of the tenant's segments: what is measured, in which unit, and the target
    band a value is judged against. Every member reads them. Admins (browser session) or a token with
    segments:write may add a tenant KPI (POST; not a reference one) and PATCH a KPI's name, wording,
    unit, direction, comparator, band and weight; the band must suit the comparator. Segment and code
    are fixed once created. Changes are audited."""

    scope_family = "segments"
    serializer_class = KpiDefinitionSerializer
    filterset_class = KpiFilter
    filter_backends = [filters.DjangoFilterBackend, MappedOrderingFilter]
    ordering = ("id",)
    ordering_map = {"id": "id", "sort_order": "sort_order", "name": "name"}
    lookup_url_kwarg = "kpi_id"
    http_method_names = ["get", "post", "patch", "head", "options"]
    capabilities = {"create": Capability.EDIT_SEGMENTS, "partial_update": Capability.EDIT_SEGMENTS}

    queryset = KpiDefinition._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return selectors.kpi_definitions()

    def perform_create(self, serializer) -> None:
        fields = dict(serializer.validated_data)
        segment = fields.pop("segment")
        serializer.instance = services.kpi_definition_create(
            tenant=self.tenant, segment=segment, actor=self.request.user, **fields
        )

    def perform_update(self, serializer) -> None:
        serializer.instance = services.kpi_definition_update(
            tenant=self.tenant, kpi=serializer.instance, actor=self.request.user, **serializer.validated_data
        )


def register(router) -> None:
    router.register("segments", SegmentViewSet, basename="api-segment")
    router.register("kpis", KpiDefinitionViewSet, basename="api-kpi")


urlpatterns: list = []
