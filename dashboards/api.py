"""REST API v1: the account resource, registered by cs_platform/api_urls.py. An account as the API answers
it carries the latest nightly health (score, band, date) joined from metrics, so the resource lives in the
read-model layer, above accounts and metrics (README, "Architecture"); contacts, touchpoints and `me` stay
in accounts/api.py. Reads go through accounts.selectors.visible_accounts (the caller's book), writes
through accounts.services (which validate, decide ownership and audit)."""

from __future__ import annotations

import datetime

from django.db import transaction
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers

from accounts import selectors, services
from accounts.models import Account, DataStandard, LifecycleStage, Tier
from api.errors import Conflict, ErrorSerializer
from api.fields import MemberUserField, TenantPkField
from api.filters import DayFilter, IdFilter, MappedOrderingFilter, MomentFilter
from api.schema import id_parameter, response_example
from api.viewsets import CreateMixin, DestroyMixin, TenantViewSet, UpdateMixin
from cs_platform.tenancy.policy import Capability
from dashboards import selectors as dashboard_selectors
from metrics.models import HealthBand
from metrics.selectors import health_as_of
from segments.models import Segment

# --- Accounts ------------------------------------------------------------------------------------------
_ACCOUNT_EXAMPLE = {
    "name": "Harbor Point Bank",
    "segment": 1,
    "tier": "enterprise",
    "arr": "1200000.00",
    "currency": "USD",
    "contract_start": "2025-01-01",
    "renewal_date": "2026-12-31",
    "lifecycle_stage": "adoption",
    "owner_csm": 7,
    "executive_sponsor": "Dana Whitfield, COO",
    "jurisdictions": ["US-NY"],
    "regulators": ["OCC", "FDIC"],
    "data_standards": ["ISO 20022"],
}
_ACCOUNT_READ_EXAMPLE = {
    "id": 42,
    **_ACCOUNT_EXAMPLE,
    "segment_code": "bank",
    "owner_csm_email": "jordan.lee@northwind.example",
    "created_at": "2025-01-02T09:15:00Z",
    "updated_at": "2026-11-20T16:40:12Z",
    "health_score": "58.40",
    "health_band": "yellow",
    "health_as_of": "2026-11-23",
}


@response_example("account", _ACCOUNT_READ_EXAMPLE)
class AccountSerializer(serializers.ModelSerializer):
    segment = TenantPkField(Segment, "segment", help_text="Segment id (see /api/v1/segments/).")
    segment_code = serializers.SlugField(read_only=True)  # annotated by dashboard_selectors.account_list_rows
    owner_csm = MemberUserField(
        allow_null=True,
        required=False,
        help_text="User id of the owning CSM. Changing it moves the CSM permissions (managers and admins only).",
    )
    owner_csm_email = serializers.EmailField(read_only=True, allow_null=True)
    jurisdictions = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    regulators = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    data_standards = serializers.ListField(child=serializers.ChoiceField(DataStandard.choices), required=False)
    health_score = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        read_only=True,
        allow_null=True,
        help_text="Total of the latest nightly health snapshot (0-100); null when not scored that night.",
    )
    health_band = serializers.ChoiceField(HealthBand.choices, read_only=True, allow_null=True)
    health_as_of = serializers.DateField(read_only=True, allow_null=True, help_text="Date of that snapshot.")

    class Meta:
        model = Account
        fields = [
            "id",
            "name",
            "segment",
            "segment_code",
            "tier",
            "arr",
            "currency",
            "contract_start",
            "renewal_date",
            "lifecycle_stage",
            "owner_csm",
            "owner_csm_email",
            "executive_sponsor",
            "jurisdictions",
            "regulators",
            "data_standards",
            "health_score",
            "health_band",
            "health_as_of",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class AccountFilter(filters.FilterSet):
    segment = IdFilter(field_name="segment_id", help_text="Segment id.")
    segment_code = filters.CharFilter(field_name="segment__code", help_text="Segment code, e.g. bank.")
    tier = filters.ChoiceFilter(choices=Tier.choices)
    lifecycle_stage = filters.ChoiceFilter(choices=LifecycleStage.choices)
    owner_csm = IdFilter(field_name="owner_csm_id", help_text="User id of the owning CSM.")
    band = filters.ChoiceFilter(
        choices=[*HealthBand.choices, ("none", "Not scored")],
        method="filter_band",
        help_text="Band of the latest nightly health snapshot; none = not scored that night.",
    )
    renewal_before = DayFilter(field_name="renewal_date", lookup_expr="lte", help_text="On or before.")
    renewal_after = DayFilter(field_name="renewal_date", lookup_expr="gte", help_text="On or after.")
    name = filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Name contains (any case).")
    updated_after = MomentFilter(
        field_name="updated_at", lookup_expr="gte", help_text="Changed at or after this time (ISO 8601)."
    )

    class Meta:
        model = Account
        fields: list[str] = []

    def filter_band(self, queryset, name, value):
        # `h` is the latest-snapshot relation of dashboard_selectors.account_list_keys (joined only for this filter).
        return queryset.filter(h__band__isnull=True) if value == "none" else queryset.filter(h__band=value)


@extend_schema_view(
    list=extend_schema(summary="List accounts"),
    retrieve=extend_schema(summary="Get an account"),
    create=extend_schema(
        summary="Create an account",
        examples=[OpenApiExample("account", value=_ACCOUNT_EXAMPLE, request_only=True)],
    ),
    update=extend_schema(
        summary="Replace an account",
        examples=[OpenApiExample("account", value=_ACCOUNT_EXAMPLE, request_only=True)],
    ),
    partial_update=extend_schema(
        summary="Change an account",
        examples=[
            OpenApiExample("renewal", value={"renewal_date": "2027-12-31", "arr": "1350000.00"}, request_only=True),
            OpenApiExample("churn", value={"lifecycle_stage": "churned"}, request_only=True),
        ],
    ),
    destroy=extend_schema(
        summary="Delete an account created by mistake",
        parameters=[id_parameter("account_id", 57, "an account created twice")],
        responses={
            204: OpenApiResponse(description="Deleted."),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The account has history; set lifecycle_stage to churned instead.",
                examples=[
                    OpenApiExample(
                        "conflict",
                        response_only=True,
                        status_codes=["409"],
                        value={
                            "status": 409,
                            "code": "conflict",
                            "errors": [],
                            "message": "Harbor Point Bank has "
                            'history (touchpoints) and cannot be deleted; set lifecycle_stage to "churned" instead.',
                        },
                    )
                ],
            ),
        },
    ),
)
class AccountViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, UpdateMixin, DestroyMixin, TenantViewSet
):
    """Client accounts in the caller's book (CSM: their accounts; manager: their team's; everyone else:
    the whole tenant), with the latest nightly health (score, band, date) joined.

    Writes (token scope accounts:write; for browser sessions, by role):
    * create and delete: admins and managers. A manager's new account must be owned by a CSM of their
      team (else it would leave their book at once); an admin may leave the owner empty.
    * update (PUT/PATCH): admins, managers (their team's accounts) and CSMs (their own accounts).
      Changing `owner_csm` is a reassignment: managers hand an account to a CSM of their team, admins
      to any active CSM or manager; only admins may clear it. CSMs cannot reassign.
    * Executives, compliance officers and viewers read only.

    An account with any history (contacts, touchpoints, health snapshots, measurements, surveys,
    incidents, obligations, journeys, decisions) is never deleted: the answer is 409 `conflict`; set
    `lifecycle_stage` to `churned` instead. Every write is recorded in the audit trail."""

    scope_family = "accounts"
    serializer_class = AccountSerializer
    filterset_class = AccountFilter
    filter_backends = [filters.DjangoFilterBackend, MappedOrderingFilter]
    ordering = ("name", "id")  # names are unique per tenant: a stable cursor
    ordering_map = {
        "name": "name",
        "arr": "arr",
        "renewal_date": "renewal_key",
        "created_at": "created_at",
        "id": "id",
    }
    lookup_url_kwarg = "account_id"
    capabilities = {
        "create": Capability.ADD_ACCOUNTS,
        "update": Capability.EDIT_ACCOUNTS,
        "partial_update": Capability.EDIT_ACCOUNTS,
        "destroy": Capability.DELETE_ACCOUNTS,
    }

    queryset = Account._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        accounts = selectors.visible_accounts(self.request.user, self.membership)
        if self.action == "list":
            return dashboard_selectors.account_list_keys(accounts, as_of=self._as_of())
        return dashboard_selectors.account_list_rows(accounts, as_of=self._as_of())

    def _as_of(self) -> datetime.date | None:
        # The tenant's latest nightly run, read once per request (one indexed MAX).
        if not hasattr(self, "_health_day"):
            self._health_day = health_as_of()
        return self._health_day

    def list(self, request, *args, **kwargs):
        # Pages on the accounts alone (index order, no join: dashboard_selectors.account_list_keys says why), then
        # reads the page's rows with segment, owner and health joined by id. Five queries in all (token
        # or session, membership, latest snapshot date, the page's keys, its rows), plus the book's ids
        # for a CSM or manager. No COUNT: cursor pages have none.
        keys = self.filter_queryset(self.get_queryset()).values("id", *self.ordering_map.values())
        ids = [key["id"] for key in self.paginate_queryset(keys)]  # cursor positions read from the dicts
        page = Account.objects.filter(pk__in=ids).order_by()  # put back in the page's order below
        rows = {row.pk: row for row in dashboard_selectors.account_list_rows(page, as_of=self._as_of())}
        serializer = self.get_serializer([rows[pk] for pk in ids if pk in rows], many=True)
        return self.get_paginated_response(serializer.data)

    def perform_create(self, serializer) -> None:
        serializer.instance = services.account_create(
            tenant=self.tenant, actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer) -> None:
        account: Account = serializer.instance
        changes = dict(serializer.validated_data)
        owner_given = "owner_csm" in changes
        owner = changes.pop("owner_csm", None)
        with transaction.atomic():
            if changes:
                services.account_update(tenant=self.tenant, account=account, actor=self.request.user, **changes)
            # The owner sent unchanged (a client echoing what it read) is not a reassignment.
            if owner_given and (owner.pk if owner else None) != account.owner_csm_id:
                # Who may receive the account (or leave it without one) is the reassignment's rule; it
                # moves the guardian permissions through account_update.
                services.account_reassign(tenant=self.tenant, account=account, owner_csm=owner, actor=self.request.user)
        serializer.instance = account

    def perform_destroy(self, instance: Account) -> None:
        try:
            services.account_delete(tenant=self.tenant, account=instance, actor=self.request.user)
        except services.AccountHasHistory as exc:
            raise Conflict(str(exc)) from None


def register(router) -> None:
    router.register("accounts", AccountViewSet, basename="api-account")


urlpatterns: list = []
