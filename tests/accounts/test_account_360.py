"""The account page (Account 360): what it shows, to whom, and in how many queries."""

from __future__ import annotations

import datetime
import html
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Contact, Touchpoint
from accounts.services import touchpoint_log
from compliance.models import AuditResult, Evidence, Obligation, Requirement
from cs_platform.audit.services import audit_record_many
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import Decision
from metrics.models import HealthSnapshot, Incident, KpiMeasurement, SurveyResponse
from metrics.services import incident_open, incident_resolve, survey_response_record
from segments.models import KpiDefinition
from tests import factories
from tests.helpers import log_in_as, owned_account

TODAY = datetime.date.today()


def _owned(world, name="Harbor Point Bank", **fields):
    return owned_account(world, name, renewal_date=TODAY + datetime.timedelta(days=40), **fields)


def _login(client, world, role=Role.CSM):
    log_in_as(client, world, role)


def _page(client, account, **query) -> str:
    response = client.get(reverse("account_detail", args=[account.pk]), query)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _section(body: str, section_id: str) -> str:
    return body.split(f'<section id="{section_id}"', 1)[1].split("</section>", 1)[0]


def _text(fragment: str) -> str:
    """What a reader sees: tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def _kpi(tenant, code):
    with context.tenant_context(tenant):
        return KpiDefinition.objects.get(segment__code="bank", code=code)


def _kpi_row(body: str, code: str) -> str:
    return body.split(f'data-kpi="{code}"', 1)[1].split("</tr>", 1)[0]


# --- Content ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_header_shows_the_account_facts_and_primary_contacts(client, tenant_a):
    account = _owned(
        tenant_a,
        tier="enterprise",
        arr=Decimal("250000.00"),
        executive_sponsor="Dana Whitfield, COO",
        jurisdictions=["US-NY", "EU"],
        regulators=["OCC", "SEC"],
        data_standards=["ISO 20022", "FIX"],
        lifecycle_stage="adoption",
    )
    factories.ContactFactory(tenant=tenant_a.tenant, account=account, name="Priya Raman", is_primary=True)
    factories.ContactFactory(tenant=tenant_a.tenant, account=account, name="Backoffice Clerk")
    _login(client, tenant_a)
    body = _page(client, account)
    facts = body.split('<dl class="facts">', 1)[1].split("</dl>", 1)[0]
    expected = (
        "Banks and Credit Unions",
        "Enterprise",
        "250,000 USD",
        "in 40 days",
        "Adoption",
        "Dana Whitfield, COO",
        "US-NY, EU",
        "OCC, SEC",
        "ISO 20022, FIX",
        "Priya Raman",
        "Test User",
    )
    for text in expected:
        assert text in facts, text
    assert "Backoffice Clerk" not in facts  # not a primary contact


@pytest.mark.django_db
def test_kpi_table_judges_the_latest_value_against_the_seed_target(client, tenant_a):
    tenant = tenant_a.tenant
    account = _owned(tenant_a)
    audit, trust, risk = (_kpi(tenant, c) for c in ("compliance_audit_success", "customer_trust", "risk_reduction"))
    rows = [
        (audit, 30, "90"),
        (audit, 2, "100"),  # "100% audit pass rate": met, up from 90
        (trust, 20, "4.5"),
        (trust, 5, "4.0"),  # "4.3+ NPS in financial services context": missed, down
        (risk, 200, "30"),  # older than 120 days: no data
    ]
    for kpi, days_ago, value in rows:
        factories.KpiMeasurementFactory(
            tenant=tenant,
            account=account,
            kpi=kpi,
            measured_on=TODAY - datetime.timedelta(days=days_ago),
            value=Decimal(value),
        )
    factories.KpiMeasurementFactory(  # another account's value does not leak in
        tenant=tenant, kpi=trust, measured_on=TODAY, value=Decimal("9")
    )
    _login(client, tenant_a)
    body = _page(client, account)

    audit_row = _kpi_row(body, "compliance_audit_success")
    assert "100% audit pass rate" in audit_row and 'badge green">met' in audit_row
    assert "▲" in audit_row and " up" in audit_row and "(better)" in audit_row and ">90<small" in audit_row
    assert (TODAY - datetime.timedelta(days=2)).isoformat() in audit_row

    trust_row = _kpi_row(body, "customer_trust")
    assert "4.3+ NPS in financial services context" in trust_row and 'badge red">missed' in trust_row
    assert "▼" in trust_row and "(worse)" in trust_row and ">4<small" in trust_row and ">4.5<small" in trust_row

    risk_row = _kpi_row(body, "risk_reduction")
    assert "25-35% operational risk reduction" in risk_row and 'badge grey">no data' in risk_row
    assert "last " + (TODAY - datetime.timedelta(days=200)).isoformat() in risk_row
    assert 'badge grey">no data' in _kpi_row(body, "operational_efficiency")


@pytest.mark.django_db
def test_timeline_merges_touchpoints_incidents_and_surveys_newest_first(client, tenant_a):
    tenant, csm = tenant_a.tenant, tenant_a.user(Role.CSM)
    account = _owned(tenant_a)
    now = timezone.now()
    touchpoint_log(
        tenant=tenant,
        account=account,
        actor=csm,
        kind="qbr",
        subject="Q3 business review",
        occurred_at=now - datetime.timedelta(hours=2),
    )
    incident = incident_open(
        tenant=tenant,
        account=account,
        title="ACH file rejected",
        severity="sev2",
        opened_at=now - datetime.timedelta(days=3),
        actor=tenant_a.user(Role.MANAGER),
    )
    incident_resolve(tenant=tenant, incident=incident, resolved_at=now - datetime.timedelta(days=2), actor=csm)
    survey_response_record(
        tenant=tenant,
        account=account,
        survey_type="csat",
        score=4,
        actor=csm,
        responded_on=(now - datetime.timedelta(days=5)).date(),
        comment="Quick answers",
    )
    factories.TouchpointFactory(tenant=tenant, subject="Someone else's call")  # another account
    _login(client, tenant_a)
    timeline = _section(_page(client, account), "timeline")

    order = ["Q3 business review", "Incident resolved", "Incident opened", "CSAT survey"]
    positions = [timeline.index(text) for text in order]
    assert positions == sorted(positions)
    assert "Someone else's call" not in timeline
    rows = re.findall(r'<tr class="tl-(\w+)">', timeline)
    assert rows == ["touchpoint", "incident_resolved", "incident_opened", "survey"]
    # Who: the touchpoint's author; the incident's and survey's recorder from the audit trail.
    assert "manager@alpha.test" in timeline.split("Incident opened", 1)[1].split("</tr>", 1)[0]
    assert "Score <strong>4</strong> — Quick answers" in timeline


@pytest.mark.django_db
def test_timeline_pages_back_with_an_older_link(client, tenant_a):
    tenant = tenant_a.tenant
    account = _owned(tenant_a)
    start = timezone.now() - datetime.timedelta(days=60)
    with context.tenant_context(tenant):
        Touchpoint.objects.bulk_create(
            Touchpoint(
                tenant=tenant,
                account=account,
                kind="call",
                subject=f"Call {n:02d}",
                occurred_at=start + datetime.timedelta(hours=n),
            )
            for n in range(55)
        )
    _login(client, tenant_a)
    first = _section(_page(client, account), "timeline")
    assert first.count('<tr class="tl-touchpoint">') == 50
    assert "Call 54" in first and "Call 05" in first and "Call 04" not in first
    cursor = re.search(r'href="\?timeline_before=([^"#]+)#timeline"', first).group(1)
    from urllib.parse import unquote

    second = _section(_page(client, account, timeline_before=unquote(cursor)), "timeline")
    assert second.count('<tr class="tl-touchpoint">') == 5
    assert "Call 04" in second and "Call 00" in second and "Call 05" not in second
    assert "Older entries" not in second and "Newest entries" in second
    # A mangled cursor opens the newest page instead of failing.
    assert "Call 54" in _section(_page(client, account, timeline_before="yesterday-ish"), "timeline")


@pytest.mark.django_db
def test_audit_trail_lists_a_touchpoint_logged_through_the_form(client, tenant_a):
    account = _owned(tenant_a)
    _login(client, tenant_a)
    when = timezone.localtime() - datetime.timedelta(hours=1)
    response = client.post(
        reverse("touchpoint_log", args=[account.pk]),
        {"kind": "meeting", "occurred_at": when.strftime("%Y-%m-%dT%H:%M"), "subject": "Renewal kickoff", "notes": ""},
    )
    assert response.status_code == 302
    with context.tenant_context(tenant_a.tenant):
        touchpoint = Touchpoint.objects.get(subject="Renewal kickoff")
    trail = _section(_page(client, account), "audit")
    first_row = trail.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "touchpoint.log" in first_row and f"Touchpoint #{touchpoint.pk}" in first_row
    assert "csm@alpha.test" in first_row and "subject : — → Renewal kickoff" in _text(first_row)
    # The account's own events (creation, CSM grant) are there too, older.
    assert "account.create" in trail and "account.grant_csm" in trail


@pytest.mark.django_db
def test_audit_trail_summarises_changes_and_leaves_other_accounts_out(client, tenant_a):
    from journeys.services import decision_create, decision_resolve

    tenant, csm = tenant_a.tenant, tenant_a.user(Role.CSM)
    account = _owned(tenant_a)
    other = _owned(tenant_a, name="Other Bank")
    decision = decision_create(
        tenant=tenant, account=account, title="Pick SSO", owner=csm, actor=csm, due_date=TODAY, fallback="Passwords"
    )
    decision_resolve(tenant=tenant, decision=decision, resolution="Okta", actor=csm)
    touchpoint_log(
        tenant=tenant, account=other, actor=csm, kind="call", subject="Not this one", occurred_at=timezone.now()
    )
    _login(client, tenant_a)
    trail = _section(_page(client, account), "audit")
    resolve_row = trail.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "decision.resolve" in resolve_row and f"Decision #{decision.pk}" in resolve_row
    assert "status : open → resolved" in _text(resolve_row) and "resolution : — → Okta" in _text(resolve_row)
    assert "Not this one" not in trail and "touchpoint.log" not in trail


@pytest.mark.django_db
def test_journeys_show_phases_activities_status_and_complete_buttons(client, tenant_a):
    account = _owned(tenant_a)
    journey = factories.journey_of(account, started_on=TODAY - datetime.timedelta(days=50))
    _login(client, tenant_a)
    section = _section(_page(client, account), "journeys")
    names = ["1. Compliance Assessment", "2. Integration and Implementation", "3. Performance Optimization"]
    assert [section.index(n) for n in names] == sorted(section.index(n) for n in names)
    assert "days 0–45" in section and "days 45–120" in section and "days 120–240" in section
    start = journey.started_on
    assert f"{start:%Y-%m-%d} → {start + datetime.timedelta(days=45):%Y-%m-%d}" in section
    assert "Regulatory compliance assessment and gap analysis" in section
    # 50 days in: the four phase-1 activities are past due, so the journey is late, in phase 2.
    assert 'badge red">late' in section and "4 activities past due" in section
    assert "current phase: <strong>Integration and Implementation</strong>" in section
    assert section.count('badge red">overdue') == 4 and section.count(">Complete</button>") == 12
    assert "0 of 12 activities done" in section


@pytest.mark.django_db
def test_decisions_open_first_with_overdue_marker_and_escalation(client, tenant_a):
    tenant = tenant_a.tenant
    account = _owned(tenant_a)
    manager = tenant_a.user(Role.MANAGER)
    factories.DecisionFactory(
        tenant=tenant,
        account=account,
        title="Closed long ago",
        owner=manager,
        status="resolved",
        due_date=TODAY - datetime.timedelta(days=20),
        resolution="Done",
    )
    factories.DecisionFactory(
        tenant=tenant,
        account=account,
        title="Late blocker",
        kind="blocker",
        owner=manager,
        due_date=TODAY - datetime.timedelta(days=5),
        status="escalated",
        escalated_to=tenant_a.user(Role.ADMIN),
        fallback="Ship without SSO",
    )
    factories.DecisionFactory(
        tenant=tenant,
        account=account,
        title="Pick a file format",
        owner=manager,
        due_date=TODAY + datetime.timedelta(days=3),
    )
    _login(client, tenant_a)
    section = _section(_page(client, account), "decisions")
    order = [section.index(t) for t in ("Late blocker", "Pick a file format", "Closed long ago")]
    assert order == sorted(order)
    late = section.split("Late blocker", 1)[1].split("</tr>", 1)[0]
    assert 'badge red">overdue' in late and "Ship without SSO" in late and ">Resolve</a>" in late
    assert "Escalated" in late and tenant_a.user(Role.ADMIN).get_full_name() in late
    closed = section.split("Closed long ago", 1)[1].split("</tr>", 1)[0]
    assert "overdue" not in closed and ">Resolve</a>" not in closed
    assert "Add decision" in section


@pytest.mark.django_db
def test_obligations_show_requirement_status_audit_and_evidence(client, tenant_a):
    tenant = tenant_a.tenant
    account = _owned(tenant_a)
    requirement = factories.requirement_of(tenant)
    obligation = factories.ObligationFactory(tenant=tenant, account=account, requirement=requirement, status="expiring")
    evidence = factories.EvidenceFactory(
        tenant=tenant,
        obligation=obligation,
        filename="soc2-type2-2026.pdf",
        checksum_sha256="abcdef0123456789" + "0" * 48,
    )
    factories.AuditResultFactory(
        tenant=tenant,
        obligation=obligation,
        outcome="failed",
        open_findings=2,
        audited_on=TODAY - datetime.timedelta(days=40),
    )
    factories.AuditResultFactory(
        tenant=tenant, obligation=obligation, outcome="passed", audited_on=TODAY - datetime.timedelta(days=3)
    )
    _login(client, tenant_a)
    section = _section(_page(client, account), "compliance")
    with context.tenant_context(tenant):
        framework_code = Requirement.objects.select_related("framework").get(pk=requirement.pk).framework.code
    assert f"{framework_code.upper()} {requirement.code}" in section and requirement.title in section
    assert 'badge yellow">Expiring (30 days)' in section
    assert 'badge green">passed' in section and (TODAY - datetime.timedelta(days=3)).isoformat() in section
    assert "soc2-type2-2026.pdf" in section and ">abcdef012345</code>" in section
    assert f"valid until {TODAY + datetime.timedelta(days=335):%Y-%m-%d}" in section
    assert f'href="{reverse("evidence_download", args=[evidence.pk])}"' in section
    assert f'href="{reverse("evidence_upload", args=[obligation.pk])}"' in section  # CSMs file evidence
    _login(client, tenant_a, Role.EXECUTIVE)  # executives read it, but do not file evidence
    section = _section(_page(client, account), "compliance")
    assert "soc2-type2-2026.pdf" in section and reverse("evidence_upload", args=[obligation.pk]) not in section


@pytest.mark.django_db
def test_viewers_see_the_page_but_no_form_or_action(client, tenant_a):
    account = _owned(tenant_a)
    factories.journey_of(account)
    factories.DecisionFactory(tenant=tenant_a.tenant, account=account, owner=tenant_a.user(Role.CSM))
    _login(client, tenant_a, Role.VIEWER)
    body = _page(client, account)
    assert account.name in body and 'id="journeys"' in body
    for hidden in (
        "touchpoint-form",
        ">Complete</button>",
        ">Resolve</a>",
        "Add decision",
        "Reassign",
        "Record a survey response",
        "/complete/",
        "/resolve/",
        "/touchpoints/new/",
    ):
        assert hidden not in body, hidden


@pytest.mark.django_db
def test_csm_and_admin_see_the_actions_their_roles_allow(client, tenant_a):
    account = _owned(tenant_a)
    _login(client, tenant_a, Role.CSM)
    body = _page(client, account)
    assert 'id="touchpoint-form"' in body and "Add decision" in body and "Reassign" not in body
    _login(client, tenant_a, Role.ADMIN)
    assert "Reassign" in _page(client, account)


@pytest.mark.django_db
def test_accounts_outside_the_book_or_tenant_answer_404(client, tenant_a, tenant_b):
    mine = _owned(tenant_a)
    not_mine = factories.AccountFactory(tenant=tenant_a.tenant)
    theirs = _owned(tenant_b)
    _login(client, tenant_a)
    assert client.get(reverse("account_detail", args=[mine.pk])).status_code == 200
    assert client.get(reverse("account_detail", args=[not_mine.pk])).status_code == 404
    assert client.get(reverse("account_detail", args=[theirs.pk])).status_code == 404
    _login(client, tenant_a, Role.ADMIN)
    assert client.get(reverse("account_detail", args=[theirs.pk])).status_code == 404


# --- Query count -----------------------------------------------------------------------------------------
def _rich_account(world, *, accounts: int, rows: int):
    """A tenant with `accounts` accounts (bulk-created), one of them owned by the world's CSM and
    carrying `rows` of each kind the page shows (touchpoints, incidents, surveys, KPI values,
    decisions, obligations with evidence and audits, contacts, journeys, health history, audit events)."""
    tenant = world.tenant
    account = _owned(world, name="Measured Bank")
    segment = factories.segment_of(tenant)
    now = timezone.now()
    with context.tenant_context(tenant):
        Account.objects.bulk_create(
            Account(tenant=tenant, name=f"Filler {n:05d}", segment=segment) for n in range(accounts - 1)
        )
        Contact.objects.bulk_create(
            Contact(tenant=tenant, account=account, name=f"Contact {n}", is_primary=n == 0) for n in range(rows)
        )
        touchpoints = Touchpoint.objects.bulk_create(
            Touchpoint(
                tenant=tenant,
                account=account,
                kind="call",
                subject=f"Call {n}",
                occurred_at=now - datetime.timedelta(hours=n + 1),
                author=world.user(Role.CSM),
            )
            for n in range(rows * 3)
        )
        Incident.objects.bulk_create(
            Incident(
                tenant=tenant,
                account=account,
                title=f"Incident {n}",
                severity="sev3",
                opened_at=now - datetime.timedelta(days=n + 2),
                resolved_at=now - datetime.timedelta(days=n + 1),
            )
            for n in range(rows)
        )
        SurveyResponse.objects.bulk_create(
            SurveyResponse(
                tenant=tenant,
                account=account,
                survey_type="nps",
                score=n % 11,
                responded_on=TODAY - datetime.timedelta(days=n),
            )
            for n in range(rows)
        )
        kpis = list(KpiDefinition.objects.filter(segment=segment))
        KpiMeasurement.objects.bulk_create(
            KpiMeasurement(
                tenant=tenant,
                account=account,
                kpi=kpi,
                measured_on=TODAY - datetime.timedelta(days=n),
                value=Decimal(n),
            )
            for kpi in kpis
            for n in range(rows)
        )
        Decision.objects.bulk_create(
            Decision(
                tenant=tenant,
                account=account,
                title=f"Decision {n}",
                owner=world.user(Role.MANAGER),
                due_date=TODAY - datetime.timedelta(days=n - 3),
                fallback="Proceed",
                escalated_to=world.user(Role.ADMIN) if n % 2 else None,
            )
            for n in range(rows)
        )
        requirements = list(Requirement.objects.order_by("pk")[:rows])  # the reference data has 15
        obligations = Obligation.objects.bulk_create(
            Obligation(tenant=tenant, account=account, requirement=r, due_date=TODAY) for r in requirements
        )
        Evidence.objects.bulk_create(
            Evidence(
                tenant=tenant,
                obligation=o,
                filename=f"evidence-{i}.pdf",
                checksum_sha256="f" * 64,
                valid_from=TODAY,
                valid_until=TODAY + datetime.timedelta(days=365),
            )
            for o in obligations
            for i in range(2)
        )
        AuditResult.objects.bulk_create(
            AuditResult(tenant=tenant, obligation=o, audited_on=TODAY, outcome="passed") for o in obligations
        )
        HealthSnapshot.objects.bulk_create(
            HealthSnapshot(
                tenant=tenant,
                account=account,
                snapshot_date=TODAY - datetime.timedelta(days=n),
                total=Decimal("41.5"),
                band="red",
                components=[
                    {
                        "measure": "kpi_attainment",
                        "weight": 100,
                        "raw": 0,
                        "score": 0,
                        "effective_weight": 100,
                        "contribution": 0,
                        "band": "red",
                        "missing": False,
                        "facts": {
                            "met": 0,
                            "of": 1,
                            "kpis": [{"kpi": kpis[0].code, "value": 1, "met": False, "score": 0}],
                        },
                    }
                ],
            )
            for n in range(min(rows, 90))
        )
    for n in range(max(1, rows // 10)):
        factories.journey_of(account, started_on=TODAY - datetime.timedelta(days=30 + n))
    audit_record_many(
        tenant=tenant,
        actor=world.user(Role.CSM),
        events=[
            {
                "action": "touchpoint.log",
                "object_type": "accounts.touchpoint",
                "object_id": t.pk,
                "after": {"subject": t.subject},
            }
            for t in touchpoints
        ],
    )
    return account


@pytest.mark.django_db
@pytest.mark.parametrize(("accounts", "rows"), [(10, 2), (500, 40)])
@pytest.mark.parametrize("role", [Role.CSM, Role.ADMIN])
def test_the_page_has_a_fixed_number_of_queries(client, tenant_a, django_assert_num_queries, accounts, rows, role):
    account = _rich_account(tenant_a, accounts=accounts, rows=rows)
    _login(client, tenant_a, role)
    # 1 session, 2 user, 3 memberships (middleware); for a CSM only: the ids of their book
    # (visible_accounts); 4 the account (segment and owner joined); 5 contacts; 6 KPI table
    # (definitions with latest/previous values); 7 latest health snapshot; 8 its 90-day trend;
    # 9 decisions; 10 journeys; 11 their phases; 12 their activities; 13 obligations with latest
    # audit; 14 evidence; 15 timeline (one UNION ALL); 16 audit trail (one OR over the account's objects).
    with django_assert_num_queries(17 if role == Role.CSM else 16):
        response = client.get(reverse("account_detail", args=[account.pk]))
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    assert body.count('<tr class="tl-') == min(50, rows * 3 + rows * 2 + rows)
    assert body.count("evidence-1.pdf") == len(response.context["obligations"]) == min(rows, 15)
    journeys = max(1, rows // 10)
    assert len(response.context["journeys"]) == journeys
    # account.create, account.grant_csm, one per touchpoint, one per journey start
    assert len(response.context["audit_trail"]) == min(50, 2 + rows * 3 + journeys)
