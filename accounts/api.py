"""REST API v1 resources of this app (serializers and viewsets), registered by cs_platform/api_urls.py:
accounts, contacts and touchpoints. Reads go through accounts.selectors (visible_accounts decides the
book), writes through accounts.services (which validate and audit)."""

from __future__ import annotations

import datetime

from django.db import transaction
from django.urls import path
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api_fields import BookAccountField, in_book
from accounts.models import Account, Contact, DataStandard, LifecycleStage, Tier, Touchpoint, TouchpointKind
from api.errors import Conflict, ErrorSerializer
from api.fields import MemberUserField, TenantPkField
from api.filters import DayFilter, IdFilter, MappedOrderingFilter, MomentFilter
from api.models import ApiToken
from api.schema import id_parameter, response_example
from api.viewsets import CreateMixin, DestroyMixin, TenantViewSet, UpdateMixin
from cs_platform.tenancy.policy import Capability
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
    segment_code = serializers.SlugField(read_only=True)  # annotated by selectors.api_account_rows
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
        # `h` is the latest-snapshot relation of selectors.api_account_keys (joined only for this filter).
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
            return selectors.api_account_keys(accounts, as_of=self._as_of())
        return selectors.api_account_rows(accounts, as_of=self._as_of())

    def _as_of(self) -> datetime.date | None:
        # The tenant's latest nightly run, read once per request (one indexed MAX).
        if not hasattr(self, "_health_day"):
            self._health_day = health_as_of()
        return self._health_day

    def list(self, request, *args, **kwargs):
        # Pages on the accounts alone (index order, no join: selectors.api_account_keys says why), then
        # reads the page's rows with segment, owner and health joined by id. Five queries in all (token
        # or session, membership, latest snapshot date, the page's keys, its rows), plus the book's ids
        # for a CSM or manager. No COUNT: cursor pages have none.
        keys = self.filter_queryset(self.get_queryset()).values("id", *self.ordering_map.values())
        ids = [key["id"] for key in self.paginate_queryset(keys)]  # cursor positions read from the dicts
        page = Account.objects.filter(pk__in=ids).order_by()  # put back in the page's order below
        rows = {row.pk: row for row in selectors.api_account_rows(page, as_of=self._as_of())}
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


# --- Contacts ------------------------------------------------------------------------------------------
_CONTACT_EXAMPLE = {
    "account": 42,
    "name": "Priya Raman",
    "email": "priya.raman@harborpoint.example",
    "phone": "+1 212 555 0142",
    "title": "Head of Operations",
    "is_primary": True,
    "is_executive_sponsor": False,
}


@response_example("contact", {"id": 31, **_CONTACT_EXAMPLE})
class ContactSerializer(serializers.ModelSerializer):
    account = BookAccountField(help_text="Account id; set on creation, a contact does not move.")

    class Meta:
        model = Contact
        fields = ["id", "account", "name", "email", "phone", "title", "is_primary", "is_executive_sponsor"]
        read_only_fields = ["id"]


class ContactFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id", help_text="Account id.")
    is_primary = filters.BooleanFilter()
    is_executive_sponsor = filters.BooleanFilter()
    email = filters.CharFilter(field_name="email", lookup_expr="iexact", help_text="Exact e-mail (any case).")

    class Meta:
        model = Contact
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(summary="List contacts"),
    retrieve=extend_schema(summary="Get a contact"),
    create=extend_schema(
        summary="Add a contact", examples=[OpenApiExample("contact", value=_CONTACT_EXAMPLE, request_only=True)]
    ),
    update=extend_schema(
        summary="Replace a contact", examples=[OpenApiExample("contact", value=_CONTACT_EXAMPLE, request_only=True)]
    ),
    partial_update=extend_schema(
        summary="Change a contact",
        examples=[OpenApiExample("title", value={"title": "Chief Operating Officer"}, request_only=True)],
    ),
    destroy=extend_schema(
        summary="Remove a contact",
        parameters=[id_parameter("contact_id", 31, "a contact who left the bank")],
        responses={204: OpenApiResponse(description="Removed.")},
    ),
)
class ContactViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, UpdateMixin, DestroyMixin, TenantViewSet
):
    """The people at client accounts of the caller's book. An account id outside the book (or the
    tenant) in a body is a 400 on `account` ("No such account."); in the URL, a 404.

    Writes (token scope contacts:write; for browser sessions: admins, managers and CSMs, on the
    accounts of their book). A contact stays on its account. Every write is audited; touchpoints that
    named a removed contact keep their record."""

    scope_family = "contacts"
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    filter_backends = [filters.DjangoFilterBackend, MappedOrderingFilter]
    ordering = ("name", "id")
    ordering_map = {"name": "name", "id": "id"}
    lookup_url_kwarg = "contact_id"
    capabilities = dict.fromkeys(("create", "update", "partial_update", "destroy"), Capability.EDIT_ACCOUNTS)

    queryset = Contact._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return selectors.visible_contacts(self.request.user, self.membership)

    def perform_create(self, serializer) -> None:
        fields = dict(serializer.validated_data)
        account = fields.pop("account")
        serializer.instance = services.contact_create(
            tenant=self.tenant, account=account, actor=self.request.user, **fields
        )

    def perform_update(self, serializer) -> None:
        serializer.instance = services.contact_update(
            tenant=self.tenant, contact=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance: Contact) -> None:
        services.contact_delete(tenant=self.tenant, contact=instance, actor=self.request.user)


# --- Touchpoints ---------------------------------------------------------------------------------------
_TOUCHPOINT_EXAMPLE = {
    "account": 42,
    "kind": "qbr",
    "occurred_at": "2026-11-20T15:00:00Z",
    "subject": "Q4 business review",
    "notes": "Renewal terms discussed.",
    "contact": 31,
}


@response_example(
    "qbr", {"id": 905, **_TOUCHPOINT_EXAMPLE, "author": 7, "author_email": "jordan.lee@northwind.example"}
)
class TouchpointSerializer(serializers.ModelSerializer):
    account = BookAccountField(help_text="Account id.")
    contact = TenantPkField(
        Contact,
        "contact",
        queryset=in_book(Contact),
        allow_null=True,
        required=False,
        help_text="A contact of the same account.",
    )
    author_email = serializers.EmailField(source="author.email", read_only=True, allow_null=True)

    class Meta:
        model = Touchpoint
        fields = ["id", "account", "kind", "occurred_at", "subject", "notes", "contact", "author", "author_email"]
        read_only_fields = ["id", "author"]


class TouchpointFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id", help_text="Account id.")
    kind = filters.ChoiceFilter(choices=TouchpointKind.choices)
    occurred_after = MomentFilter(field_name="occurred_at", lookup_expr="gte", help_text="At or after.")
    occurred_before = MomentFilter(field_name="occurred_at", lookup_expr="lt", help_text="Before.")

    class Meta:
        model = Touchpoint
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(summary="List touchpoints"),
    retrieve=extend_schema(summary="Get a touchpoint"),
    create=extend_schema(
        summary="Log a touchpoint",
        examples=[OpenApiExample("qbr", value=_TOUCHPOINT_EXAMPLE, request_only=True)],
    ),
)
class TouchpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, TenantViewSet):
    """The timeline of meetings, QBRs, calls, e-mails and notes on the accounts of the caller's book,
    newest first. The timeline is a record: touchpoints are logged (the author is the caller), never
    edited or deleted. Logging needs touchpoints:write, or for browser sessions the roles that may log
    one on the account page (admin, executive, manager, CSM)."""

    scope_family = "touchpoints"
    serializer_class = TouchpointSerializer
    filterset_class = TouchpointFilter
    filter_backends = [filters.DjangoFilterBackend, MappedOrderingFilter]
    ordering = ("-occurred_at", "-id")
    ordering_map = {"occurred_at": "occurred_at", "id": "id"}
    lookup_url_kwarg = "touchpoint_id"
    capabilities = {"create": Capability.LOG_TOUCHPOINTS}

    queryset = Touchpoint._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return selectors.visible_touchpoints(self.request.user, self.membership)

    def perform_create(self, serializer) -> None:
        fields = dict(serializer.validated_data)
        account = fields.pop("account")
        serializer.instance = services.touchpoint_log(
            tenant=self.tenant, account=account, actor=self.request.user, **fields
        )


# --- Me ------------------------------------------------------------------------------------------------
@response_example(
    "a reporting integration",
    {
        "tenant": "northwind",
        "user": "ops-admin@northwind.example",
        "role": "admin",
        "auth": "token",
        "scopes": ["accounts:read", "measurements:write"],
        "accounts": 486,
        "time_zone": "America/New_York",
    },
)
class MeSerializer(serializers.Serializer):
    tenant = serializers.SlugField(help_text="The tenant the credentials belong to.")
    user = serializers.EmailField(help_text="The token's creator, or the logged-in user.")
    role = serializers.CharField()
    auth = serializers.ChoiceField(choices=["token", "session"])
    scopes = serializers.ListField(child=serializers.CharField(), help_text="Empty for session authentication.")
    accounts = serializers.IntegerField(help_text="Accounts the caller can see.")
    time_zone = serializers.CharField(help_text="The tenant's time zone: dates such as 'today' are its days.")


class MeView(APIView):
    """Who the caller is, in which tenant, by which means: the first call an integration makes."""

    # Here rather than in the api package (the REST base, below the domain apps): it counts the book.

    scope_family = None

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        membership = request._request.membership
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return Response(
            {
                "tenant": request._request.tenant.slug,
                "user": request.user.email,
                "role": membership.role,
                "auth": "token" if token else "session",
                "scopes": token.scopes if token else [],
                "accounts": selectors.visible_accounts(request.user, membership).count(),
                "time_zone": timezone.get_current_timezone_name(),
            }
        )


def register(router) -> None:
    router.register("accounts", AccountViewSet, basename="api-account")
    router.register("contacts", ContactViewSet, basename="api-contact")
    router.register("touchpoints", TouchpointViewSet, basename="api-touchpoint")


urlpatterns: list = [path("me/", MeView.as_view(), name="api_me")]
