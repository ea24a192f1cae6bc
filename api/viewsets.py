"""Base classes for the API's resources: authenticated, scope-checked, filtered, ordered and
cursor-paginated by the project defaults; each app's `api.py` subclasses these."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import status, viewsets
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.response import Response

from api.permissions import RefuseAfterLookup
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.models import Membership


class TenantViewSetMixin(RefuseAfterLookup):
    """`scope_family` names the token scope the view needs (`<family>:read` for GET, `:write` else);
    `capabilities` what a session's role needs per action (api.permissions.HasCapability).

    Querysets must come from the app's tenant-scoped selectors (`visible_accounts` for anything hanging
    off an account), so an object outside the caller's tenant or book is a 404."""

    scope_family: str
    # Digits only: `/accounts/abc/` is a 404 from the resolver, not a 500 from the database.
    lookup_value_regex = r"\d+"

    @property
    def membership(self) -> Membership:
        return self.request._request.membership

    @property
    def tenant(self):
        return self.request._request.tenant


class BookViewSetMixin:
    """Querysets come from `book_queryset()` (the caller's book); the schema generator, which has no
    tenant, gets the class's empty `queryset` instead."""

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return self.book_queryset()

    def book_queryset(self) -> QuerySet:
        raise NotImplementedError

    def validated(self, request, serializer_class, *, data=None) -> dict:
        """The input validated (the role was checked by HasCapability before the handler ran). `data` is
        the body of an action (see action_body); creates use the request's."""
        serializer = serializer_class(
            data=request.data if data is None else data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def created(self, obj) -> Response:
        """201 with the new object as the list shows it (read back through the book's queryset)."""
        return Response(self.get_serializer(self.get_queryset().get(pk=obj.pk)).data, status=status.HTTP_201_CREATED)

    def get_serializer_context(self) -> dict:
        fake = getattr(self, "swagger_fake_view", False)
        return {**super().get_serializer_context(), "today": None if fake else tenant_today(self.tenant)}


class ReadOnlyTenantViewSet(TenantViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass


class TenantViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """Compose the mixins a resource supports; writes go through services in perform_* hooks."""


def action_body(request) -> Any:
    """The JSON body of an action on one object: an empty form post (a bare `POST`, as curl -X POST or a
    test client sends it) means "no fields", so the answer names the missing field rather than a 415."""
    try:
        return request.data
    except UnsupportedMediaType:
        if request._request.POST or request._request.FILES:
            raise
        return {}
