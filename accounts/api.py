"""REST API v1 resources of this app (serializers and viewsets), registered by cs_platform/api_urls.py:
accounts, contacts and touchpoints. Reads go through accounts.selectors (visible_accounts decides the
book), writes through accounts.services (which validate and audit)."""

from __future__ import annotations

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
from accounts.models import Contact, Touchpoint, TouchpointKind
from api.fields import TenantPkField
from api.filters import IdFilter, MappedOrderingFilter, MomentFilter
from api.models import ApiToken
from api.schema import id_parameter, response_example
from api.viewsets import CreateMixin, DestroyMixin, TenantViewSet, UpdateMixin
from cs_platform.tenancy.policy import Capability

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
    router.register("contacts", ContactViewSet, basename="api-contact")
    router.register("touchpoints", TouchpointViewSet, basename="api-touchpoint")


urlpatterns: list = [path("me/", MeView.as_view(), name="api_me")]
