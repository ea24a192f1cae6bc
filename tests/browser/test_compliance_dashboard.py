import datetime
import hashlib
from pathlib import Path

import pytest

from accounts.services import account_create
from compliance.models import Requirement
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from tests.committed import purge_tenant

pytestmark = pytest.mark.browser

TODAY = datetime.date.today()
SCREENSHOT = Path("test-artifacts/screenshots/compliance.png")


def _days(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


@pytest.fixture
def compliance_world(django_db_setup, django_db_blocker):
    """A committed tenant: a compliance officer, four accounts in three segments with obligations in
    three frameworks (one failed), and audits in two segments."""
    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="browser-compliance", name="Browser Compliance Tenant")
        officer = factories.UserFactory(username="compliance@browser.test", first_name="Jordan", last_name="Reyes")
        factories.MembershipFactory(tenant=tenant, user=officer, role=Role.COMPLIANCE)
        with context.tenant_context(tenant):
            req = {r.code: r for r in Requirement.objects.all()}
        seg = {code: factories.segment_of(tenant, code) for code in ("bank", "insurer", "fintech")}
        specs = [
            (
                "Granite Bay Credit Union",
                "bank",
                {"SOC2-T2": "compliant", "PCI-AOC": "failed", "SEC-17a-4": "expiring"},
            ),
            ("Harbor Light Bank", "bank", {"SOC2-T2": "overdue", "PCI-AOC": "compliant"}),
            ("Meridian Mutual Insurance", "insurer", {"SOC2-T2": "expiring"}),
            ("Ledgerline Payments", "fintech", {"SOC2-T2": "not_started"}),
        ]
        obligations = {}
        for name, segment, statuses in specs:
            account = account_create(tenant=tenant, name=name, segment=seg[segment])
            for code, status in statuses.items():
                obligations[(name, code)] = factories.ObligationFactory(
                    tenant=tenant, account=account, requirement=req[code], status=status
                )
        expiring = {("Granite Bay Credit Union", "SEC-17a-4"): 12, ("Meridian Mutual Insurance", "SOC2-T2"): 25}
        for key, days in expiring.items():
            factories.EvidenceFactory(tenant=tenant, obligation=obligations[key], valid_until=_days(days))
        audits = [
            (("Granite Bay Credit Union", "PCI-AOC"), "failed", 3),
            (("Granite Bay Credit Union", "SOC2-T2"), "passed", 0),
            (("Harbor Light Bank", "SOC2-T2"), "passed", 0),
            (("Meridian Mutual Insurance", "SOC2-T2"), "passed", 0),
        ]
        for key, outcome, findings in audits:
            factories.AuditResultFactory(
                tenant=tenant,
                obligation=obligations[key],
                outcome=outcome,
                open_findings=findings,
                auditor="Example LLP",
            )
    yield tenant, officer, obligations
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        purge_tenant(tenant.pk, [officer.pk])


def _log_in(page, live_url: str, username: str) -> None:
    # Through the login form; where home lands depends on the role, so wait for the form to go.
    page.goto(live_url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", factories.TEST_PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/login/" not in page.url


def test_compliance_dashboard_draws_pass_rates_and_filters_the_matrix(live_url, page, compliance_world):
    tenant, officer, _ = compliance_world
    page.set_viewport_size({"width": 1280, "height": 900})
    _log_in(page, live_url, officer.username)
    page.goto(live_url + "/compliance/")

    # plotly.js, from our static files, drew one bar per segment with audits: bank 2 of 3, insurer 1 of 1.
    page.wait_for_selector("#pass-rate-chart .main-svg")
    assert page.evaluate("document.getElementById('pass-rate-chart').data[0].y.length") == 2
    assert page.evaluate("document.getElementById('pass-rate-chart').data[0].y") == [66.7, 100.0]
    assert page.locator("table.pass-rates tbody tr").count() == 2

    matrix_rows = page.locator("table.compliance-matrix tbody tr")
    assert matrix_rows.count() == 4
    assert "Expiring in the next 30 days" in page.inner_text("#expiring")
    assert page.locator("#expiring tbody tr").count() == 2
    assert "Example LLP" in page.inner_text("#failed-audits")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Filter by status with the keyboard-usable form: only the account with a failed obligation stays.
    page.select_option("#f-status", "failed")
    with page.expect_navigation():
        page.click(".compliance-filters button[type=submit]")
    assert "status=failed" in page.url
    assert matrix_rows.count() == 1
    assert "Granite Bay Credit Union" in matrix_rows.first.inner_text()
    assert "Failed" in matrix_rows.first.inner_text()  # the status is words, not only a colour

    # The headline tile for "Expiring" narrows the matrix the same way.
    page.click(".status-counts a:has(.status-expiring)")
    page.wait_for_url("**status=expiring**")
    assert sorted(matrix_rows.all_inner_texts())[0].startswith("Granite Bay Credit Union")
    assert matrix_rows.count() == 2


def test_evidence_upload_through_the_browser(live_url, page, compliance_world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    tenant, officer, obligations = compliance_world
    obligation = obligations[("Harbor Light Bank", "SOC2-T2")]
    content = b"%PDF-1.7\n% SOC 2 Type II report\n%%EOF\n"
    _log_in(page, live_url, officer.username)
    page.goto(f"{live_url}/compliance/obligations/{obligation.pk}/evidence/")
    assert "Harbor Light Bank" in page.inner_text("h1")

    page.set_input_files("#id_file", {"name": "soc2.exe", "mimeType": "application/pdf", "buffer": content})
    page.fill("#id_valid_from", _days(-5).isoformat())
    page.fill("#id_valid_until", _days(360).isoformat())
    with page.expect_navigation():
        page.click("text=Upload evidence")
    assert "not accepted" in page.inner_text("#id_file_error")
    assert page.input_value("#id_valid_from") == _days(-5).isoformat()  # input kept
    assert page.get_attribute("#id_file", "aria-invalid") == "true"

    page.set_input_files("#id_file", {"name": "soc2.pdf", "mimeType": "application/pdf", "buffer": content})
    with page.expect_navigation():
        page.click("text=Upload evidence")
    checksum = hashlib.sha256(content).hexdigest()
    assert checksum in page.inner_text(".messages")
    assert page.locator("code.checksum", has_text=checksum).count() == 1
    page.screenshot(path=str(SCREENSHOT.with_name("compliance-evidence.png")), full_page=True)
