"""REST API v1 resources of this app (serializers and viewsets), registered by cs_platform/api_urls.py:
account journeys, their activities, and decisions/blockers. Token scope family "journeys".

Reads go through journeys.selectors (always within visible_accounts, so another tenant's or another book's
object is a 404); writes through journeys.services. Browser sessions write by the capability each viewset
declares (cs_platform.tenancy.policy, as the account page's forms); tokens are judged by scope alone."""

from __future__ import annotations

import datetime

from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api_fields import BookAccountField, in_book
from api.fields import DayField, MemberUserField, TenantPkField, display_name
from api.filters import DayFilter, IdFilter
from api.schema import response_example
from api.viewsets import CreateMixin, TenantViewSet, action_body
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.policy import Capability
from journeys import selectors
from journeys.models import (
    AccountJourney,
    ActivityStatus,
    Decision,
    DecisionKind,
    DecisionStatus,
    JourneyActivity,
    JourneyStatus,
    JourneyTemplate,
    Phase,
)
from journeys.services import account_journey_start, decision_create, decision_resolve, journey_activity_complete
from segments import reference

# --- Serializers -----------------------------------------------------------------------------------------

# The response examples tell one story: Harbor Point Bank (account 42) started the reference Financial
# Services Customer Journey (template 1) on 2026-11-02 and, on 2026-11-23, is three weeks into its
# Compliance Assessment phase (days 0-45) with one activity done and a settlement-format blocker open.
# Phases, objectives and activities are seed 000's (segments.reference), so the example cannot drift.
_PHASE_REFS = [{"id": i, "order": i, "name": phase.name} for i, phase in enumerate(reference.PHASES, 1)]
_ASSESSMENT = _PHASE_REFS[0]
_JOURNEY_EXAMPLE = {
    "id": 12,
    "account": 42,
    "account_name": "Harbor Point Bank",
    "template": 1,
    "template_name": reference.JOURNEY_NAME,
    "started_on": "2026-11-02",
    "status": "on_track",
    "status_reason": "",
    "status_computed_on": "2026-11-23",
    "current_phase": _ASSESSMENT,
    "completed_on": None,
    "onboarding_days": None,
    "time_to_value_days": None,
    "activities": {"total": 12, "done": 1, "overdue": 0},
}
_STARTED_ON = datetime.date(2026, 11, 2)
# The first two activities of the first phase: done, then in progress (the rest not started).
_PROGRESS = {301: "done", 302: "in_progress"}


def _phase_example(number: int, phase) -> dict:
    """Phase `number` (1-based) of the journey detail: its dates from the start day, every template
    activity due on the phase's end date, ids 301 onwards in template order."""
    starts_on = (_STARTED_ON + datetime.timedelta(days=phase.start_day)).isoformat()
    ends_on = (_STARTED_ON + datetime.timedelta(days=phase.end_day)).isoformat()
    first_id = 301 + sum(len(p.activities) for p in reference.PHASES[: number - 1])
    activities = []
    for pk, text in enumerate(phase.activities, first_id):
        status = _PROGRESS.get(pk, "not_started")
        activities.append(
            {
                "id": pk,
                "text": text,
                "status": status,
                "due_on": ends_on,
                "completed_on": "2026-11-20" if status == "done" else None,
                "overdue": False,
            }
        )
    return {
        **_PHASE_REFS[number - 1],
        "objective": phase.objective,
        "start_day": phase.start_day,
        "end_day": phase.end_day,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "is_current": number == 1,
        "activities": activities,
    }


_JOURNEY_DETAIL_EXAMPLE = {
    **_JOURNEY_EXAMPLE,
    "phases": [_phase_example(n, phase) for n, phase in enumerate(reference.PHASES, 1)],
}
# What starting it answered on 2026-11-02: every activity not started, status not computed until the nightly.
_JOURNEY_STARTED_EXAMPLE = {
    **_JOURNEY_DETAIL_EXAMPLE,
    "status_computed_on": None,
    "activities": {"total": 12, "done": 0, "overdue": 0},
    "phases": [
        {**phase, "activities": [{**row, "status": "not_started", "completed_on": None} for row in phase["activities"]]}
        for phase in _JOURNEY_DETAIL_EXAMPLE["phases"]
    ],
}
# The activity in progress (the list and detail rows); completing it answers _ACTIVITY_DONE_EXAMPLE.
_ACTIVITY_EXAMPLE = {
    "id": 302,
    "journey": 12,
    "account": 42,
    "account_name": "Harbor Point Bank",
    "phase": _ASSESSMENT,
    "text": reference.PHASES[0].activities[1],
    "status": "in_progress",
    "due_on": _JOURNEY_DETAIL_EXAMPLE["phases"][0]["ends_on"],
    "completed_on": None,
    "overdue": False,
}
_ACTIVITY_DONE_EXAMPLE = {**_ACTIVITY_EXAMPLE, "status": "done", "completed_on": "2026-11-22"}
_DECISION_REQUEST = {
    "account": 42,
    "journey": 12,
    "kind": "blocker",
    "title": "Choose the settlement file format",
    "description": "The bank's treasury team has not chosen between CSV and ISO 20022 pain.001 for payouts.",
    "owner": 7,
    "due_date": "2026-12-01",
    "fallback": "Keep the current CSV format",
    "customer_impact": "Payout files stay manual until the format is chosen.",
}
_DECISION_READ_EXAMPLE = {
    "id": 88,
    **_DECISION_REQUEST,
    "account_name": "Harbor Point Bank",
    "owner_name": "Jordan Lee",
    "status": "open",
    "resolution": "",
    "resolved_at": None,
    "escalated_at": None,
    "escalated_to": None,
    "created_at": "2026-11-20T15:00:00Z",
    "overdue": False,
}
_DECISION_RESOLVED_EXAMPLE = {
    **_DECISION_READ_EXAMPLE,
    "status": "resolved",
    "resolution": "ISO 20022 pain.001 from January.",
    "resolved_at": "2026-11-23T14:30:00Z",
}


class PhaseRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Phase
        fields = ["id", "order", "name"]


class ActivitiesSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    overdue = serializers.IntegerField(help_text="Not done and due before the tenant's today.")


@response_example("onboarding journey", _JOURNEY_EXAMPLE)
class AccountJourneySerializer(serializers.ModelSerializer):
    account_name = serializers.CharField(source="account.name", read_only=True)
    template_name = serializers.CharField(source="template.name", read_only=True)
    current_phase = PhaseRefSerializer(read_only=True, allow_null=True)
    activities = serializers.SerializerMethodField()

    class Meta:
        model = AccountJourney
        fields = [
            "id",
            "account",
            "account_name",
            "template",
            "template_name",
            "started_on",
            "status",
            "status_reason",
            "status_computed_on",
            "current_phase",
            "completed_on",
            "onboarding_days",
            "time_to_value_days",
            "activities",
        ]
        read_only_fields = fields

    @extend_schema_field(ActivitiesSummarySerializer)
    def get_activities(self, journey: AccountJourney) -> dict[str, int]:
        return {
            "total": journey.activities_total,
            "done": journey.activities_done,
            "overdue": journey.activities_overdue,
        }


class PhaseActivityRowSerializer(serializers.ModelSerializer):
    text = serializers.CharField(source="activity.text", read_only=True)
    overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = JourneyActivity
        fields = ["id", "text", "status", "due_on", "completed_on", "overdue"]
        read_only_fields = fields


class JourneyPhaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order = serializers.IntegerField()
    name = serializers.CharField()
    objective = serializers.CharField()
    start_day = serializers.IntegerField(help_text="Days after the journey starts.")
    end_day = serializers.IntegerField()
    starts_on = serializers.DateField()
    ends_on = serializers.DateField()
    is_current = serializers.BooleanField()
    activities = PhaseActivityRowSerializer(many=True)


@response_example("onboarding journey", _JOURNEY_DETAIL_EXAMPLE)
class AccountJourneyDetailSerializer(AccountJourneySerializer):
    phases = JourneyPhaseSerializer(source="phase_rows", many=True, read_only=True)

    class Meta(AccountJourneySerializer.Meta):
        fields = [*AccountJourneySerializer.Meta.fields, "phases"]
        read_only_fields = fields


class JourneyStartSerializer(serializers.Serializer):
    account = BookAccountField()
    template = TenantPkField(JourneyTemplate)
    started_on = DayField()


@response_example("activity in progress", _ACTIVITY_EXAMPLE)
class JourneyActivitySerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="journey.account_id", read_only=True)
    account_name = serializers.CharField(source="journey.account.name", read_only=True)
    phase = PhaseRefSerializer(source="activity.phase", read_only=True)
    text = serializers.CharField(source="activity.text", read_only=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = JourneyActivity
        fields = [
            "id",
            "journey",
            "account",
            "account_name",
            "phase",
            "text",
            "status",
            "due_on",
            "completed_on",
            "overdue",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_overdue(self, activity: JourneyActivity) -> bool:
        return activity.status != ActivityStatus.DONE and activity.due_on < self.context["today"]


class ActivityCompleteSerializer(serializers.Serializer):
    completed_on = DayField(
        required=False, help_text="When the activity was done; the tenant's today if left out. Not in the future."
    )


@response_example("open blocker", _DECISION_READ_EXAMPLE)
class DecisionSerializer(serializers.ModelSerializer):
    account_name = serializers.CharField(source="account.name", read_only=True)
    owner_name = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Decision
        fields = [
            "id",
            "account",
            "account_name",
            "journey",
            "kind",
            "title",
            "description",
            "owner",
            "owner_name",
            "due_date",
            "fallback",
            "customer_impact",
            "status",
            "resolution",
            "resolved_at",
            "escalated_at",
            "escalated_to",
            "created_at",
            "overdue",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_owner_name(self, decision: Decision) -> str | None:
        return display_name(decision.owner)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_overdue(self, decision: Decision) -> bool:
        return decision.status in selectors.OPEN_STATUSES and decision.due_date < self.context["today"]


class DecisionCreateSerializer(serializers.Serializer):
    account = BookAccountField()
    journey = TenantPkField(
        AccountJourney,
        "journey",
        queryset=in_book(AccountJourney),
        required=False,
        allow_null=True,
        help_text="A journey of the same account.",
    )
    kind = serializers.ChoiceField(choices=DecisionKind.choices, default=DecisionKind.DECISION)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    owner = MemberUserField(help_text="The one person who decides: a user id of an active member.")
    due_date = DayField()
    fallback = serializers.CharField(max_length=255, help_text="What happens if nobody decides by the due date.")
    customer_impact = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text="What the client feels if this is not decided in time (shown in the weekly scorecard).",
    )


class DecisionResolveSerializer(serializers.Serializer):
    resolution = serializers.CharField(help_text="What was decided.")
    apply_fallback = serializers.BooleanField(
        default=False, help_text="True: nobody decided and the fallback was applied."
    )


# --- Filters -----------------------------------------------------------------------------------------------


class JourneyFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id", label="Journeys of this account (id).")
    status = filters.ChoiceFilter(choices=JourneyStatus.choices, label="As last computed by the nightly.")
    template = IdFilter(field_name="template_id", label="Journeys of this template (id).")

    class Meta:
        model = AccountJourney
        fields = ["account", "status", "template"]


class ActivityFilter(filters.FilterSet):
    account = IdFilter(field_name="journey__account_id", label="Activities of this account (id).")
    journey = IdFilter(field_name="journey_id", label="Activities of this journey (id).")
    status = filters.ChoiceFilter(choices=ActivityStatus.choices)
    due_before = DayFilter(field_name="due_on", lookup_expr="lte", label="Due on or before this date.")
    due_after = DayFilter(field_name="due_on", lookup_expr="gte", label="Due on or after this date.")
    overdue = filters.BooleanFilter(method="filter_overdue", label="true: not done and past due (tenant's today).")

    class Meta:
        model = JourneyActivity
        fields = ["account", "journey", "status", "due_before", "due_after", "overdue"]

    def filter_overdue(self, queryset, name, value):
        late = Q(due_on__lt=tenant_today(self.request._request.tenant)) & ~Q(status=ActivityStatus.DONE)
        return queryset.filter(late) if value else queryset.exclude(late)


class DecisionFilter(filters.FilterSet):
    account = IdFilter(field_name="account_id", label="Decisions of this account (id).")
    status = filters.ChoiceFilter(choices=DecisionStatus.choices)
    kind = filters.ChoiceFilter(choices=DecisionKind.choices)
    owner = IdFilter(field_name="owner_id", label="Decisions owned by this user (id).")
    overdue = filters.BooleanFilter(method="filter_overdue", label="true: open or escalated, and past due.")
    escalated = filters.BooleanFilter(
        field_name="escalated_at", lookup_expr="isnull", exclude=True, label="true: escalated to a manager."
    )

    class Meta:
        model = Decision
        fields = ["account", "status", "kind", "owner", "overdue", "escalated"]

    def filter_overdue(self, queryset, name, value):
        late = Q(status__in=selectors.OPEN_STATUSES, due_date__lt=tenant_today(self.request._request.tenant))
        return queryset.filter(late) if value else queryset.exclude(late)


# --- Viewsets ----------------------------------------------------------------------------------------------


class JourneysViewSet(TenantViewSet):
    scope_family = "journeys"


_START_EXAMPLE = OpenApiExample(
    "Start the onboarding journey",
    value={"account": 42, "template": 1, "started_on": "2026-11-02"},
    request_only=True,
)


@extend_schema_view(
    list=extend_schema(summary="List account journeys"),
    retrieve=extend_schema(summary="One journey with its phases and activities"),
    create=extend_schema(
        summary="Start a journey on an account",
        description="Every template activity gets a due date at its phase's end day. Sessions: admins, managers "
        "and CSMs. Tokens: journeys:write.",
        request=JourneyStartSerializer,
        responses={201: AccountJourneyDetailSerializer},
        examples=[
            _START_EXAMPLE,
            OpenApiExample(
                "Start the onboarding journey", value=_JOURNEY_STARTED_EXAMPLE, response_only=True, status_codes=["201"]
            ),
        ],
    ),
)
class AccountJourneyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, JourneysViewSet):
    """Account journeys of the caller's book: template, status and current phase as last computed by the
    nightly, and activity counts (total, done, overdue as of the tenant's today). The detail adds the
    template's phases with their dates and the journey's activities."""

    lookup_url_kwarg = "journey_id"
    filterset_class = JourneyFilter
    ordering = ("-started_on", "-id")
    ordering_fields = ["started_on", "id"]

    capabilities = {"create": Capability.RUN_JOURNEYS}
    input_serializers = {"create": JourneyStartSerializer}
    queryset = AccountJourney._plain.none()

    def visible_queryset(self) -> QuerySet[AccountJourney]:
        journeys = selectors.journey_list(self.request.user, self.membership)
        return selectors.journey_list_as_of(journeys, today=tenant_today(self.tenant))

    def get_serializer_class(self):
        return AccountJourneyDetailSerializer if self.action in ("retrieve", "create") else AccountJourneySerializer

    def read_back(self, obj: AccountJourney) -> AccountJourney:
        journey = super().read_back(obj)
        journey.phase_rows = selectors.journey_phases(journey, today=tenant_today(self.tenant))
        return journey

    def retrieve(self, request, *args, **kwargs):
        journey = self.get_object()
        journey.phase_rows = selectors.journey_phases(journey, today=tenant_today(self.tenant))
        return Response(self.get_serializer(journey).data)

    def perform_create(self, serializer) -> None:
        serializer.instance = account_journey_start(
            tenant=self.tenant, actor=self.request.user, **serializer.validated_data
        )


_COMPLETE_EXAMPLE = OpenApiExample("Done yesterday", value={"completed_on": "2026-11-22"}, request_only=True)


@extend_schema_view(
    list=extend_schema(summary="List journey activities"),
    retrieve=extend_schema(summary="One journey activity"),
)
class JourneyActivityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, JourneysViewSet):
    """The activities of the caller's book's journeys: the template activity's text and phase, status, due
    date, completion date, and whether it is overdue (not done, due before the tenant's today)."""

    lookup_url_kwarg = "activity_id"
    filterset_class = ActivityFilter
    serializer_class = JourneyActivitySerializer
    ordering = ("due_on", "id")
    ordering_fields = ["due_on", "id"]

    capabilities = {"complete": Capability.RUN_JOURNEYS}
    input_serializers = {"complete": ActivityCompleteSerializer}
    queryset = JourneyActivity._plain.none()

    def visible_queryset(self) -> QuerySet[JourneyActivity]:
        return selectors.activity_list(self.request.user, self.membership)

    @extend_schema(
        summary="Complete an activity",
        description="Marks the activity done on `completed_on` (not before the journey started, not in the "
        "future). Sessions: admins, managers and CSMs. Tokens: journeys:write.",
        request=ActivityCompleteSerializer,
        responses={200: JourneyActivitySerializer},
        examples=[
            _COMPLETE_EXAMPLE,
            OpenApiExample("Done yesterday", value=_ACTIVITY_DONE_EXAMPLE, response_only=True, status_codes=["200"]),
        ],
    )
    @action(detail=True, methods=["post"], url_path="complete")
    def complete(self, request, activity_id=None):
        activity = self.get_object()
        data = self.parse(action_body(request)).validated_data
        activity = journey_activity_complete(tenant=self.tenant, activity=activity, actor=request.user, **data)
        return self.answer(activity)


_DECISION_EXAMPLE = OpenApiExample("A blocker with a fallback", value=_DECISION_REQUEST, request_only=True)
_RESOLVE_EXAMPLE = OpenApiExample(
    "Decided", value={"resolution": "ISO 20022 pain.001 from January.", "apply_fallback": False}, request_only=True
)


@extend_schema_view(
    list=extend_schema(summary="List decisions and blockers"),
    retrieve=extend_schema(summary="One decision or blocker"),
    create=extend_schema(
        summary="Add a decision or blocker",
        description="One owner (an active member), a due date and a fallback. Sessions: admins, executives, "
        "managers and CSMs. Tokens: journeys:write.",
        request=DecisionCreateSerializer,
        responses={201: DecisionSerializer},
        examples=[_DECISION_EXAMPLE],
    ),
)
class DecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CreateMixin, JourneysViewSet):
    """Decisions and blockers on the caller's book's accounts: one owner, a due date and a fallback each.
    Unresolved 48 hours past due, the nightly escalates them to the owner's manager (`escalated_at`)."""

    lookup_url_kwarg = "decision_id"
    filterset_class = DecisionFilter
    serializer_class = DecisionSerializer
    ordering = ("due_date", "id")
    ordering_fields = ["due_date", "created_at", "id"]

    capabilities = {"create": Capability.MANAGE_DECISIONS, "resolve": Capability.MANAGE_DECISIONS}
    input_serializers = {"create": DecisionCreateSerializer, "resolve": DecisionResolveSerializer}
    queryset = Decision._plain.none()

    def visible_queryset(self) -> QuerySet[Decision]:
        return selectors.decision_list(self.request.user, self.membership)

    def perform_create(self, serializer) -> None:
        serializer.instance = decision_create(tenant=self.tenant, actor=self.request.user, **serializer.validated_data)

    @extend_schema(
        summary="Resolve a decision or blocker",
        description="Closes it with what was decided, or with its fallback applied. Sessions: admins, "
        "executives, managers and CSMs. Tokens: journeys:write.",
        request=DecisionResolveSerializer,
        responses={200: DecisionSerializer},
        examples=[
            _RESOLVE_EXAMPLE,
            OpenApiExample("Decided", value=_DECISION_RESOLVED_EXAMPLE, response_only=True, status_codes=["200"]),
        ],
    )
    @action(detail=True, methods=["post"], url_path="resolve")
    def resolve(self, request, decision_id=None):
        decision = self.get_object()
        data = self.parse(action_body(request)).validated_data
        decision = decision_resolve(tenant=self.tenant, decision=decision, actor=request.user, **data)
        return self.answer(decision)


def register(router) -> None:
    router.register("journeys", AccountJourneyViewSet, basename="api-journey")
    router.register("activities", JourneyActivityViewSet, basename="api-activity")
    router.register("decisions", DecisionViewSet, basename="api-decision")


urlpatterns: list = []
