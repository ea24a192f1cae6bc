"""REST API v1: accounts, contacts and touchpoints (issue #5). Reads through the caller's book, writes
through the audited services, one error format, scopes and roles, cursor pagination."""

from __future__ import annotations

import datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account, Contact, Touchpoint
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from tests.api.helpers import audit_events, bearer, field_errors, rejected_filter
from tests.helpers import last_event, owned_account

ACCOUNTS = "/api/v1/accounts/"
CONTACTS = "/api/v1/contacts/"
TOUCHPOINTS = "/api/v1/touchpoints/"


def _login(client, world, role) -> None:
    client.force_login(world.user(role))


def _exists(world, model, pk: int) -> bool:
    with context.tenant_context(world.tenant):
        return model.objects.filter(pk=pk).exists()


def _segment_id(world, code: str = "bank") -> int:
    return factories.segment_of(world.tenant, code).pk


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


# --- Accounts: reads -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_account_list_and_detail_carry_the_latest_nightly_health(client, tenant_a):
    scored = owned_account(tenant_a, "Harbor Point Bank", arr=Decimal("1200000.50"), data_standards=["FIX"])
    today = datetime.date.today()
    factories.HealthSnapshotFactory(
        tenant=tenant_a.tenant, account=scored, snapshot_date=today - datetime.timedelta(days=1), total=Decimal("40")
    )
    factories.HealthSnapshotFactory(tenant=tenant_a.tenant, account=scored, snapshot_date=today, band="yellow")
    # Scored only on an older night: the latest run did not score it, so it has no current health.
    stale = factories.AccountFactory(tenant=tenant_a.tenant, name="Aspen Trust")
    factories.HealthSnapshotFactory(tenant=tenant_a.tenant, account=stale, snapshot_date=today - datetime.timedelta(1))
    _login(client, tenant_a, Role.EXECUTIVE)

    rows = client.get(ACCOUNTS).json()["results"]

    assert [row["name"] for row in rows] == ["Aspen Trust", "Harbor Point Bank"]
    assert (rows[0]["health_score"], rows[0]["health_band"], rows[0]["health_as_of"]) == (None, None, None)
    row = rows[1]
    assert (row["health_score"], row["health_band"], row["health_as_of"]) == ("72.50", "yellow", today.isoformat())
    assert row["arr"] == "1200000.50" and row["segment_code"] == "bank" and row["segment"] == scored.segment_id
    assert (row["owner_csm"], row["owner_csm_email"]) == (tenant_a.user(Role.CSM).pk, tenant_a.user(Role.CSM).email)
    assert row["data_standards"] == ["FIX"] and row["jurisdictions"] == []
    detail = client.get(f"{ACCOUNTS}{scored.pk}/")
    assert detail.status_code == 200 and detail.json() == row


@pytest.mark.django_db
def test_a_csm_sees_only_their_book_and_gets_404_elsewhere(client, tenant_a):
    mine = owned_account(tenant_a, "Harbor Point Bank")
    other = factories.AccountFactory(tenant=tenant_a.tenant, name="Someone Else's Bank")
    _login(client, tenant_a, Role.CSM)

    assert _names(client.get(ACCOUNTS)) == [mine.name]
    assert client.get(f"{ACCOUNTS}{mine.pk}/").status_code == 200
    for response in (
        client.get(f"{ACCOUNTS}{other.pk}/"),
        client.patch(f"{ACCOUNTS}{other.pk}/", {"tier": "growth"}, content_type="application/json"),
    ):
        assert response.status_code == 404
        assert response.json()["status"] == 404


@pytest.mark.django_db
def test_another_tenants_accounts_are_404_for_reads_and_writes(client, tenant_a, tenant_b):
    theirs = factories.AccountFactory(tenant=tenant_b.tenant, name="Meridian Mutual")
    auth = bearer(tenant_a, "accounts:read", "accounts:write")
    assert _names(client.get(ACCOUNTS, **auth)) == []
    url = f"{ACCOUNTS}{theirs.pk}/"
    assert client.get(url, **auth).status_code == 404
    assert client.patch(url, {"tier": "growth"}, content_type="application/json", **auth).status_code == 404
    assert client.delete(url, **auth).status_code == 404
    assert _exists(tenant_b, Account, theirs.pk)


# --- Accounts: writes ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_creates_an_account_audited_and_the_owner_gets_it(client, tenant_a):
    _login(client, tenant_a, Role.ADMIN)
    csm = tenant_a.user(Role.CSM)
    body = {
        "name": "Harbor Point Bank",
        "segment": _segment_id(tenant_a),
        "tier": "strategic",
        "arr": "1200000.00",
        "renewal_date": "2027-06-30",
        "owner_csm": csm.pk,
        "regulators": ["OCC"],
        "data_standards": ["ISO 20022"],
    }

    response = client.post(ACCOUNTS, body, content_type="application/json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["arr"] == "1200000.00" and created["owner_csm_email"] == csm.email
    assert created["health_band"] is None and created["segment_code"] == "bank"
    (event,) = audit_events(tenant_a, "account.create")
    assert event.object_id == str(created["id"]) and event.actor_id == tenant_a.user(Role.ADMIN).pk
    assert event.after["name"] == "Harbor Point Bank"
    assert audit_events(tenant_a, "account.grant_csm")  # the owner CSM holds the guardian permissions...
    client.force_login(csm)
    assert _names(client.get(ACCOUNTS)) == ["Harbor Point Bank"]  # ...so it is in their book


@pytest.mark.django_db
def test_account_validation_errors_name_the_field(client, tenant_a):
    owned_account(tenant_a, "Harbor Point Bank")
    _login(client, tenant_a, Role.ADMIN)
    segment = _segment_id(tenant_a)
    cases = [
        ({"segment": segment}, "name", "required"),
        ({"name": "X", "segment": segment, "arr": "lots"}, "arr", "number"),
        ({"name": "X", "segment": segment, "arr": "-5"}, "arr", "negative"),
        ({"name": "X", "segment": segment, "tier": "platinum"}, "tier", "not a valid choice"),
        ({"name": "X", "segment": segment, "data_standards": ["SWIFT MT"]}, "data_standards.0", "valid choice"),
        ({"name": "X", "segment": segment, "jurisdictions": "US"}, "jurisdictions", "list"),
        (
            {"name": "X", "segment": segment, "contract_start": "2026-01-01", "renewal_date": "2025-01-01"},
            "renewal_date",
            "before the contract start",
        ),
        ({"name": "Harbor Point Bank", "segment": segment}, "name", "already exists"),
        ({"name": "X", "segment": 999999}, "segment", "No such segment."),
        ({"name": "X", "segment": segment, "owner_csm": tenant_a.user(Role.VIEWER).pk}, "owner_csm", "Choose"),
    ]
    for body, field, reason in cases:
        response = client.post(ACCOUNTS, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["code"] == "invalid"
        errors = field_errors(response)
        assert field in errors and reason.lower() in errors[field].lower(), (body, errors)
    assert len(audit_events(tenant_a, "account.create")) == 1  # only the fixture's


@pytest.mark.django_db
def test_other_tenants_ids_in_a_body_are_field_errors(client, tenant_a, tenant_b):
    _login(client, tenant_a, Role.ADMIN)
    body = {"name": "X", "segment": _segment_id(tenant_b)}
    assert field_errors(client.post(ACCOUNTS, body, content_type="application/json")) == {"segment": "No such segment."}
    body = {"name": "X", "segment": _segment_id(tenant_a), "owner_csm": tenant_b.user(Role.CSM).pk}
    errors = field_errors(client.post(ACCOUNTS, body, content_type="application/json"))
    assert errors == {"owner_csm": "No such user in this tenant."}


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.CSM, Role.EXECUTIVE, Role.COMPLIANCE, Role.VIEWER])
def test_only_admins_and_managers_create_accounts(client, tenant_a, role):
    _login(client, tenant_a, role)
    response = client.post(ACCOUNTS, {"name": "X", "segment": _segment_id(tenant_a)}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not audit_events(tenant_a, "account.create")


@pytest.mark.django_db
def test_a_manager_creates_accounts_for_a_csm_of_their_team(client, tenant_a):
    _login(client, tenant_a, Role.MANAGER)
    body = {"name": "Harbor Point Bank", "segment": _segment_id(tenant_a)}
    assert field_errors(client.post(ACCOUNTS, body, content_type="application/json")) == {
        "owner_csm": "Choose a CSM of your team."
    }
    response = client.post(ACCOUNTS, {**body, "owner_csm": tenant_a.user(Role.CSM).pk}, content_type="application/json")
    assert response.status_code == 201, response.content
    assert _names(client.get(ACCOUNTS)) == ["Harbor Point Bank"]


@pytest.mark.django_db
def test_a_csm_patches_their_own_account_audited(client, tenant_a):
    account = owned_account(tenant_a, "Harbor Point Bank")
    _login(client, tenant_a, Role.CSM)

    response = client.patch(
        f"{ACCOUNTS}{account.pk}/", {"lifecycle_stage": "adoption", "arr": "300000"}, content_type="application/json"
    )

    assert response.status_code == 200, response.content
    assert (response.json()["lifecycle_stage"], response.json()["arr"]) == ("adoption", "300000.00")
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.actor_id) == ("account.update", str(account.pk), account.owner_csm_id)
    assert (event.before["lifecycle_stage"], event.after["lifecycle_stage"]) == ("onboarding", "adoption")
    # A CSM cannot hand their account to someone else: reassignment is for managers and admins.
    response = client.patch(
        f"{ACCOUNTS}{account.pk}/", {"owner_csm": tenant_a.user(Role.MANAGER).pk}, content_type="application/json"
    )
    assert response.status_code == 400
    assert field_errors(response) == {"owner_csm": "Only managers and admins reassign accounts."}
    with context.tenant_context(tenant_a.tenant):
        assert Account.objects.get(pk=account.pk).owner_csm_id == tenant_a.user(Role.CSM).pk


@pytest.mark.django_db
def test_put_replaces_the_account(client, tenant_a):
    account = owned_account(tenant_a, "Harbor Point Bank")
    _login(client, tenant_a, Role.ADMIN)
    body = {
        "name": "Harbor Point Bancorp",
        "segment": _segment_id(tenant_a, "insurer"),
        "tier": "growth",
        "arr": "10.00",
        "owner_csm": tenant_a.user(Role.CSM).pk,
        "lifecycle_stage": "renewal",
    }
    response = client.put(f"{ACCOUNTS}{account.pk}/", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["segment_code"] == "insurer" and response.json()["name"] == "Harbor Point Bancorp"
    # The owner was sent unchanged: no reassignment, no permission churn.
    assert not audit_events(tenant_a, "account.revoke_csm")
    assert client.put(f"{ACCOUNTS}{account.pk}/", {"name": "Y"}, content_type="application/json").status_code == 400


@pytest.mark.django_db
def test_a_manager_reassigns_through_patch_and_the_permissions_follow(client, tenant_a):
    account = owned_account(tenant_a, "Harbor Point Bank")
    new_csm = factories.UserFactory(username="csm2@alpha.test", email="csm2@alpha.test")
    factories.MembershipFactory(
        tenant=tenant_a.tenant, user=new_csm, role=Role.CSM, manager=tenant_a.memberships[Role.MANAGER]
    )
    _login(client, tenant_a, Role.MANAGER)

    response = client.patch(f"{ACCOUNTS}{account.pk}/", {"owner_csm": new_csm.pk}, content_type="application/json")

    assert response.status_code == 200, response.content
    assert response.json()["owner_csm_email"] == "csm2@alpha.test"
    assert [e.before["user"] for e in audit_events(tenant_a, "account.revoke_csm")] == [tenant_a.user(Role.CSM).pk]
    assert audit_events(tenant_a, "account.grant_csm")[-1].after["user"] == new_csm.pk
    client.force_login(new_csm)
    assert _names(client.get(ACCOUNTS)) == ["Harbor Point Bank"]
    _login(client, tenant_a, Role.CSM)
    assert client.get(f"{ACCOUNTS}{account.pk}/").status_code == 404
    # Clearing the owner is for admins only (the account would leave a manager's book).
    _login(client, tenant_a, Role.MANAGER)
    response = client.patch(f"{ACCOUNTS}{account.pk}/", {"owner_csm": None}, content_type="application/json")
    assert response.status_code == 400 and "owner_csm" in field_errors(response)


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.EXECUTIVE, Role.COMPLIANCE, Role.VIEWER])
def test_read_only_roles_get_403_on_account_writes(client, tenant_a, role):
    account = owned_account(tenant_a)
    _login(client, tenant_a, role)
    url = f"{ACCOUNTS}{account.pk}/"
    assert client.get(url).status_code == 200
    for response in (
        client.patch(url, {"tier": "growth"}, content_type="application/json"),
        client.put(url, {"name": "X", "segment": account.segment_id}, content_type="application/json"),
        client.delete(url),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
    assert not audit_events(tenant_a, "account.update")


@pytest.mark.django_db
def test_deleting_an_empty_account_is_audited(client, tenant_a):
    account = factories.AccountFactory(tenant=tenant_a.tenant, name="Created By Mistake")
    _login(client, tenant_a, Role.ADMIN)
    response = client.delete(f"{ACCOUNTS}{account.pk}/")
    assert response.status_code == 204
    assert not _exists(tenant_a, Account, account.pk)
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.before["name"]) == ("account.delete", str(account.pk), account.name)


def _touchpoint(world, account):
    factories.TouchpointFactory(tenant=world.tenant, account=account)


def _snapshot(world, account):
    factories.HealthSnapshotFactory(tenant=world.tenant, account=account)


def _survey(world, account):
    factories.SurveyResponseFactory(tenant=world.tenant, account=account)


def _obligation(world, account):
    factories.ObligationFactory(tenant=world.tenant, account=account)


def _journey(world, account):
    factories.journey_of(account)


def _contact(world, account):
    factories.ContactFactory(tenant=world.tenant, account=account)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "history", [_touchpoint, _snapshot, _survey, _obligation, _journey, _contact], ids=lambda f: f.__name__
)
def test_an_account_with_history_is_not_deleted_409(client, tenant_a, history):
    account = owned_account(tenant_a, "Harbor Point Bank")
    history(tenant_a, account)
    _login(client, tenant_a, Role.MANAGER)

    response = client.delete(f"{ACCOUNTS}{account.pk}/")

    assert response.status_code == 409, response.content
    body = response.json()
    assert (body["status"], body["code"], body["errors"]) == (409, "conflict", [])
    assert 'set lifecycle_stage to "churned"' in body["message"]
    assert _exists(tenant_a, Account, account.pk)
    assert not audit_events(tenant_a, "account.delete")


# --- Accounts: scopes ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_token_scopes_govern_account_reads_and_writes(client, tenant_a):
    account = owned_account(tenant_a)
    url = f"{ACCOUNTS}{account.pk}/"
    read_only = bearer(tenant_a, "accounts:read")
    assert client.get(url, **read_only).status_code == 200
    response = client.patch(url, {"tier": "growth"}, content_type="application/json", **read_only)
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    wrong_family = bearer(tenant_a, "contacts:read", "contacts:write")
    assert client.get(url, **wrong_family).status_code == 403
    assert client.get(ACCOUNTS, **wrong_family).status_code == 403
    writer = bearer(tenant_a, "accounts:write")
    response = client.patch(url, {"tier": "growth"}, content_type="application/json", **writer)
    assert response.status_code == 200 and response.json()["tier"] == "growth"
    assert client.get(url, **writer).status_code == 403  # write does not imply read


# --- Accounts: queries, filters, ordering, pagination --------------------------------------------------


def _book(world, count: int) -> None:
    today = datetime.date.today()
    for index in range(count):
        account = owned_account(world, f"Bank {index:03d}")
        factories.HealthSnapshotFactory(tenant=world.tenant, account=account, snapshot_date=today)


@pytest.mark.django_db
@pytest.mark.parametrize("count", [2, 20])
def test_the_account_list_costs_the_same_queries_for_2_and_20_rows(client, tenant_a, count):
    _book(tenant_a, count)
    auth = bearer(tenant_a, "accounts:read")
    client.get(ACCOUNTS, **auth)  # warm-up: the token's last-used stamp is written at most once a minute
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ACCOUNTS, {"page_size": 100}, **auth)
    assert len(response.json()["results"]) == count
    # 1 the tenant holding the token's hash (the SECURITY DEFINER lookup), 2 the token by hash in that
    # tenant, 3 its creator's membership, 4 the latest nightly snapshot date (MAX),
    # 5 the page's keys (accounts alone, in index order, LIMIT page_size + 1),
    # 6 the page's rows by id: accounts + segment + owner + that night's health snapshot, one join each.
    assert len(queries) == 6, [q["sql"] for q in queries]
    assert not any("COUNT(" in q["sql"].upper() for q in queries)
    assert "metrics_healthsnapshot" not in queries[4]["sql"] and "metrics_healthsnapshot" in queries[5]["sql"]


@pytest.mark.django_db
def test_a_csms_account_list_is_constant_in_queries_too(client, tenant_a):
    _login(client, tenant_a, Role.CSM)
    counts = []
    for total, start in ((2, 0), (20, 2)):
        for index in range(start, total):
            owned_account(tenant_a, f"Bank {index:03d}")
        client.get(ACCOUNTS)  # warm-up: session and cached permission id
        with CaptureQueriesContext(connection) as queries:
            assert len(client.get(ACCOUNTS, {"page_size": 100}).json()["results"]) == total
        counts.append(len(queries))
    # session, user, membership, the CSM's account ids (guardian rows), MAX snapshot date, the page.
    assert counts[0] == counts[1], counts


@pytest.mark.django_db
def test_account_filters(client, tenant_a):
    today = datetime.date.today()
    bank = owned_account(tenant_a, "Harbor Point Bank", tier="strategic", renewal_date=datetime.date(2026, 3, 1))
    insurer = factories.AccountFactory(
        tenant=tenant_a.tenant,
        name="Meridian Mutual",
        segment=factories.segment_of(tenant_a.tenant, "insurer"),
        tier="growth",
        lifecycle_stage="at_risk",
        renewal_date=datetime.date(2027, 3, 1),
    )
    factories.AccountFactory(tenant=tenant_a.tenant, name="Quiet Credit Union", renewal_date=None)
    factories.HealthSnapshotFactory(tenant=tenant_a.tenant, account=bank, snapshot_date=today, band="red")
    factories.HealthSnapshotFactory(tenant=tenant_a.tenant, account=insurer, snapshot_date=today, band="green")
    auth = bearer(tenant_a, "accounts:read")

    def names(**params):
        return _names(client.get(ACCOUNTS, params, **auth))

    assert names(segment_code="insurer") == ["Meridian Mutual"]
    assert names(segment=bank.segment_id) == ["Harbor Point Bank", "Quiet Credit Union"]
    assert names(tier="strategic") == ["Harbor Point Bank"]
    assert names(lifecycle_stage="at_risk") == ["Meridian Mutual"]
    assert names(owner_csm=tenant_a.user(Role.CSM).pk) == ["Harbor Point Bank"]
    assert names(band="red") == ["Harbor Point Bank"]
    assert names(band="none") == ["Quiet Credit Union"]
    assert names(renewal_before="2026-12-31") == ["Harbor Point Bank"]
    assert names(renewal_after="2026-03-01") == ["Harbor Point Bank", "Meridian Mutual"]
    assert names(name="MUTUAL") == ["Meridian Mutual"]
    assert names(updated_after=(timezone.now() + datetime.timedelta(hours=1)).isoformat()) == []
    assert len(names(updated_after="2020-01-01T00:00:00Z")) == 3
    assert "tier" in rejected_filter(client, ACCOUNTS, {"tier": "platinum"}, auth)
    assert "renewal_before" in rejected_filter(client, ACCOUNTS, {"renewal_before": "someday"}, auth)


@pytest.mark.django_db
def test_account_ordering(client, tenant_a):
    factories.AccountFactory(tenant=tenant_a.tenant, name="B", arr=Decimal("5"), renewal_date=None)
    factories.AccountFactory(tenant=tenant_a.tenant, name="A", arr=Decimal("9"), renewal_date=datetime.date(2027, 1, 1))
    factories.AccountFactory(tenant=tenant_a.tenant, name="C", arr=Decimal("5"), renewal_date=datetime.date(2026, 1, 1))
    auth = bearer(tenant_a, "accounts:read")

    def names(ordering, **params):
        return _names(client.get(ACCOUNTS, {"ordering": ordering, **params}, **auth))

    assert _names(client.get(ACCOUNTS, **auth)) == ["A", "B", "C"]
    assert names("-name") == ["C", "B", "A"]
    assert names("-arr") == ["A", "C", "B"]  # ties (B, C) by id, in the first field's direction
    assert names("arr,-name") == ["C", "B", "A"]
    assert names("renewal_date") == ["C", "A", "B"]  # no date last, and pages still work:
    assert names("renewal_date", page_size=1) == ["C"]
    response = client.get(ACCOUNTS, {"ordering": "renewal_date", "page_size": 2}, **auth)
    assert _names(client.get(response.json()["next"], **auth)) == ["B"]
    assert "ordering" in rejected_filter(client, ACCOUNTS, {"ordering": "health"}, auth)


@pytest.mark.django_db
def test_cursor_pagination_follows_next_and_clamps_page_size(client, tenant_a, settings):
    settings.API_MAX_PAGE_SIZE = 4
    for index in range(7):
        factories.AccountFactory(tenant=tenant_a.tenant, name=f"Bank {index}", arr=Decimal(index % 2))
    auth = bearer(tenant_a, "accounts:read")

    seen, url, pages = [], f"{ACCOUNTS}?page_size=3&ordering=-arr", 0
    while url:
        body = client.get(url, **auth).json()
        assert len(body["results"]) <= 3
        seen += [row["name"] for row in body["results"]]
        url = body["next"]
        if url:
            assert urlsplit(url).path == ACCOUNTS
        pages += 1
    assert pages == 3 and len(seen) == 7 and len(set(seen)) == 7
    assert len(client.get(ACCOUNTS, {"page_size": 1000}, **auth).json()["results"]) == 4
    assert "count" not in client.get(ACCOUNTS, **auth).json()


# --- Contacts ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_contacts_list_is_the_book_with_filters(client, tenant_a, tenant_b):
    mine = owned_account(tenant_a, "Harbor Point Bank")
    primary = factories.ContactFactory(tenant=tenant_a.tenant, account=mine, name="Priya", is_primary=True)
    factories.ContactFactory(tenant=tenant_a.tenant, account=mine, name="Omar", email="omar@harbor.example")
    factories.ContactFactory(tenant=tenant_a.tenant, name="Outside the book")
    factories.ContactFactory(tenant=tenant_b.tenant, name="Other tenant")
    _login(client, tenant_a, Role.CSM)

    assert _names(client.get(CONTACTS)) == ["Omar", "Priya"]
    assert _names(client.get(CONTACTS, {"is_primary": "true"})) == ["Priya"]
    assert _names(client.get(CONTACTS, {"email": "OMAR@harbor.example"})) == ["Omar"]
    assert _names(client.get(CONTACTS, {"account": mine.pk})) == ["Omar", "Priya"]
    body = client.get(f"{CONTACTS}{primary.pk}/").json()
    assert body == {
        "id": primary.pk,
        "account": mine.pk,
        "name": "Priya",
        "email": primary.email,
        "phone": "",
        "title": "",
        "is_primary": True,
        "is_executive_sponsor": False,
    }
    _login(client, tenant_a, Role.ADMIN)
    assert _names(client.get(CONTACTS)) == ["Omar", "Outside the book", "Priya"]


@pytest.mark.django_db
def test_contact_create_update_delete_are_audited(client, tenant_a):
    account = owned_account(tenant_a, "Harbor Point Bank")
    _login(client, tenant_a, Role.CSM)

    response = client.post(
        CONTACTS,
        {"account": account.pk, "name": "Priya Raman", "email": "priya@harbor.example", "is_primary": True},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    contact_id = response.json()["id"]
    assert last_event(tenant_a.tenant).action == "contact.create"

    response = client.patch(f"{CONTACTS}{contact_id}/", {"title": "COO"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["title"] == "COO"
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.before["title"], event.after["title"]) == (
        "contact.update",
        str(contact_id),
        "",
        "COO",
    )

    assert client.delete(f"{CONTACTS}{contact_id}/").status_code == 204
    assert not _exists(tenant_a, Contact, contact_id)
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.before["name"]) == ("contact.delete", str(contact_id), "Priya Raman")


@pytest.mark.django_db
def test_contact_accounts_outside_the_book_are_the_same_field_error(client, tenant_a, tenant_b):
    mine = owned_account(tenant_a, "Harbor Point Bank")
    other_book = factories.AccountFactory(tenant=tenant_a.tenant)
    other_tenant = factories.AccountFactory(tenant=tenant_b.tenant)
    _login(client, tenant_a, Role.CSM)
    for account_id in (other_book.pk, other_tenant.pk, 999999):
        response = client.post(CONTACTS, {"account": account_id, "name": "X"}, content_type="application/json")
        assert response.status_code == 400
        assert field_errors(response) == {"account": "No such account."}
    contact = factories.ContactFactory(tenant=tenant_a.tenant, account=mine)
    response = client.patch(f"{CONTACTS}{contact.pk}/", {"account": other_book.pk}, content_type="application/json")
    assert field_errors(response) == {"account": "No such account."}
    other_mine = owned_account(tenant_a, "Second Bank")
    response = client.patch(f"{CONTACTS}{contact.pk}/", {"account": other_mine.pk}, content_type="application/json")
    assert response.status_code == 400 and "cannot move" in field_errors(response)["account"]
    response = client.post(
        CONTACTS, {"account": mine.pk, "name": "X", "email": "nope"}, content_type="application/json"
    )
    assert response.status_code == 400 and set(field_errors(response)) == {"email"}


@pytest.mark.django_db
def test_contact_scopes_and_roles(client, tenant_a, tenant_b):
    contact = factories.ContactFactory(tenant=tenant_a.tenant)
    theirs = factories.ContactFactory(tenant=tenant_b.tenant)
    url = f"{CONTACTS}{contact.pk}/"
    read_only = bearer(tenant_a, "contacts:read")
    assert client.get(url, **read_only).status_code == 200
    assert client.get(f"{CONTACTS}{theirs.pk}/", **read_only).status_code == 404
    assert client.delete(url, **read_only).status_code == 403
    assert client.get(url, **bearer(tenant_a, "accounts:read")).status_code == 403
    _login(client, tenant_a, Role.EXECUTIVE)
    assert client.patch(url, {"title": "X"}, content_type="application/json").status_code == 403
    assert _exists(tenant_a, Contact, contact.pk)


# --- Touchpoints ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_logging_a_touchpoint_records_the_caller_as_author(client, tenant_a):
    account = owned_account(tenant_a, "Harbor Point Bank")
    contact = factories.ContactFactory(tenant=tenant_a.tenant, account=account)
    _login(client, tenant_a, Role.EXECUTIVE)  # executives may log what they hear from a client
    at = (timezone.now() - datetime.timedelta(hours=2)).isoformat()

    response = client.post(
        TOUCHPOINTS,
        {"account": account.pk, "kind": "qbr", "occurred_at": at, "subject": "Q4 review", "contact": contact.pk},
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    executive = tenant_a.user(Role.EXECUTIVE)
    assert (body["author"], body["author_email"], body["contact"]) == (executive.pk, executive.email, contact.pk)
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.actor_id) == ("touchpoint.log", str(body["id"]), executive.pk)


@pytest.mark.django_db
def test_touchpoint_validation_and_roles(client, tenant_a, tenant_b):
    account = owned_account(tenant_a, "Harbor Point Bank")
    elsewhere = factories.ContactFactory(tenant=tenant_a.tenant)
    _login(client, tenant_a, Role.CSM)
    base = {"account": account.pk, "kind": "call", "occurred_at": timezone.now().isoformat(), "subject": "Call"}
    cases = [
        ({**base, "occurred_at": (timezone.now() + datetime.timedelta(days=2)).isoformat()}, "occurred_at"),
        ({**base, "kind": "fax"}, "kind"),
        ({**base, "contact": elsewhere.pk}, "contact"),  # not in the CSM's book: "No such contact."
        ({**base, "account": factories.AccountFactory(tenant=tenant_b.tenant).pk}, "account"),
        ({**base, "subject": ""}, "subject"),
    ]
    for body, field in cases:
        response = client.post(TOUCHPOINTS, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert list(field_errors(response)) == [field], response.json()
    # The service's own check: a contact of the book, but of another account.
    second = owned_account(tenant_a, "Second Bank")
    contact = factories.ContactFactory(tenant=tenant_a.tenant, account=second)
    response = client.post(TOUCHPOINTS, {**base, "contact": contact.pk}, content_type="application/json")
    assert field_errors(response) == {"contact": "The contact belongs to another account."}
    _login(client, tenant_a, Role.COMPLIANCE)
    assert client.post(TOUCHPOINTS, base, content_type="application/json").status_code == 403
    with context.tenant_context(tenant_a.tenant):
        assert not Touchpoint.objects.exists()


@pytest.mark.django_db
def test_touchpoints_are_a_record_listed_by_book_with_filters(client, tenant_a, tenant_b):
    account = owned_account(tenant_a, "Harbor Point Bank")
    now = timezone.now()
    call = factories.TouchpointFactory(
        tenant=tenant_a.tenant, account=account, kind="call", occurred_at=now - datetime.timedelta(days=3)
    )
    qbr = factories.TouchpointFactory(
        tenant=tenant_a.tenant, account=account, kind="qbr", occurred_at=now - datetime.timedelta(days=1)
    )
    factories.TouchpointFactory(tenant=tenant_a.tenant)  # another book
    theirs = factories.TouchpointFactory(tenant=tenant_b.tenant)
    _login(client, tenant_a, Role.CSM)

    def ids(**params):
        response = client.get(TOUCHPOINTS, params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [qbr.pk, call.pk]  # newest first
    assert ids(kind="call") == [call.pk]
    assert ids(account=account.pk, occurred_after=(now - datetime.timedelta(days=2)).isoformat()) == [qbr.pk]
    assert ids(occurred_before=(now - datetime.timedelta(days=2)).isoformat()) == [call.pk]
    assert client.get(f"{TOUCHPOINTS}{theirs.pk}/").status_code == 404
    url = f"{TOUCHPOINTS}{qbr.pk}/"
    assert client.get(url).json()["kind"] == "qbr"
    assert client.patch(url, {"subject": "X"}, content_type="application/json").status_code == 405
    assert client.delete(url).status_code == 405
    auth = bearer(tenant_a, "touchpoints:read")
    assert client.post(TOUCHPOINTS, {}, content_type="application/json", **auth).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("url", [CONTACTS, TOUCHPOINTS])
def test_contact_and_touchpoint_lists_cost_the_same_queries_for_2_and_20_rows(client, tenant_a, url):
    account = owned_account(tenant_a, "Harbor Point Bank")
    make = factories.ContactFactory if url == CONTACTS else factories.TouchpointFactory
    auth = bearer(tenant_a, "contacts:read", "touchpoints:read")
    client.get(url, **auth)  # warm-up: the token's last-used stamp
    counts = []
    for total, start in ((2, 0), (20, 2)):
        for _ in range(start, total):
            extra = {"author": tenant_a.user(Role.CSM)} if make is factories.TouchpointFactory else {}
            make(tenant=tenant_a.tenant, account=account, **extra)
        with CaptureQueriesContext(connection) as queries:
            assert len(client.get(url, {"page_size": 100}, **auth).json()["results"]) == total
        counts.append(len(queries))
    # the token's tenant (lookup), token, membership, the page (the book is an IN-subquery; a touchpoint's
    # author is joined).
    assert counts == [4, 4], counts
