"""The one base of the API's resources: every app's `api.py` (and api/audit_events.py) builds its viewsets
from TenantViewSet and the mixins below; the bulk ingest views (plain APIViews) share TenantViewSetMixin.

Reads: a viewset sets `queryset` to its model's empty queryset (what the schema generator, which has no
request and no tenant, reads) and implements `visible_queryset()` with the app's selector of what this
caller may see (`visible_accounts` for anything hanging off an account), so an object outside the
caller's tenant or book is a 404. Lists are authenticated, scope-checked, filtered, ordered and
cursor-paginated by the project defaults.

Writes, one pattern for every resource and action:
1. the body is parsed by the action's serializer (`input_serializers[action]`, else the resource's
   serializer): `parse()`. Serializers parse and name the field at fault; they decide no business rule.
2. the write hook hands the validated data to the app's service, which decides, writes and audits:
   `perform_create/perform_update/perform_destroy(serializer or instance)` for the CRUD actions (the
   hook sets `serializer.instance` to what the service returned), the action method itself for an
   action on one object (resolve, complete).
3. the answer is the written object as a GET shows it, read back through `visible_queryset()`: `answer()`.
Who may write is the permission classes' business (scopes for tokens, the policy's capabilities for
sessions: api.permissions.HasScope and HasCapability, the project defaults), decided before any of this runs."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from api.permissions import RefuseAfterLookup
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.models import Membership


class TenantViewSetMixin(RefuseAfterLookup):
    """`scope_family` names the token scope the view needs (`<family>:read` for GET, `:write` else);
    `capabilities` what a session's role needs per action (api.permissions.HasCapability). A refusal waits
    for the object's lookup, so an id outside the caller's tenant or book is a 404 (RefuseAfterLookup)."""

    scope_family: str
    # Digits only: `/accounts/abc/` is a 404 from the resolver, not a 500 from the database.
    lookup_value_regex = r"\d+"

    @property
    def membership(self) -> Membership:
        return self.request._request.membership

    @property
    def tenant(self):
        return self.request._request.tenant


class TenantViewSet(TenantViewSetMixin, viewsets.GenericViewSet):
    """Compose the mixins a resource supports (DRF's List/Retrieve/Destroy, and Create/Update below)."""

    # {action: serializer of the request body} where it is not the resource's own serializer (a create
    # taking ids and answering the full representation, the body of an action on one object).
    input_serializers: dict[str, type[BaseSerializer]] = {}

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user, no tenant
            return self.queryset
        return self.visible_queryset()

    def visible_queryset(self) -> QuerySet:
        raise NotImplementedError

    def get_serializer_context(self) -> dict:
        fake = getattr(self, "swagger_fake_view", False)
        return {**super().get_serializer_context(), "today": None if fake else tenant_today(self.tenant)}

    def parse(self, data: Any, **kwargs) -> BaseSerializer:
        """Step 1 of a write: `data` validated by the action's input serializer (a 400 naming each field
        at fault). kwargs: `instance` and `partial` for an update."""
        serializer_class = self.input_serializers.get(self.action) or self.get_serializer_class()
        serializer = serializer_class(data=data, context=self.get_serializer_context(), **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer

    def read_back(self, obj: Model) -> Model:
        """The written object as the resource's queryset reads it (annotations and joins included). Should
        the write have taken it out of the caller's sight, it is answered as written."""
        return self.get_queryset().filter(pk=obj.pk).first() or obj

    def answer(self, obj: Model, status_code: int = status.HTTP_200_OK) -> Response:
        """Step 3 of a write: the object as a GET of it answers."""
        return Response(self.get_serializer(self.read_back(obj)).data, status=status_code)


class CreateMixin(mixins.CreateModelMixin):
    """POST: parse, `perform_create(serializer)` calls the service and sets serializer.instance, 201."""

    def create(self, request, *args, **kwargs) -> Response:
        serializer = self.parse(request.data)
        self.perform_create(serializer)
        return self.answer(serializer.instance, status.HTTP_201_CREATED)

    def perform_create(self, serializer) -> None:
        # Never serializer.save(): a write goes through the app's service, which validates and audits.
        raise NotImplementedError(f"{type(self).__name__} must hand the validated data to a service")


class UpdateMixin(mixins.UpdateModelMixin):
    """PUT and PATCH: parse against the object, `perform_update(serializer)` calls the service."""

    def update(self, request, *args, **kwargs) -> Response:
        serializer = self.parse(request.data, instance=self.get_object(), partial=kwargs.pop("partial", False))
        self.perform_update(serializer)
        return self.answer(serializer.instance)

    def perform_update(self, serializer) -> None:
        raise NotImplementedError(f"{type(self).__name__} must hand the validated data to a service")


class DestroyMixin(mixins.DestroyModelMixin):
    """DELETE: `perform_destroy(instance)` calls the service; 204."""

    def perform_destroy(self, instance) -> None:
        raise NotImplementedError(f"{type(self).__name__} must delete through a service")


def action_body(request) -> Any:
    """The JSON body of an action on one object: an empty form post (a bare `POST`, as curl -X POST or a
    test client sends it) means "no fields", so the answer names the missing field rather than a 415."""
    try:
        return request.data
    except UnsupportedMediaType:
        if request._request.POST or request._request.FILES:
            raise
        return {}
