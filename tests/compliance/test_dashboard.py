"""The compliance dashboard: what each role sees, the matrix (worst status per framework, filters,
sort), the expiring and failed-audit lists, the pass rate per segment, and a query count that does
not grow with the book."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Account
from accounts.services import account_create
from compliance.models import AuditResult, Evidence, Framework, Obligation, Requirement
from compliance.selectors import compliance_book
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories

TODAY = datetime.date.today()
URL = reverse("compliance_dashboard")


def _days(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


def _requirements(tenant) -> dict[str, Requirement]:
    with context.tenant_context(tenant):
        return {r.code: r for r in Requirement.objects.select_related("framework")}


def _obligation(tenant, account, requirement, status, **fields) -> Obligation:
    return factories.ObligationFactory(tenant=tenant, account=account, requirement=requirement, status=status, **fields)


def _audit(tenant, obligation, days_ago: int, outcome: str, findings: int = 0, auditor: str = "") -> AuditResult:
    return factories.AuditResultFactory(
        tenant=tenant,
        obligation=obligation,
        audited_on=_days(-days_ago),
        outcome=outcome,
        open_findings=findings,
        auditor=auditor,
    )


@pytest.fixture
def book(tenant_a, tenant_b):
    """Five accounts of tenant A (two owned by the CSM) and one of tenant B:

    account (segment, owner)        obligations (status)                          audits in 365 days
    Granite Bay Credit Union (bank, csm)  SOC2 compliant, PCI failed,              PCI failed x2, SOC2 passed x2
                                          SEC-17a-4 expiring, SEC-S-P overdue
    Harbor Light Bank (bank)         SOC2 overdue, PCI compliant                   SOC2 passed (+1 failed, 500 days ago)
    Meridian Mutual Insurance (insurer, csm)  SOC2 expiring                        SOC2 passed, failed
    Ledgerline Payments (fintech)    SOC2 not started                              none
    Quiet Harbor Wealth (wealth)     none                                          none
    """
    tenant, csm = tenant_a.tenant, tenant_a.user(Role.CSM)
    req = _requirements(tenant)
    seg = {code: factories.segment_of(tenant, code) for code in ("bank", "insurer", "fintech", "wealth")}
    granite = account_create(tenant=tenant, name="Granite Bay Credit Union", segment=seg["bank"], owner_csm=csm)
    meridian = account_create(tenant=tenant, name="Meridian Mutual Insurance", segment=seg["insurer"], owner_csm=csm)
    harbor = factories.AccountFactory(tenant=tenant, name="Harbor Light Bank", segment=seg["bank"])
    ledger = factories.AccountFactory(tenant=tenant, name="Ledgerline Payments", segment=seg["fintech"])
    quiet = factories.AccountFactory(tenant=tenant, name="Quiet Harbor Wealth", segment=seg["wealth"])

    g_soc2 = _obligation(tenant, granite, req["SOC2-T2"], "compliant")
    g_pci = _obligation(tenant, granite, req["PCI-AOC"], "failed")
    g_sec = _obligation(tenant, granite, req["SEC-17a-4"], "expiring", owner=tenant_a.user(Role.COMPLIANCE))
    _obligation(tenant, granite, req["SEC-S-P"], "overdue")
    h_soc2 = _obligation(tenant, harbor, req["SOC2-T2"], "overdue")
    _obligation(tenant, harbor, req["PCI-AOC"], "compliant")
    m_soc2 = _obligation(tenant, meridian, req["SOC2-T2"], "expiring")
    _obligation(tenant, ledger, req["SOC2-T2"], "not_started")

    factories.EvidenceFactory(tenant=tenant, obligation=g_sec, valid_from=_days(-340), valid_until=_days(20))
    factories.EvidenceFactory(tenant=tenant, obligation=m_soc2, valid_from=_days(-355), valid_until=_days(10))
    # Older evidence of the same obligation: the list shows the latest validity, not this one.
    factories.EvidenceFactory(tenant=tenant, obligation=m_soc2, valid_from=_days(-720), valid_until=_days(-356))

    _audit(tenant, g_pci, 400, "failed", 1, "Ancient LLP")  # outside the window
    _audit(tenant, g_pci, 200, "failed", 2, "Old LLP")
    _audit(tenant, g_pci, 20, "failed", 3, "Example LLP")  # the latest failure of PCI
    _audit(tenant, g_soc2, 100, "passed")
    _audit(tenant, g_soc2, 30, "passed")
    _audit(tenant, h_soc2, 10, "passed")
    _audit(tenant, h_soc2, 500, "failed", 4, "Outside LLP")  # outside the window
    _audit(tenant, m_soc2, 50, "passed")
    _audit(tenant, m_soc2, 5, "failed", 1, "Insure Audit Co")

    # Another tenant's failing account never shows.
    other = factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Secret Bank")
    b_req = _requirements(tenant_b.tenant)
    b_pci = _obligation(tenant_b.tenant, other, b_req["PCI-AOC"], "failed")
    _audit(tenant_b.tenant, b_pci, 3, "failed", 9, "Bravo LLP")
    return {"granite": granite, "harbor": harbor, "meridian": meridian, "ledger": ledger, "quiet": quiet}


def _get(client, world, role, query: str = ""):
    client.force_login(world.user(role))
    response = client.get(URL + query)
    assert response.status_code == 200
    return response


def _row_names(response) -> list[str]:
    return [row.account.name for row in response.context["rows"]]


def _counts(response) -> dict[str, int]:
    return {item["status"]: item["count"] for item in response.context["headline"]}


ALL = ["Granite Bay Credit Union", "Harbor Light Bank", "Meridian Mutual Insurance", "Ledgerline Payments"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.COMPLIANCE, Role.ADMIN, Role.EXECUTIVE, Role.VIEWER])
def test_tenant_wide_roles_see_every_account_and_count(client, tenant_a, book, role):
    response = _get(client, tenant_a, role)
    # Worst status first (the default sort), accounts without obligations last.
    assert _row_names(response) == [*ALL, "Quiet Harbor Wealth"]
    assert _counts(response) == {"failed": 1, "overdue": 2, "expiring": 2, "not_started": 1, "compliant": 2}
    body = response.content.decode()
    assert "Bravo Secret Bank" not in body and "Bravo LLP" not in body


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.CSM, Role.MANAGER])
def test_a_csm_and_their_manager_see_only_the_csms_accounts(client, tenant_a, book, role):
    response = _get(client, tenant_a, role)
    assert _row_names(response) == ["Granite Bay Credit Union", "Meridian Mutual Insurance"]
    assert _counts(response) == {"failed": 1, "overdue": 1, "expiring": 2, "not_started": 0, "compliant": 1}
    body = response.content.decode()
    assert "Harbor Light Bank" not in body and "Ledgerline Payments" not in body
    # The other sections are scoped too: Harbor's passed audit is not in the bank figures.
    assert response.context["pass_rates"]["audits"] == [4, 2]


@pytest.mark.django_db
def test_a_csm_without_accounts_sees_an_empty_matrix(client, tenant_a, book):
    lonely = factories.UserFactory(username="new-csm@alpha.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=lonely, role=Role.CSM)
    client.force_login(lonely)
    response = client.get(URL)
    assert response.status_code == 200 and response.context["rows"] == []
    assert set(_counts(response).values()) == {0}
    assert "No accounts to show." in response.content.decode()


@pytest.mark.django_db
def test_a_cell_shows_the_worst_status_of_the_accounts_obligations_in_that_framework(client, tenant_a, book):
    response = _get(client, tenant_a, Role.COMPLIANCE)
    columns = [f.code for f in response.context["columns"]]
    # Frameworks with obligations in the tenant, and only those.
    assert sorted(columns) == ["pci-dss", "sec", "soc2"]
    granite = response.context["rows"][0]
    assert [f.code for f, _ in granite.cells] == columns
    cells = dict(zip(columns, [cell for _, cell in granite.cells], strict=True))
    assert cells["sec"].status == "overdue"  # SEC-17a-4 expiring and SEC-S-P overdue: overdue is worse
    assert cells["pci-dss"].status == "failed" and cells["soc2"].status == "compliant"
    assert granite.worst.status == "failed"
    quiet = response.context["rows"][-1]
    assert quiet.worst is None and quiet.statuses == [None, None, None]
    # In the HTML: a badge with the status in words, linking to the account page.
    body = response.content.decode()
    row_html = re.search(r"<tr>\s*<th scope=\"row\"><a [^>]*>Granite Bay Credit Union</a>.*?</tr>", body, re.S).group()
    account_url = reverse("account_detail", args=[book["granite"].pk])
    sec_index = columns.index("sec")
    cell_html = re.findall(r'<td class="cell">(.*?)</td>', row_html, re.S)[sec_index]
    assert f'href="{account_url}"' in cell_html and ">Overdue</span>" in cell_html
    assert "Granite Bay Credit Union, SEC Regulations: </span>" in cell_html  # named for screen readers


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status=failed", ["Granite Bay Credit Union"]),
        ("?status=expiring&sort=name", ["Granite Bay Credit Union", "Meridian Mutual Insurance"]),
        ("?status=not_started", ["Ledgerline Payments"]),
        ("?q=harbor&sort=name", ["Harbor Light Bank", "Quiet Harbor Wealth"]),
        ("?q=HARBOR+light", ["Harbor Light Bank"]),
        ("?segment={insurer}", ["Meridian Mutual Insurance"]),
        ("?framework={pci}&sort=name", ["Granite Bay Credit Union", "Harbor Light Bank"]),
        # Within the framework: Granite's SOC 2 is compliant (its expiring obligation is SEC).
        ("?framework={soc2}&status=expiring", ["Meridian Mutual Insurance"]),
        ("?owner={csm}&sort=name", ["Granite Bay Credit Union", "Meridian Mutual Insurance"]),
        ("?segment={bank}&status=overdue&sort=name", ["Granite Bay Credit Union", "Harbor Light Bank"]),
        # Values outside the whitelist are dropped, not errors.
        ("?status=bogus&segment=999999", [*ALL, "Quiet Harbor Wealth"]),
    ],
)
def test_filters_and_search_narrow_the_rows(client, tenant_a, book, query, expected):
    tenant = tenant_a.tenant
    with context.tenant_context(tenant):
        frameworks = {f.code: f.pk for f in Framework.objects.all()}
    ids = {
        "insurer": factories.segment_of(tenant, "insurer").pk,
        "bank": factories.segment_of(tenant, "bank").pk,
        "pci": frameworks["pci-dss"],
        "soc2": frameworks["soc2"],
        "csm": tenant_a.user(Role.CSM).pk,
    }
    response = _get(client, tenant_a, Role.COMPLIANCE, query.format(**ids))
    assert _row_names(response) == expected


@pytest.mark.django_db
def test_a_framework_filter_keeps_only_that_column(client, tenant_a, book):
    with context.tenant_context(tenant_a.tenant):
        pci = Framework.objects.get(code="pci-dss")
    response = _get(client, tenant_a, Role.COMPLIANCE, f"?framework={pci.pk}")
    assert [f.code for f in response.context["columns"]] == ["pci-dss"]
    # Worst within the framework: Harbor is compliant for PCI, though overdue for SOC 2.
    assert [(r.account.name, r.worst.status) for r in response.context["rows"]] == [
        ("Granite Bay Credit Union", "failed"),
        ("Harbor Light Bank", "compliant"),
    ]


@pytest.mark.django_db
def test_headline_counts_link_to_the_matrix_filtered_by_their_status(client, tenant_a, book):
    response = _get(client, tenant_a, Role.COMPLIANCE, "?q=bay")
    failed = next(item for item in response.context["headline"] if item["status"] == "failed")
    assert failed["href"] == "?q=bay&status=failed#matrix"
    assert 'href="?q=bay&amp;status=failed#matrix"' in response.content.decode()
    followed = client.get(URL + failed["href"].split("#")[0])
    assert _row_names(followed) == ["Granite Bay Credit Union"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", sorted([*ALL, "Quiet Harbor Wealth"])),
        ("-name", sorted([*ALL, "Quiet Harbor Wealth"], reverse=True)),
        ("worst", [*ALL, "Quiet Harbor Wealth"]),
        ("-worst", ["Quiet Harbor Wealth", *reversed(ALL)]),
        # Segments in their reference order (bank, insurer, wealth, fintech), then name.
        (
            "segment",
            [
                "Granite Bay Credit Union",
                "Harbor Light Bank",
                "Meridian Mutual Insurance",
                "Quiet Harbor Wealth",
                "Ledgerline Payments",
            ],
        ),
    ],
)
def test_the_matrix_sorts_by_name_segment_and_worst_status(client, tenant_a, book, sort, expected):
    response = _get(client, tenant_a, Role.COMPLIANCE, f"?sort={sort}")
    assert _row_names(response) == expected


@pytest.mark.django_db
def test_the_matrix_is_paginated_keeping_filters(client, tenant_a, book):
    tenant = tenant_a.tenant
    segment = factories.segment_of(tenant, "wealth")
    with context.tenant_context(tenant):
        Account.objects.bulk_create(
            [Account(tenant=tenant, name=f"Wealth Client {n:02d}", segment=segment) for n in range(30)]
        )
    response = _get(client, tenant_a, Role.COMPLIANCE, f"?segment={segment.pk}&size=25&sort=name")
    assert len(response.context["rows"]) == 25 and response.context["page"].paginator.count == 31
    body = response.content.decode()
    assert f'href="?segment={segment.pk}&amp;size=25&amp;sort=name&amp;page=2"' in body
    second = client.get(URL + f"?segment={segment.pk}&size=25&sort=name&page=2")
    # "Quiet Harbor Wealth" sorts first, so page 2 holds the last six clients.
    assert _row_names(second) == [f"Wealth Client {n:02d}" for n in range(24, 30)]


@pytest.mark.django_db
def test_expiring_lists_obligations_by_evidence_date_with_owner(client, tenant_a, book):
    response = _get(client, tenant_a, Role.COMPLIANCE)
    rows = [(o.account.name, o.requirement.code, o.evidence_valid_until, o.owner) for o in response.context["expiring"]]
    assert rows == [
        ("Meridian Mutual Insurance", "SOC2-T2", _days(10), None),
        ("Granite Bay Credit Union", "SEC-17a-4", _days(20), tenant_a.user(Role.COMPLIANCE)),
    ]
    assert response.context["expiring_total"] == 2
    body = response.content.decode()
    section = body[body.index('id="expiring"') : body.index('id="failed-audits"')]
    assert _days(10).isoformat() in section and _days(20).isoformat() in section
    assert "(account CSM)" in section  # Meridian's obligation has no owner: its account's CSM is shown
    assert reverse("evidence_upload", args=[response.context["expiring"][0].pk]) in section


@pytest.mark.django_db
def test_expiring_shows_the_first_50_and_the_total(client, tenant_a):
    tenant = tenant_a.tenant
    requirement = factories.requirement_of(tenant, "soc2")
    segment = factories.segment_of(tenant)
    with context.tenant_context(tenant):
        accounts = Account.objects.bulk_create(
            [Account(tenant=tenant, name=f"Expiring {n:02d}", segment=segment) for n in range(55)]
        )
        obligations = Obligation.objects.bulk_create(
            [
                Obligation(tenant=tenant, account=a, requirement=requirement, due_date=TODAY, status="expiring")
                for a in accounts
            ]
        )
        Evidence.objects.bulk_create(
            [
                Evidence(
                    tenant=tenant,
                    obligation=o,
                    filename="x.pdf",
                    checksum_sha256="0" * 64,
                    valid_from=_days(-300),
                    valid_until=_days(1 + n % 29),
                )
                for n, o in enumerate(obligations)
            ]
        )
    response = _get(client, tenant_a, Role.COMPLIANCE)
    dates = [o.evidence_valid_until for o in response.context["expiring"]]
    assert len(dates) == 50 and dates == sorted(dates) and response.context["expiring_total"] == 55
    assert "55 obligations with evidence about to lapse; the 50 soonest are shown." in response.content.decode()


@pytest.mark.django_db
def test_failed_audits_show_the_latest_failure_per_obligation_in_the_last_365_days(client, tenant_a, book):
    response = _get(client, tenant_a, Role.COMPLIANCE)
    rows = [
        (a.obligation.account.name, a.obligation.requirement.code, a.audited_on, a.open_findings, a.auditor)
        for a in response.context["failed"]
    ]
    assert rows == [
        ("Meridian Mutual Insurance", "SOC2-T2", _days(-5), 1, "Insure Audit Co"),
        ("Granite Bay Credit Union", "PCI-AOC", _days(-20), 3, "Example LLP"),
    ]
    assert response.context["failed_total"] == 2
    body = response.content.decode()
    assert "Example LLP" in body and "Old LLP" not in body and "Outside LLP" not in body


@pytest.mark.django_db
def test_pass_rate_per_segment_as_chart_data_and_table(client, tenant_a, book):
    response = _get(client, tenant_a, Role.COMPLIANCE)
    bank, insurer = factories.segment_of(tenant_a.tenant, "bank"), factories.segment_of(tenant_a.tenant, "insurer")
    # Bank, in the window: PCI failed twice, Granite SOC 2 passed twice, Harbor SOC 2 passed once
    # (Harbor's failure 500 days ago and Granite's 400 days ago are outside): 3 of 5 = 60.0%.
    # Insurer: Meridian SOC 2 passed once and failed once: 1 of 2 = 50.0%. Fintech and wealth: no audits.
    expected = {"segments": [bank.name, insurer.name], "audits": [5, 2], "passed": [3, 1], "pass_rates": [60.0, 50.0]}
    assert response.context["pass_rates"] == expected
    body = response.content.decode()
    embedded = re.search(r'<script id="pass-rate-data" type="application/json">(.*?)</script>', body, re.S)
    assert json.loads(embedded.group(1)) == expected
    assert "vendor/plotly.min.js" in body and "js/compliance_chart.js" in body and 'id="pass-rate-chart"' in body
    table = body[body.index('<table class="data pass-rates">') :]
    assert re.search(
        rf"{re.escape(bank.name)}</th><td class=\"num\">5</td><td class=\"num\">3</td>"
        r"<td class=\"num\">60.0%</td>",
        table,
    )
    assert re.search(
        rf"{re.escape(insurer.name)}</th><td class=\"num\">2</td><td class=\"num\">1</td>"
        r"<td class=\"num\">50.0%</td>",
        table,
    )


@pytest.mark.django_db
def test_a_csms_pass_rates_cover_only_their_accounts(client, tenant_a, book):
    response = _get(client, tenant_a, Role.CSM)
    # Bank: only Granite (PCI failed x2, SOC 2 passed x2) = 2 of 4; insurer: Meridian 1 of 2.
    assert response.context["pass_rates"]["passed"] == [2, 1]
    assert response.context["pass_rates"]["pass_rates"] == [50.0, 50.0]


@pytest.mark.django_db
def test_members_of_no_tenant_get_404_and_anonymous_users_the_login_page(client, tenant_a):
    stranger = factories.UserFactory(username="stranger@nowhere.test")
    assert client.get(URL).status_code == 302
    client.force_login(stranger)
    assert client.get(URL).status_code == 404


def _bulk_book(tenant, n: int, start: int = 0) -> None:
    """`n` accounts, each with an obligation in three frameworks (statuses cycling), evidence and
    a failed audit on the expiring ones, through bulk_create to keep the test fast."""
    req = _requirements(tenant)
    codes = ["SOC2-T2", "PCI-AOC", "SEC-17a-4"]
    statuses = ["compliant", "expiring", "overdue", "failed", "not_started"]
    segments = [factories.segment_of(tenant, code) for code in ("bank", "insurer", "wealth", "fintech")]
    with context.tenant_context(tenant):
        accounts = Account.objects.bulk_create(
            [
                Account(tenant=tenant, name=f"Bulk Account {i:04d}", segment=segments[i % 4])
                for i in range(start, start + n)
            ]
        )
        obligations = Obligation.objects.bulk_create(
            [
                Obligation(
                    tenant=tenant,
                    account=account,
                    requirement=req[code],
                    due_date=TODAY,
                    status=statuses[(i + j) % len(statuses)],
                )
                for i, account in enumerate(accounts)
                for j, code in enumerate(codes)
            ]
        )
        Evidence.objects.bulk_create(
            [
                Evidence(
                    tenant=tenant,
                    obligation=o,
                    filename="e.pdf",
                    checksum_sha256="0" * 64,
                    valid_from=_days(-300),
                    valid_until=_days(15),
                )
                for o in obligations
                if o.status == "expiring"
            ]
        )
        AuditResult.objects.bulk_create(
            [
                AuditResult(
                    tenant=tenant,
                    obligation=o,
                    audited_on=_days(-7),
                    outcome="failed" if k % 2 else "passed",
                    open_findings=k % 2,
                    auditor="Bulk LLP",
                )
                for k, o in enumerate(obligations)
            ]
        )


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.COMPLIANCE, Role.MANAGER])
def test_the_query_count_does_not_grow_with_accounts_or_obligations(client, tenant_a, role):
    tenant = tenant_a.tenant
    client.force_login(tenant_a.user(role))
    client.get(URL)  # stores the active tenant in the session

    def queries(total_accounts: int) -> tuple[int, int]:
        with context.tenant_context(tenant):
            existing = Account.objects.count()
        _bulk_book(tenant, total_accounts - existing, start=existing)
        if role == Role.MANAGER:  # give the team the whole book, as a CSM's manager sees it
            with context.tenant_context(tenant):
                Account.objects.update(owner_csm=tenant_a.user(Role.CSM))
        with CaptureQueriesContext(connection) as captured:
            response = client.get(URL + "?size=100")
        assert response.status_code == 200
        return len(captured), len(response.context["rows"])

    small, small_rows = queries(10)
    large, large_rows = queries(500)
    assert (small_rows, large_rows) == (10, 100)
    assert small == large
    # What visible_accounts() itself reads to find the book (a manager's team; nothing for
    # tenant-wide roles) is counted once, not per section.
    with context.tenant_context(tenant), CaptureQueriesContext(connection) as book:
        compliance_book(tenant_a.user(role), tenant_a.memberships[role])
    assert role != Role.COMPLIANCE or len(book) == 0
    # session, user, memberships (middleware); the book; segments, frameworks in use, owners (filter
    # options); matrix count, matrix page, cells of the page; status counts; expiring ids and
    # total, expiring rows; failed audits ids and total, their rows; pass rates.
    assert large == 3 + len(book) + 12
