"""REST API v1 for the audit trail's signed checkpoints: a read-only, cursor-paginated list (the CSV export's
companion: the JSON export carries them itself) and the public keys that verify them."""

from __future__ import annotations

from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from api.audit_events import (
    EXAMPLE_CHECKPOINTS,
    EXAMPLE_PUBLIC_KEYS,
    READ_TRAIL,
    CanonicalDateTimeField,
    query_of,
    reader,
)
from api.filters import IdFilter, MomentFilter
from api.schema import response_example
from api.viewsets import TenantViewSet
from cs_platform.audit import signing
from cs_platform.audit.models import AuditCheckpoint, CheckpointReason
from cs_platform.audit.selectors import audit_checkpoints
from cs_platform.audit.services import audit_trail_read_record


class AuditCheckpointFilter(filters.FilterSet):
    number_after = IdFilter(
        field_name="number", lookup_expr="gt", help_text="Checkpoints numbered above this (the last one you hold)."
    )
    seq_from = IdFilter(
        field_name="seq",
        lookup_expr="gte",
        help_text="Checkpoints that signed the chain at this seq or later (for a CSV export with seq_after=N, N).",
    )
    created_after = MomentFilter(
        field_name="created_at", lookup_expr="gte", help_text="Checkpoints made at or after this time (ISO 8601)."
    )
    created_before = MomentFilter(
        field_name="created_at", lookup_expr="lt", help_text="Checkpoints made strictly before this time (ISO 8601)."
    )

    class Meta:
        model = AuditCheckpoint
        fields: list[str] = []


@response_example("hourly checkpoint 27 (event 1842)", EXAMPLE_CHECKPOINTS[1])
class AuditCheckpointSerializer(serializers.ModelSerializer):
    """Exactly the signed payload (cs_platform.audit.signing) and the signature: a row verifies on its own."""

    type = serializers.SerializerMethodField(help_text=f"Always `{signing.CHECKPOINT_TYPE}`.")
    tenant = serializers.IntegerField(source="tenant_id", read_only=True, help_text="The tenant's id.")
    created_at = CanonicalDateTimeField(read_only=True)
    reason = serializers.ChoiceField(choices=CheckpointReason.choices, read_only=True)

    class Meta:
        model = AuditCheckpoint
        fields = [
            "type",
            "tenant",
            "number",
            "seq",
            "event_hash",
            "created_at",
            "reason",
            "prev_digest",
            "key_id",
            "signature",
        ]
        read_only_fields = fields

    def get_type(self, checkpoint: AuditCheckpoint) -> str:
        return signing.CHECKPOINT_TYPE


class PublicKeySerializer(serializers.Serializer):
    key_id = serializers.CharField(help_text="Lowercase hex SHA-256 of the 32 raw bytes of the public key.")
    algorithm = serializers.ChoiceField(choices=[signing.ALGORITHM])
    public_key = serializers.CharField(help_text="Standard base64 of the 32 raw bytes.")
    signing = serializers.BooleanField(
        help_text="True for the key new checkpoints are signed with; earlier keys still verify older ones."
    )


class PublicKeysSerializer(serializers.Serializer):
    keys = PublicKeySerializer(many=True)


@extend_schema_view(list=extend_schema(summary="List signed audit checkpoints (ascending number)"))
class AuditCheckpointViewSet(mixins.ListModelMixin, TenantViewSet):
    """The tenant's signed checkpoints of its audit chain: at least hourly and after each nightly run, the
    chain's head (last `seq`, its `event_hash`, the time) signed with an Ed25519 key the platform holds
    outside its database, each naming its predecessor's digest (`prev_digest`). The JSON export carries
    them; this list serves CSV users and clients who sync forward (`number_after`). How to verify: the
    audit-events export's description.

    Readers as for the audit events (tokens with `audit:read`, admins and compliance officers); each page
    read is recorded as an `audit.read` event."""

    scope_family = "audit"
    serializer_class = AuditCheckpointSerializer
    filterset_class = AuditCheckpointFilter
    ordering = ["number"]
    ordering_fields = ["number"]

    capabilities = READ_TRAIL

    queryset = AuditCheckpoint._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return audit_checkpoints()

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        numbers = [row["number"] for row in response.data["results"]]
        audit_trail_read_record(
            tenant=self.tenant,
            actor=request.user,
            object_type="audit.auditcheckpoint",
            via=reader(request),
            filters=query_of(request, AuditCheckpointFilter),
            returned=len(numbers),
            first_last=(min(numbers), max(numbers)) if numbers else None,
        )
        return response

    @extend_schema(
        operation_id="audit_checkpoints_public_keys",
        summary="The public keys that verify the checkpoints",
        description=(
            "The signing key's public key and the earlier ones still trusted after a rotation. Compare them with "
            "the keys your vendor published through another channel: a key taken from the same server as the "
            "trail proves only that the two agree. Not recorded in the trail (nothing here is secret)."
        ),
        responses=PublicKeysSerializer,
        examples=[
            OpenApiExample("the signing key", value={"keys": EXAMPLE_PUBLIC_KEYS}, response_only=True),
        ],
        filters=False,
    )
    @action(detail=False, methods=["get"], url_path="public-keys", url_name="public-keys", pagination_class=None)
    def public_keys(self, request):
        keys: list[dict[str, Any]] = [key.as_dict() for key in signing.public_keys()]
        return Response({"keys": keys})


def register(router) -> None:
    router.register("audit-checkpoints", AuditCheckpointViewSet, basename="api-audit-checkpoint")


urlpatterns: list = []
