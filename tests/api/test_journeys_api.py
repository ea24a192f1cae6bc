"""REST API v1, family "journeys": account journeys, their activities, decisions and blockers. Reads are
scoped by visible_accounts (another tenant's or another CSM's object is a 404, its id in a body a 400 on
that field); writes go through the services (each records its audit event); sessions write what the
account page's forms let their role post, tokens what their scopes allow."""

from __future__ import annotations

import datetime

import pytest

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import AccountJourney, ActivityStatus, Decision, DecisionStatus, JourneyActivity, JourneyTemplate
from tests import factories
from tests.api.helpers import api_post, bearer, field_errors, list_query_count, rejected_filter, result_ids
from tests.helpers import event_count, last_event, log_in_as, other_csm_account, owned_account
from tests.tenants import exists_anywhere, in_every_tenant

JOURNEYS = "/api/v1/journeys/"
ACTIVITIES = "/api/v1/activities/"
DECISIONS = "/api/v1/decisions/"
TODAY = datetime.date.today()


def _template(world) -> JourneyTemplate:
    with context.tenant_context(world.tenant):
        return JourneyTemplate.objects.filter(is_reference=True).order_by("pk").first()


def _activities(journey) -> list[JourneyActivity]:
    with context.tenant_context(journey.tenant):
        return list(journey.activity_progress.select_related("activity__phase").order_by("due_on", "pk"))


# --- journeys -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_journey_list_and_detail_show_status_phase_and_activity_counts(client, tenant_a):
    account = owned_account(tenant_a)
    journey = factories.journey_of(account, started_on=TODAY - datetime.timedelta(days=60))
    activities = _activities(journey)
    with context.tenant_context(tenant_a.tenant):
        JourneyActivity.objects.filter(pk=activities[0].pk).update(status=ActivityStatus.DONE, completed_on=TODAY)
    overdue = sum(1 for a in activities[1:] if a.due_on < TODAY)
    log_in_as(client, tenant_a, Role.CSM)

    rows = client.get(JOURNEYS).json()["results"]
    assert [row["id"] for row in rows] == [journey.pk]
    row = rows[0]
    assert row["account"] == account.pk and row["account_name"] == account.name
    assert row["template"] == journey.template_id and row["status"] == journey.status
    assert row["current_phase"]["id"] == journey.current_phase_id
    assert row["activities"] == {"total": len(activities), "done": 1, "overdue": overdue}
    assert overdue > 0  # 60 days in, the first phase (days 0-45) is past due

    detail = client.get(f"{JOURNEYS}{journey.pk}/").json()
    assert detail["activities"] == row["activities"]
    phases = detail["phases"]
    assert [p["order"] for p in phases] == sorted(p["order"] for p in phases) and len(phases) >= 2
    assert [p["is_current"] for p in phases].count(True) == 1
    assert phases[0]["starts_on"] == (journey.started_on + datetime.timedelta(days=phases[0]["start_day"])).isoformat()
    listed = {a["id"]: a for p in phases for a in p["activities"]}
    assert set(listed) == {a.pk for a in activities}
    assert listed[activities[0].pk]["status"] == "done" and listed[activities[0].pk]["overdue"] is False


@pytest.mark.django_db
def test_journey_filters(client, tenant_a):
    first = factories.journey_of(owned_account(tenant_a, "Harbor Point Bank"))
    second = factories.journey_of(owned_account(tenant_a, "Granite Bay Credit Union"))
    with context.tenant_context(tenant_a.tenant):
        AccountJourney.objects.filter(pk=second.pk).update(status="late")
    headers = bearer(tenant_a, "journeys:read")
    assert result_ids(client.get(JOURNEYS, {"account": first.account_id}, **headers)) == [first.pk]
    assert result_ids(client.get(JOURNEYS, {"status": "late"}, **headers)) == [second.pk]
    assert result_ids(client.get(JOURNEYS, {"template": first.template_id}, **headers)) == [second.pk, first.pk]
    assert "status" in rejected_filter(client, JOURNEYS, {"status": "lost"}, headers)


@pytest.mark.django_db
def test_journey_start_through_the_service_with_its_audit_event(client, tenant_a):
    account = owned_account(tenant_a)
    template = _template(tenant_a)
    headers = bearer(tenant_a, "journeys:write")
    body = {"account": account.pk, "template": template.pk, "started_on": TODAY.isoformat()}

    response = api_post(client, JOURNEYS, body, headers)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["account"] == account.pk and created["activities"]["done"] == 0 and created["phases"]
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.actor_id) == (
        "account_journey.start",
        str(created["id"]),
        tenant_a.user(Role.ADMIN).pk,
    )

    again = api_post(client, JOURNEYS, body, headers)
    assert again.status_code == 400 and "started_on" in field_errors(again)


@pytest.mark.django_db
def test_journey_start_refuses_ids_outside_the_tenant_or_book_by_field(client, tenant_a, tenant_b):
    account_b = factories.AccountFactory(tenant=tenant_b.tenant)
    other_book = other_csm_account(tenant_a)
    template = _template(tenant_a)
    mine = owned_account(tenant_a)
    headers = bearer(tenant_a, "journeys:write")
    before = event_count(tenant_a.tenant)

    response = api_post(
        client, JOURNEYS, {"account": account_b.pk, "template": template.pk, "started_on": TODAY.isoformat()}, headers
    )
    assert response.status_code == 400 and list(field_errors(response)) == ["account"]
    response = api_post(
        client,
        JOURNEYS,
        {"account": mine.pk, "template": _template(tenant_b).pk, "started_on": TODAY.isoformat()},
        headers,
    )
    assert response.status_code == 400 and list(field_errors(response)) == ["template"]
    log_in_as(client, tenant_a, Role.CSM)
    response = api_post(
        client, JOURNEYS, {"account": other_book.pk, "template": template.pk, "started_on": "2026-01-05"}
    )
    assert response.status_code == 400 and list(field_errors(response)) == ["account"]
    assert event_count(tenant_a.tenant) == before
    assert not exists_anywhere(AccountJourney)


@pytest.mark.django_db
def test_journeys_of_another_tenant_or_book_answer_404(client, tenant_a, tenant_b):
    theirs = factories.journey_of(factories.AccountFactory(tenant=tenant_b.tenant))
    other_book = factories.journey_of(other_csm_account(tenant_a))
    log_in_as(client, tenant_a, Role.CSM)
    assert client.get(f"{JOURNEYS}{theirs.pk}/").status_code == 404
    response = client.get(f"{JOURNEYS}{other_book.pk}/")
    assert response.status_code == 404 and response.json()["status"] == 404
    assert client.get(JOURNEYS).json()["results"] == []
    log_in_as(client, tenant_a, Role.COMPLIANCE)  # whole tenant
    assert client.get(f"{JOURNEYS}{other_book.pk}/").status_code == 200


# --- activities ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_activity_filters(client, tenant_a):
    journey = factories.journey_of(owned_account(tenant_a), started_on=TODAY - datetime.timedelta(days=60))
    other = factories.journey_of(owned_account(tenant_a, "Granite Bay Credit Union"))
    activities = _activities(journey)
    done = activities[0]
    with context.tenant_context(tenant_a.tenant):
        JourneyActivity.objects.filter(pk=done.pk).update(status=ActivityStatus.DONE, completed_on=TODAY)
    headers = bearer(tenant_a, "journeys:read")

    def ids(**params) -> set[int]:
        return set(result_ids(client.get(ACTIVITIES, {"page_size": 500, **params}, **headers)))

    mine = {a.pk for a in activities}
    assert ids(journey=journey.pk) == mine
    assert ids(account=journey.account_id) == mine
    assert ids(status="done") == {done.pk}
    overdue = {a.pk for a in activities if a.due_on < TODAY and a.pk != done.pk}
    assert overdue and ids(overdue="true", journey=journey.pk) == overdue
    assert ids(overdue="false", journey=journey.pk) == mine - overdue
    cutoff = activities[3].due_on
    assert ids(due_before=cutoff.isoformat(), journey=journey.pk) == {a.pk for a in activities if a.due_on <= cutoff}
    assert ids(due_after=cutoff.isoformat(), journey=other.pk) == {
        a.pk for a in _activities(other) if a.due_on >= cutoff
    }
    assert "due_before" in rejected_filter(client, ACTIVITIES, {"due_before": "soon"}, headers)
    assert "journey" in rejected_filter(client, ACTIVITIES, {"journey": "abc"}, headers)


@pytest.mark.django_db
def test_activity_detail(client, tenant_a):
    account = owned_account(tenant_a)
    journey = factories.journey_of(account)
    activity = _activities(journey)[0]
    log_in_as(client, tenant_a, Role.MANAGER)  # the CSM's manager: the team's book
    body = client.get(f"{ACTIVITIES}{activity.pk}/").json()
    assert body == {
        "id": activity.pk,
        "journey": journey.pk,
        "account": account.pk,
        "account_name": account.name,
        "phase": {
            "id": activity.activity.phase_id,
            "order": activity.activity.phase.order,
            "name": activity.activity.phase.name,
        },
        "text": activity.activity.text,
        "status": "not_started",
        "due_on": activity.due_on.isoformat(),
        "completed_on": None,
        "overdue": False,
    }


@pytest.mark.django_db
def test_activity_complete_through_the_service_with_its_audit_event(client, tenant_a):
    journey = factories.journey_of(owned_account(tenant_a), started_on=TODAY - datetime.timedelta(days=10))
    first, second = _activities(journey)[:2]
    log_in_as(client, tenant_a, Role.CSM)
    yesterday = TODAY - datetime.timedelta(days=1)

    response = api_post(client, f"{ACTIVITIES}{first.pk}/complete/", {"completed_on": yesterday.isoformat()})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "done" and response.json()["completed_on"] == yesterday.isoformat()
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.actor_id) == (
        "journey_activity.complete",
        str(first.pk),
        tenant_a.user(Role.CSM).pk,
    )
    assert event.after["status"] == "done"

    # No date: the tenant's today.
    response = api_post(client, f"{ACTIVITIES}{second.pk}/complete/", {}, bearer(tenant_a, "journeys:write"))
    assert response.status_code == 200 and response.json()["completed_on"] == TODAY.isoformat()
    assert last_event(tenant_a.tenant).actor_id == tenant_a.user(Role.ADMIN).pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("completed_on", "reason"),
    [
        ("2199-01-01", "future"),
        ("2000-01-01", "before its journey started"),
        ("yesterday", "Date has wrong format"),
        ("2999-01-01", "from 1900-01-01 to 2200-12-31"),
    ],
)
def test_activity_complete_validation_names_the_field(client, tenant_a, completed_on, reason):
    journey = factories.journey_of(owned_account(tenant_a), started_on=TODAY - datetime.timedelta(days=10))
    activity = _activities(journey)[0]
    before = event_count(tenant_a.tenant)
    log_in_as(client, tenant_a, Role.CSM)
    response = api_post(client, f"{ACTIVITIES}{activity.pk}/complete/", {"completed_on": completed_on})
    assert response.status_code == 400
    errors = field_errors(response)
    assert list(errors) == ["completed_on"] and reason in errors["completed_on"]
    assert event_count(tenant_a.tenant) == before


@pytest.mark.django_db
def test_activity_complete_twice_is_refused(client, tenant_a):
    activity = _activities(factories.journey_of(owned_account(tenant_a)))[0]
    headers = bearer(tenant_a, "journeys:write")
    assert api_post(client, f"{ACTIVITIES}{activity.pk}/complete/", {}, headers).status_code == 200
    response = api_post(client, f"{ACTIVITIES}{activity.pk}/complete/", {}, headers)
    assert response.status_code == 400 and "Already completed" in field_errors(response)["completed_on"]


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "allowed"), [(Role.EXECUTIVE, False), (Role.VIEWER, False), (Role.ADMIN, True)])
def test_activity_complete_follows_the_pages_roles(client, tenant_a, role, allowed):
    activity = _activities(factories.journey_of(owned_account(tenant_a)))[0]
    log_in_as(client, tenant_a, role)
    response = api_post(client, f"{ACTIVITIES}{activity.pk}/complete/", {})
    assert response.status_code == (200 if allowed else 403), response.content
    with context.tenant_context(tenant_a.tenant):
        assert JourneyActivity.objects.get(pk=activity.pk).status == ("done" if allowed else "not_started")


@pytest.mark.django_db
def test_activity_of_another_tenant_or_book_answers_404(client, tenant_a, tenant_b):
    theirs = _activities(factories.journey_of(factories.AccountFactory(tenant=tenant_b.tenant)))[0]
    other_book = _activities(factories.journey_of(other_csm_account(tenant_a)))[0]
    log_in_as(client, tenant_a, Role.CSM)
    for activity in (theirs, other_book):
        assert client.get(f"{ACTIVITIES}{activity.pk}/").status_code == 404
        assert api_post(client, f"{ACTIVITIES}{activity.pk}/complete/", {}).status_code == 404
    # A role that may not complete activities still gets the 404 first: the refusal confirms nothing.
    log_in_as(client, tenant_a, Role.VIEWER)
    assert api_post(client, f"{ACTIVITIES}{theirs.pk}/complete/", {}).status_code == 404
    assert api_post(client, f"{ACTIVITIES}{other_book.pk}/complete/", {}).status_code == 403  # the viewer sees it
    assert not any(in_every_tenant(lambda: JourneyActivity.objects.filter(status=ActivityStatus.DONE).exists()))


# --- decisions ----------------------------------------------------------------------------------------------


def _decision_body(world, account_, **overrides) -> dict:
    return {
        "account": account_.pk,
        "kind": "blocker",
        "title": "Choose the settlement file format",
        "owner": world.user(Role.CSM).pk,
        "due_date": (TODAY + datetime.timedelta(days=5)).isoformat(),
        "fallback": "Keep the current CSV format",
        **overrides,
    }


@pytest.mark.django_db
def test_decision_create_through_the_service_with_its_audit_event(client, tenant_a):
    account = owned_account(tenant_a)
    journey = factories.journey_of(account)
    log_in_as(client, tenant_a, Role.CSM)
    impact = "Wire cut-off missed for 12 member banks"
    response = api_post(
        client, DECISIONS, _decision_body(tenant_a, account, journey=journey.pk, customer_impact=impact)
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "blocker" and body["status"] == "open" and body["journey"] == journey.pk
    assert body["customer_impact"] == impact
    assert body["owner"] == tenant_a.user(Role.CSM).pk and body["overdue"] is False
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.actor_id) == (
        "decision.create",
        str(body["id"]),
        tenant_a.user(Role.CSM).pk,
    )
    assert client.get(f"{DECISIONS}{body['id']}/").json() == body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"fallback": ""}, "fallback"),
        ({"fallback": None}, "fallback"),
        ({"title": ""}, "title"),
        ({"due_date": "next week"}, "due_date"),
        ({"kind": "wish"}, "kind"),
        ({"owner": 0}, "owner"),
    ],
)
def test_decision_create_validation_names_the_field(client, tenant_a, overrides, field):
    account = owned_account(tenant_a)
    before = event_count(tenant_a.tenant)
    response = api_post(
        client, DECISIONS, _decision_body(tenant_a, account, **overrides), bearer(tenant_a, "journeys:write")
    )
    assert response.status_code == 400, response.content
    assert list(field_errors(response)) == [field]
    assert response.json()["code"] == "invalid"
    assert event_count(tenant_a.tenant) == before + 1  # the token's own api_token.create


@pytest.mark.django_db
def test_decision_create_refuses_ids_outside_the_tenant_or_book_by_field(client, tenant_a, tenant_b):
    account = owned_account(tenant_a)
    account_b = factories.AccountFactory(tenant=tenant_b.tenant)
    other_book = other_csm_account(tenant_a)
    other_journey = factories.journey_of(owned_account(tenant_a, "Granite Bay Credit Union"))
    journey_b = factories.journey_of(account_b)
    log_in_as(client, tenant_a, Role.CSM)
    cases = [
        ({"account": account_b.pk}, "account"),
        ({"account": other_book.pk}, "account"),  # same tenant, another CSM's book
        ({"owner": tenant_b.user(Role.CSM).pk}, "owner"),  # a user of another tenant only
        ({"journey": journey_b.pk}, "journey"),
        ({"journey": other_journey.pk}, "journey"),  # visible, but another account's journey
    ]
    for overrides, field in cases:
        response = api_post(client, DECISIONS, _decision_body(tenant_a, account, **overrides))
        assert response.status_code == 400, (overrides, response.content)
        assert list(field_errors(response)) == [field], overrides
    assert not exists_anywhere(Decision)


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "allowed"), [(Role.EXECUTIVE, True), (Role.COMPLIANCE, False), (Role.VIEWER, False)])
def test_decision_create_follows_the_pages_roles(client, tenant_a, role, allowed):
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, role)
    response = api_post(client, DECISIONS, _decision_body(tenant_a, account))
    assert response.status_code == (201 if allowed else 403), response.content


@pytest.mark.django_db
def test_decision_resolve_through_the_service_with_its_audit_event(client, tenant_a):
    account = owned_account(tenant_a)
    decision = factories.DecisionFactory(tenant=tenant_a.tenant, account=account, owner=tenant_a.user(Role.CSM))
    fallback = factories.DecisionFactory(tenant=tenant_a.tenant, account=account, owner=tenant_a.user(Role.CSM))
    log_in_as(client, tenant_a, Role.CSM)

    response = api_post(client, f"{DECISIONS}{decision.pk}/resolve/", {"resolution": "ISO 20022 from January."})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "resolved" and response.json()["resolution"] == "ISO 20022 from January."
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.before["status"], event.after["status"]) == (
        "decision.resolve",
        str(decision.pk),
        "open",
        "resolved",
    )

    response = api_post(
        client, f"{DECISIONS}{fallback.pk}/resolve/", {"resolution": "Nobody answered.", "apply_fallback": True}
    )
    assert response.json()["status"] == DecisionStatus.FALLBACK_APPLIED

    again = api_post(client, f"{DECISIONS}{decision.pk}/resolve/", {"resolution": "Changed our minds."})
    assert again.status_code == 400 and "already closed" in field_errors(again)["status"]
    empty = api_post(client, f"{DECISIONS}{fallback.pk}/resolve/", {})
    assert empty.status_code == 400


@pytest.mark.django_db
def test_decision_resolve_validation_names_the_field(client, tenant_a):
    decision = factories.DecisionFactory(tenant=tenant_a.tenant, account=owned_account(tenant_a))
    headers = bearer(tenant_a, "journeys:write")
    for body in ({}, {"resolution": ""}, {"resolution": "   "}):
        response = api_post(client, f"{DECISIONS}{decision.pk}/resolve/", body, headers)
        assert response.status_code == 400 and list(field_errors(response)) == ["resolution"], body
    response = api_post(
        client, f"{DECISIONS}{decision.pk}/resolve/", {"resolution": "Yes", "apply_fallback": "maybe"}, headers
    )
    assert response.status_code == 400 and list(field_errors(response)) == ["apply_fallback"]


@pytest.mark.django_db
def test_another_csms_decision_answers_404_and_stays_open(client, tenant_a, tenant_b):
    other_account = other_csm_account(tenant_a)
    other_csm = other_account.owner_csm
    theirs = factories.DecisionFactory(tenant=tenant_a.tenant, account=other_account, owner=other_csm)
    tenant_b_decision = factories.DecisionFactory(tenant=tenant_b.tenant, owner=tenant_b.user(Role.CSM))
    log_in_as(client, tenant_a, Role.CSM)
    for decision in (theirs, tenant_b_decision):
        assert client.get(f"{DECISIONS}{decision.pk}/").status_code == 404
        response = api_post(client, f"{DECISIONS}{decision.pk}/resolve/", {"resolution": "Mine now."})
        assert response.status_code == 404 and response.json()["status"] == 404
    assert client.get(DECISIONS).json()["results"] == []
    statuses = in_every_tenant(lambda: set(Decision.objects.values_list("status", flat=True)))
    assert set().union(*statuses) == {"open"}
    log_in_as(client, tenant_a, Role.MANAGER)  # the manager's team does not include the other CSM
    assert client.get(f"{DECISIONS}{theirs.pk}/").status_code == 404
    log_in_as(client, tenant_a, Role.EXECUTIVE)
    assert client.get(f"{DECISIONS}{theirs.pk}/").status_code == 200


@pytest.mark.django_db
def test_decision_filters(client, tenant_a):
    account = owned_account(tenant_a)
    second = owned_account(tenant_a, "Granite Bay Credit Union")
    csm, manager = tenant_a.user(Role.CSM), tenant_a.user(Role.MANAGER)
    make = factories.DecisionFactory
    late = make(tenant=tenant_a.tenant, account=account, owner=csm, due_date=TODAY - datetime.timedelta(days=1))
    blocker = make(tenant=tenant_a.tenant, account=second, owner=manager, kind="blocker")
    escalated = make(
        tenant=tenant_a.tenant,
        account=account,
        owner=csm,
        due_date=TODAY - datetime.timedelta(days=5),
        status="escalated",
    )
    closed = make(
        tenant=tenant_a.tenant,
        account=account,
        owner=csm,
        due_date=TODAY - datetime.timedelta(days=9),
        status="resolved",
        resolution="Done",
    )
    with context.tenant_context(tenant_a.tenant):
        Decision.objects.filter(pk=escalated.pk).update(escalated_at=datetime.datetime.now(datetime.UTC))
    headers = bearer(tenant_a, "journeys:read")

    def ids(**params) -> list[int]:
        return result_ids(client.get(DECISIONS, params, **headers))

    assert ids() == [closed.pk, escalated.pk, late.pk, blocker.pk]  # by due date
    assert ids(account=second.pk) == [blocker.pk]
    assert ids(status="resolved") == [closed.pk]
    assert ids(kind="blocker") == [blocker.pk]
    assert ids(owner=manager.pk) == [blocker.pk]
    assert ids(overdue="true") == [escalated.pk, late.pk]
    assert ids(overdue="false") == [closed.pk, blocker.pk]
    assert ids(escalated="true") == [escalated.pk]
    assert ids(escalated="false") == [closed.pk, late.pk, blocker.pk]
    rows = {row["id"]: row for row in client.get(DECISIONS, **headers).json()["results"]}
    assert rows[late.pk]["overdue"] and not rows[closed.pk]["overdue"] and rows[escalated.pk]["escalated_at"]
    assert list(rejected_filter(client, DECISIONS, {"kind": "wish"}, headers)) == ["kind"]


# --- scopes -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tokens_need_the_journeys_scopes(client, tenant_a):
    account = owned_account(tenant_a)
    journey = factories.journey_of(account)
    activity = _activities(journey)[0]
    decision = factories.DecisionFactory(tenant=tenant_a.tenant, account=account)
    other_family = bearer(tenant_a, "accounts:read", "accounts:write", "compliance:write")
    read_only = bearer(tenant_a, "journeys:read")
    for url in (
        JOURNEYS,
        f"{JOURNEYS}{journey.pk}/",
        ACTIVITIES,
        f"{ACTIVITIES}{activity.pk}/",
        DECISIONS,
        f"{DECISIONS}{decision.pk}/",
    ):
        assert client.get(url, **other_family).status_code == 403, url
        assert client.get(url, **read_only).status_code == 200, url
    writes = [
        (JOURNEYS, {"account": account.pk, "template": journey.template_id, "started_on": "2026-02-02"}),
        (f"{ACTIVITIES}{activity.pk}/complete/", {}),
        (DECISIONS, _decision_body(tenant_a, account)),
        (f"{DECISIONS}{decision.pk}/resolve/", {"resolution": "Agreed."}),
    ]
    for url, body in writes:
        response = api_post(client, url, body, read_only)
        assert response.status_code == 403 and response.json()["code"] == "permission_denied", url
    write_only = bearer(tenant_a, "journeys:write")
    assert client.get(DECISIONS, **write_only).status_code == 403
    for url, body in writes:
        assert api_post(client, url, body, write_only).status_code in (200, 201), url


# --- query counts -----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", [JOURNEYS, ACTIVITIES, DECISIONS])
def test_list_query_count_does_not_grow_with_rows(client, tenant_a, url):
    headers = bearer(tenant_a, "journeys:read")
    csm = tenant_a.user(Role.CSM)

    def add(n: int) -> None:
        for _ in range(n):
            account = factories.AccountFactory(tenant=tenant_a.tenant)
            factories.journey_of(account)
            factories.DecisionFactory(tenant=tenant_a.tenant, account=account, owner=csm)

    add(2)
    client.get(url, **headers)  # the token's first use records its last-used time; later ones skip it
    small = list_query_count(client, url, headers, {"page_size": 100})
    add(18)
    large = list_query_count(client, url, headers, {"page_size": 100})
    with context.tenant_context(tenant_a.tenant):
        assert Decision.objects.count() == 20 and AccountJourney.objects.count() == 20
    # 1 the tenant holding the token (the SECURITY DEFINER lookup), 2 the token (creator and tenant joined),
    # 3 the creator's membership in the token's tenant, 4 the page
    # of rows: journeys with account, template and current phase joined and their activity counts grouped
    # in the same statement; activities with journey, account and phase joined; decisions with account,
    # owner and escalation target joined. An admin's book is the whole tenant: no query for the book.
    assert small == large == 4


@pytest.mark.django_db
def test_a_bare_post_to_an_action_reads_as_no_fields(client, tenant_a):
    account = owned_account(tenant_a)
    activity = _activities(factories.journey_of(account))[0]
    decision = factories.DecisionFactory(tenant=tenant_a.tenant, account=account)
    log_in_as(client, tenant_a, Role.CSM)
    assert client.post(f"{ACTIVITIES}{activity.pk}/complete/").json()["completed_on"] == TODAY.isoformat()
    response = client.post(f"{DECISIONS}{decision.pk}/resolve/")
    assert response.status_code == 400 and list(field_errors(response)) == ["resolution"]
    response = client.post(f"{DECISIONS}{decision.pk}/resolve/", {"resolution": "Form-encoded"})
    assert response.status_code == 415
