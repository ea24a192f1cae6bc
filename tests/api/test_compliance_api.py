"""REST API v1, family "compliance": obligations, evidence metadata, compliance audit results and accounts'
daily compliance status. Compliance officers read the whole tenant, CSMs their book; another tenant's or
another book's object is a 404 and its id in a body a 400 on that field; writes go through the services
(each records its audit event), for the roles of the evidence form or a compliance:write token."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from compliance.models import AuditResult, ComplianceStatusSnapshot, Obligation
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from tests.api.helpers import api_post, bearer, field_errors, list_query_count, rejected_filter, result_ids
from tests.helpers import event_count, last_event, log_in_as, other_csm_account, owned_account
from tests.tenants import exists_anywhere

OBLIGATIONS = "/api/v1/obligations/"
EVIDENCE = "/api/v1/evidence/"
AUDITS = "/api/v1/audit-results/"
STATUSES = "/api/v1/compliance-statuses/"
TODAY = datetime.date.today()


def _days(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


def _obligation(world, account, framework: str = "soc2", **fields) -> Obligation:
    return factories.ObligationFactory(
        tenant=world.tenant, account=account, requirement=factories.requirement_of(world.tenant, framework), **fields
    )


def _snapshot(world, account, day: datetime.date, status: str) -> ComplianceStatusSnapshot:
    with context.tenant_context(world.tenant):
        return ComplianceStatusSnapshot.objects.create(
            tenant=world.tenant, account=account, snapshot_date=day, status=status, counts={status: 1}
        )


# --- obligations --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_obligation_detail_has_requirement_framework_latest_audit_and_evidence(client, tenant_a):
    account = owned_account(tenant_a)
    obligation = _obligation(tenant_a, account, due_date=_days(30), owner=tenant_a.user(Role.COMPLIANCE))
    factories.AuditResultFactory(tenant=tenant_a.tenant, obligation=obligation, audited_on=_days(-200))
    latest = factories.AuditResultFactory(
        tenant=tenant_a.tenant, obligation=obligation, audited_on=_days(-3), outcome="failed", open_findings=2
    )
    factories.EvidenceFactory(tenant=tenant_a.tenant, obligation=obligation, valid_until=_days(100))
    factories.EvidenceFactory(tenant=tenant_a.tenant, obligation=obligation, valid_until=_days(20))
    bare = _obligation(tenant_a, account, "soc1")
    log_in_as(client, tenant_a, Role.CSM)

    body = client.get(f"{OBLIGATIONS}{obligation.pk}/").json()
    requirement = obligation.requirement
    assert body["requirement"] == {
        "id": requirement.pk,
        "code": requirement.code,
        "title": requirement.title,
        "evidence_validity_days": requirement.evidence_validity_days,
        "framework": {"id": requirement.framework_id, "code": "soc2", "name": "SOC 2"},
    }
    assert (
        body["account"] == account.pk and body["status"] == "not_started" and body["due_date"] == _days(30).isoformat()
    )
    assert body["owner"] == tenant_a.user(Role.COMPLIANCE).pk
    assert body["latest_audit"] == {
        "id": latest.pk,
        "audited_on": _days(-3).isoformat(),
        "outcome": "failed",
        "open_findings": 2,
    }
    assert body["evidence"] == {"count": 2, "latest_valid_until": _days(100).isoformat()}
    bare_body = client.get(f"{OBLIGATIONS}{bare.pk}/").json()
    assert bare_body["latest_audit"] is None and bare_body["evidence"] == {"count": 0, "latest_valid_until": None}
    assert [row["id"] for row in client.get(OBLIGATIONS).json()["results"]] == [obligation.pk, bare.pk]


@pytest.mark.django_db
def test_compliance_officers_read_the_whole_tenant_csms_their_book(client, tenant_a, tenant_b):
    mine = _obligation(tenant_a, owned_account(tenant_a))
    others = _obligation(tenant_a, other_csm_account(tenant_a))
    theirs = factories.ObligationFactory(tenant=tenant_b.tenant)
    log_in_as(client, tenant_a, Role.COMPLIANCE)
    assert set(result_ids(client.get(OBLIGATIONS))) == {mine.pk, others.pk}
    assert client.get(f"{OBLIGATIONS}{others.pk}/").status_code == 200
    assert client.get(f"{OBLIGATIONS}{theirs.pk}/").status_code == 404
    log_in_as(client, tenant_a, Role.CSM)
    assert result_ids(client.get(OBLIGATIONS)) == [mine.pk]
    for obligation in (others, theirs):
        response = client.get(f"{OBLIGATIONS}{obligation.pk}/")
        assert response.status_code == 404 and response.json()["status"] == 404


@pytest.mark.django_db
def test_obligation_filters(client, tenant_a):
    first = owned_account(tenant_a, "Harbor Point Bank")
    second = owned_account(tenant_a, "Granite Bay Credit Union")
    soc2 = _obligation(tenant_a, first, "soc2", due_date=_days(10), status="overdue")
    soc1 = _obligation(tenant_a, first, "soc1", due_date=_days(90))
    other = _obligation(tenant_a, second, "soc2", due_date=_days(40), status="expiring")
    factories.EvidenceFactory(tenant=tenant_a.tenant, obligation=other, valid_until=_days(20))
    factories.EvidenceFactory(tenant=tenant_a.tenant, obligation=soc1, valid_until=_days(300))
    headers = bearer(tenant_a, "compliance:read")

    def ids(**params) -> list[int]:
        return result_ids(client.get(OBLIGATIONS, params, **headers))

    assert ids() == [soc2.pk, other.pk, soc1.pk]  # by due date
    assert ids(account=second.pk) == [other.pk]
    assert ids(framework="soc2") == [soc2.pk, other.pk]
    assert ids(framework="soc1") == [soc1.pk]
    assert ids(requirement=soc1.requirement_id) == [soc1.pk]
    assert ids(status="expiring") == [other.pk]
    assert ids(due_before=_days(40).isoformat()) == [soc2.pk, other.pk]
    assert ids(due_after=_days(40).isoformat()) == [other.pk, soc1.pk]
    assert ids(expiring_before=_days(30).isoformat()) == [other.pk]
    assert ids(expiring_after=_days(30).isoformat()) == [soc1.pk]
    params = {"status": "fine", "due_before": "soon"}
    assert set(rejected_filter(client, OBLIGATIONS, params, headers)) == {"status", "due_before"}


@pytest.mark.django_db
def test_obligation_create_through_the_service_with_its_audit_event(client, tenant_a):
    account = owned_account(tenant_a)
    requirement = factories.requirement_of(tenant_a.tenant, "soc2")
    body = {
        "account": account.pk,
        "requirement": requirement.pk,
        "due_date": _days(120).isoformat(),
        "owner": tenant_a.user(Role.COMPLIANCE).pk,
    }
    log_in_as(client, tenant_a, Role.COMPLIANCE)

    response = api_post(client, OBLIGATIONS, body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["requirement"]["id"] == requirement.pk and created["status"] == "not_started"
    assert created["evidence"] == {"count": 0, "latest_valid_until": None} and created["latest_audit"] is None
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.actor_id) == (
        "obligation.create",
        str(created["id"]),
        tenant_a.user(Role.COMPLIANCE).pk,
    )

    again = api_post(client, OBLIGATIONS, body, bearer(tenant_a, "compliance:write"))
    assert again.status_code == 400 and "already has" in field_errors(again)["requirement"]


@pytest.mark.django_db
def test_obligation_create_validation_and_foreign_ids_name_the_field(client, tenant_a, tenant_b):
    account = owned_account(tenant_a)
    other_book = other_csm_account(tenant_a)
    requirement = factories.requirement_of(tenant_a.tenant, "soc2")
    insurer_only = _insurer_requirement(tenant_a)
    base = {"account": account.pk, "requirement": requirement.pk, "due_date": _days(120).isoformat()}
    cases = [
        ({"account": factories.AccountFactory(tenant=tenant_b.tenant).pk}, "account"),
        ({"account": other_book.pk}, "account"),
        ({"requirement": factories.requirement_of(tenant_b.tenant, "soc2").pk}, "requirement"),
        ({"requirement": insurer_only.pk}, "requirement"),  # another segment's requirement
        ({"owner": tenant_b.user(Role.ADMIN).pk}, "owner"),
        ({"due_date": "31/12/2026"}, "due_date"),
        ({"due_date": None}, "due_date"),
    ]
    log_in_as(client, tenant_a, Role.CSM)
    before = event_count(tenant_a.tenant)
    for overrides, field in cases:
        response = api_post(client, OBLIGATIONS, {**base, **overrides})
        assert response.status_code == 400, (overrides, response.content)
        assert list(field_errors(response)) == [field], overrides
    assert event_count(tenant_a.tenant) == before
    assert not exists_anywhere(Obligation)


def _insurer_requirement(world):
    from compliance.models import Requirement

    soc2 = factories.requirement_of(world.tenant, "soc2")
    with context.tenant_context(world.tenant):
        return Requirement.objects.create(
            tenant=world.tenant,
            framework=soc2.framework,
            segment=factories.segment_of(world.tenant, "insurer"),
            code="SOC2-INS",
            title="Insurer SOC 2 bridge letter",
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.COMPLIANCE, True), (Role.CSM, True), (Role.EXECUTIVE, False), (Role.VIEWER, False)],
)
def test_compliance_writes_follow_the_evidence_forms_roles(client, tenant_a, role, allowed):
    account = owned_account(tenant_a)
    obligation = _obligation(tenant_a, account, "soc1")
    log_in_as(client, tenant_a, role)
    response = api_post(
        client,
        OBLIGATIONS,
        {
            "account": account.pk,
            "due_date": _days(10).isoformat(),
            "requirement": factories.requirement_of(tenant_a.tenant, "soc2").pk,
        },
    )
    assert response.status_code == (201 if allowed else 403), response.content
    response = api_post(
        client, AUDITS, {"obligation": obligation.pk, "audited_on": _days(-1).isoformat(), "outcome": "passed"}
    )
    assert response.status_code == (201 if allowed else 403), response.content


# --- evidence -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_evidence_is_metadata_with_a_browser_download_url(client, tenant_a):
    obligation = _obligation(tenant_a, owned_account(tenant_a))
    evidence = factories.EvidenceFactory(
        tenant=tenant_a.tenant,
        obligation=obligation,
        filename="soc2-type2-2026.pdf",
        checksum_sha256="ab" * 32,
        content_type="application/pdf",
        size_bytes=482113,
        uploaded_by=tenant_a.user(Role.COMPLIANCE),
    )
    log_in_as(client, tenant_a, Role.CSM)
    body = client.get(f"{EVIDENCE}{evidence.pk}/").json()
    download = reverse("evidence_download", kwargs={"evidence_id": evidence.pk})
    assert body == {
        "id": evidence.pk,
        "obligation": obligation.pk,
        "account": obligation.account_id,
        "name": "soc2-type2-2026.pdf",
        "sha256": "ab" * 32,
        "size_bytes": 482113,
        "content_type": "application/pdf",
        "valid_from": evidence.valid_from.isoformat(),
        "valid_until": evidence.valid_until.isoformat(),
        "uploaded_by": tenant_a.user(Role.COMPLIANCE).pk,
        "uploaded_by_name": body["uploaded_by_name"],
        "uploaded_at": body["uploaded_at"],
        "download_url": f"http://testserver{download}",
    }
    assert body["uploaded_by_name"] and body["uploaded_at"].startswith(evidence.uploaded_at.date().isoformat()[:4])
    assert client.get(download).status_code == 302  # the browser view answers (no file stored: back to the page)
    # Metadata only: evidence is uploaded on the obligation's page, never through the API.
    assert api_post(client, EVIDENCE, {"obligation": obligation.pk}).status_code == 405


@pytest.mark.django_db
def test_evidence_filters_and_scoping(client, tenant_a, tenant_b):
    account = owned_account(tenant_a)
    first = _obligation(tenant_a, account, "soc2")
    second = _obligation(tenant_a, account, "soc1")
    pdf = factories.EvidenceFactory(
        tenant=tenant_a.tenant, obligation=first, valid_until=_days(20), content_type="application/pdf"
    )
    csv = factories.EvidenceFactory(
        tenant=tenant_a.tenant, obligation=second, valid_until=_days(200), content_type="text/csv"
    )
    elsewhere = factories.EvidenceFactory(
        tenant=tenant_a.tenant,
        obligation=_obligation(tenant_a, owned_account(tenant_a, "Granite Bay Credit Union")),
        valid_until=_days(10),
    )
    not_mine = factories.EvidenceFactory(
        tenant=tenant_a.tenant, obligation=_obligation(tenant_a, other_csm_account(tenant_a))
    )
    theirs = factories.EvidenceFactory(tenant=tenant_b.tenant)
    log_in_as(client, tenant_a, Role.CSM)

    def ids(**params) -> list[int]:
        return result_ids(client.get(EVIDENCE, params))

    assert ids() == [csv.pk, pdf.pk, elsewhere.pk]  # latest validity first; the other book's is absent
    assert ids(obligation=first.pk) == [pdf.pk]
    assert ids(account=account.pk) == [csv.pk, pdf.pk]
    assert ids(expiring_before=_days(30).isoformat()) == [pdf.pk, elsewhere.pk]
    assert ids(content_type="text/csv") == [csv.pk]
    for evidence in (not_mine, theirs):
        assert client.get(f"{EVIDENCE}{evidence.pk}/").status_code == 404
    log_in_as(client, tenant_a, Role.COMPLIANCE)
    assert client.get(f"{EVIDENCE}{not_mine.pk}/").status_code == 200
    assert client.get(f"{EVIDENCE}{theirs.pk}/").status_code == 404


# --- compliance audit results -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_audit_result_record_through_the_service_with_its_audit_event(client, tenant_a):
    obligation = _obligation(tenant_a, owned_account(tenant_a))
    body = {
        "obligation": obligation.pk,
        "audited_on": _days(-2).isoformat(),
        "outcome": "failed",
        "open_findings": 2,
        "auditor": "Northbridge Assurance",
        "notes": "No Q3 access reviews.",
    }
    response = api_post(client, AUDITS, body, bearer(tenant_a, "compliance:write", "compliance:read"))
    assert response.status_code == 201, response.content
    created = response.json()
    assert created == {"id": created["id"], "account": obligation.account_id, **body}
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.actor_id) == (
        "audit_result.record",
        str(created["id"]),
        tenant_a.user(Role.ADMIN).pk,
    )
    assert event.after["outcome"] == "failed"
    detail = client.get(f"{AUDITS}{created['id']}/", **bearer(tenant_a, "compliance:read"))
    assert detail.json() == created
    # The obligation's latest audit follows at once.
    latest = client.get(f"{OBLIGATIONS}{obligation.pk}/", **bearer(tenant_a, "compliance:read")).json()
    assert latest["latest_audit"]["id"] == created["id"]


@pytest.mark.django_db
def test_audit_result_validation_and_foreign_ids_name_the_field(client, tenant_a, tenant_b):
    obligation = _obligation(tenant_a, owned_account(tenant_a))
    other_book = _obligation(tenant_a, other_csm_account(tenant_a))
    base = {"obligation": obligation.pk, "audited_on": _days(-2).isoformat(), "outcome": "passed"}
    cases = [
        ({"open_findings": 1}, "open_findings"),  # a passed audit leaves no findings (the service's rule)
        ({"open_findings": -1}, "open_findings"),
        ({"outcome": "so-so"}, "outcome"),
        ({"audited_on": ""}, "audited_on"),
        ({"obligation": factories.ObligationFactory(tenant=tenant_b.tenant).pk}, "obligation"),
        ({"obligation": other_book.pk}, "obligation"),
        ({"obligation": "x"}, "obligation"),
    ]
    log_in_as(client, tenant_a, Role.CSM)
    before = event_count(tenant_a.tenant)
    for overrides, field in cases:
        response = api_post(client, AUDITS, {**base, **overrides})
        assert response.status_code == 400, (overrides, response.content)
        assert list(field_errors(response)) == [field], overrides
    assert event_count(tenant_a.tenant) == before
    assert not exists_anywhere(AuditResult)


@pytest.mark.django_db
def test_audit_result_filters_and_scoping(client, tenant_a, tenant_b):
    account = owned_account(tenant_a)
    soc2, soc1 = _obligation(tenant_a, account, "soc2"), _obligation(tenant_a, account, "soc1")
    make = factories.AuditResultFactory
    old = make(tenant=tenant_a.tenant, obligation=soc2, audited_on=_days(-300))
    failed = make(tenant=tenant_a.tenant, obligation=soc2, audited_on=_days(-20), outcome="failed", open_findings=1)
    recent = make(tenant=tenant_a.tenant, obligation=soc1, audited_on=_days(-5))
    not_mine = make(tenant=tenant_a.tenant, obligation=_obligation(tenant_a, other_csm_account(tenant_a)))
    theirs = make(tenant=tenant_b.tenant)
    log_in_as(client, tenant_a, Role.CSM)

    def ids(**params) -> list[int]:
        return result_ids(client.get(AUDITS, params))

    assert ids() == [recent.pk, failed.pk, old.pk]  # newest first; the other book's is absent
    assert ids(obligation=soc2.pk) == [failed.pk, old.pk]
    assert ids(account=account.pk, framework="soc1") == [recent.pk]
    assert ids(outcome="failed") == [failed.pk]
    assert ids(audited_after=_days(-30).isoformat(), audited_before=_days(-10).isoformat()) == [failed.pk]
    for result in (not_mine, theirs):
        assert client.get(f"{AUDITS}{result.pk}/").status_code == 404
    log_in_as(client, tenant_a, Role.COMPLIANCE)
    assert client.get(f"{AUDITS}{not_mine.pk}/").status_code == 200


# --- compliance statuses ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_compliance_statuses_default_to_the_latest_day(client, tenant_a, tenant_b):
    first = owned_account(tenant_a, "Harbor Point Bank")
    second = owned_account(tenant_a, "Granite Bay Credit Union")
    other_book = other_csm_account(tenant_a)
    _obligation(tenant_a, second, "soc1")
    yesterday = [_snapshot(tenant_a, account, _days(-1), "compliant") for account in (first, second)]
    today = [_snapshot(tenant_a, first, TODAY, "overdue"), _snapshot(tenant_a, second, TODAY, "compliant")]
    hidden = _snapshot(tenant_a, other_book, TODAY, "failed")
    theirs = _snapshot(tenant_b, factories.AccountFactory(tenant=tenant_b.tenant), TODAY, "failed")
    log_in_as(client, tenant_a, Role.CSM)

    def ids(**params) -> set[int]:
        return set(result_ids(client.get(STATUSES, params)))

    assert ids() == {s.pk for s in today}
    assert ids(date=_days(-1).isoformat()) == {s.pk for s in yesterday}
    assert ids(status="overdue") == {today[0].pk}
    assert ids(account=second.pk) == {today[1].pk}
    assert ids(framework="soc1") == {today[1].pk}
    assert ids(date=_days(-7).isoformat()) == set()
    body = client.get(f"{STATUSES}{yesterday[0].pk}/").json()  # a detail URL names its own day
    assert body == {
        "id": yesterday[0].pk,
        "account": first.pk,
        "account_name": first.name,
        "date": _days(-1).isoformat(),
        "status": "compliant",
        "counts": {"compliant": 1},
    }
    for snapshot in (hidden, theirs):
        assert client.get(f"{STATUSES}{snapshot.pk}/").status_code == 404
    log_in_as(client, tenant_a, Role.COMPLIANCE)
    assert ids() == {*(s.pk for s in today), hidden.pk}
    assert list(rejected_filter(client, STATUSES, {"date": "today"})) == ["date"]


@pytest.mark.django_db
def test_compliance_statuses_come_from_the_nightly_recompute(client, tenant_a):
    from compliance.services import compliance_status_recompute

    account = owned_account(tenant_a)
    _obligation(tenant_a, account, "soc2", due_date=_days(-1))
    _obligation(tenant_a, account, "soc1", due_date=_days(60))
    compliance_status_recompute(tenant=tenant_a.tenant, day=TODAY)
    rows = client.get(STATUSES, **bearer(tenant_a, "compliance:read")).json()["results"]
    assert [(row["account"], row["status"], row["counts"]) for row in rows] == [
        (account.pk, "overdue", {"overdue": 1, "not_started": 1})
    ]


# --- scopes and query counts ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tokens_need_the_compliance_scopes(client, tenant_a):
    account = owned_account(tenant_a)
    obligation = _obligation(tenant_a, account, "soc1")
    evidence = factories.EvidenceFactory(tenant=tenant_a.tenant, obligation=obligation)
    result = factories.AuditResultFactory(tenant=tenant_a.tenant, obligation=obligation)
    snapshot = _snapshot(tenant_a, account, TODAY, "compliant")
    other_family = bearer(tenant_a, "journeys:read", "journeys:write", "accounts:write")
    read_only = bearer(tenant_a, "compliance:read")
    urls = [
        OBLIGATIONS,
        f"{OBLIGATIONS}{obligation.pk}/",
        EVIDENCE,
        f"{EVIDENCE}{evidence.pk}/",
        AUDITS,
        f"{AUDITS}{result.pk}/",
        STATUSES,
        f"{STATUSES}{snapshot.pk}/",
    ]
    for url in urls:
        assert client.get(url, **other_family).status_code == 403, url
        assert client.get(url, **read_only).status_code == 200, url
    writes = [
        (
            OBLIGATIONS,
            {
                "account": account.pk,
                "requirement": factories.requirement_of(tenant_a.tenant, "soc2").pk,
                "due_date": _days(30).isoformat(),
            },
        ),
        (AUDITS, {"obligation": obligation.pk, "audited_on": _days(-1).isoformat(), "outcome": "passed"}),
    ]
    for url, body in writes:
        response = api_post(client, url, body, read_only)
        assert response.status_code == 403 and response.json()["code"] == "permission_denied", url
        assert api_post(client, url, body, other_family).status_code == 403, url
    write_only = bearer(tenant_a, "compliance:write")
    for url, body in writes:
        assert api_post(client, url, body, write_only).status_code == 201, url


@pytest.mark.django_db
@pytest.mark.parametrize("url", [OBLIGATIONS, EVIDENCE, AUDITS, STATUSES])
def test_list_query_count_does_not_grow_with_rows(client, tenant_a, url):
    headers = bearer(tenant_a, "compliance:read")

    def add(n: int) -> None:
        for _ in range(n):
            account = factories.AccountFactory(tenant=tenant_a.tenant)
            obligation = _obligation(tenant_a, account)
            factories.EvidenceFactory(tenant=tenant_a.tenant, obligation=obligation)
            factories.AuditResultFactory(tenant=tenant_a.tenant, obligation=obligation)
            _snapshot(tenant_a, account, TODAY, "compliant")

    add(2)
    client.get(url, **headers)  # the token's first use records its last-used time; later ones skip it
    small = list_query_count(client, url, headers, {"page_size": 100})
    add(18)
    large = list_query_count(client, url, headers, {"page_size": 100})
    assert len(client.get(url, **headers).json()["results"]) == 20
    # 1 the tenant holding the token (the SECURITY DEFINER lookup), 2 the token (creator and tenant joined),
    # 3 the creator's membership in the token's tenant, 4 the page
    # of rows: obligations with account, requirement, framework and owner joined and their latest audit and
    # evidence summary as correlated subqueries of the same statement; evidence with obligation and
    # uploader joined; audit results with obligation joined; snapshots with account joined, the latest day
    # a subquery. An admin's book is the whole tenant: no query for the book.
    assert small == large == 4
