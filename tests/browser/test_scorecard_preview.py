"""The scorecard preview in Chromium, with an account a CSM renamed to an HTML payload (the stored XSS of
issue #15, item 1): nothing runs (no dialog opens), the name reads as typed in the plain-text version,
and the HTML version loads in its sandboxed frame from its own URL with its images and styles under its
own Content-Security-Policy (no violation reported)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from cs_platform.tenancy.models import Role
from tests import factories
from tests.browser.conftest import log_in
from tests.committed import purge_tenant

pytestmark = pytest.mark.browser

PAYLOAD = "<img src=x onerror=alert(document.domain)>"


@pytest.fixture
def renamed_account(django_db_setup, django_db_blocker, settings):
    from accounts.services import account_create, account_update

    today = timezone.localdate()
    settings.SCORECARD_WEEKDAY = today.isoweekday()  # this week's figures are today's (the server thread reads it)
    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="browser-xss", name="Browser XSS Tenant")
        users = {}
        for role in (Role.EXECUTIVE, Role.CSM):
            users[role] = factories.UserFactory(username=f"{role}@browser-xss.test")
            factories.MembershipFactory(tenant=tenant, user=users[role], role=role)
        account = account_create(
            tenant=tenant,
            name="Harbor Point Bank",
            segment=factories.segment_of(tenant),
            owner_csm=users[Role.CSM],
            renewal_date=today + datetime.timedelta(days=30),
            actor=users[Role.CSM],
        )
        account_update(tenant=tenant, account=account, name=PAYLOAD, actor=users[Role.CSM])  # the CSM's rename
        factories.HealthSnapshotFactory(
            tenant=tenant, account=account, snapshot_date=today - datetime.timedelta(days=7), band="green"
        )
        factories.HealthSnapshotFactory(tenant=tenant, account=account, snapshot_date=today, band="red")
    yield users[Role.EXECUTIVE]
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        purge_tenant(tenant.pk, [user.pk for user in users.values()])


def test_the_preview_runs_no_payload_and_frames_the_email_under_its_own_policy(live_url, page, renamed_account):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    log_in(page, live_url, renamed_account.username, factories.TEST_PASSWORD)

    page.goto(live_url + "/weekly-email/preview/")
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert not dialogs, f"script ran: {dialogs}"
    assert PAYLOAD in page.inner_text("pre.email-text")  # read as typed, not parsed

    frame_element = page.locator("iframe.email-frame")
    assert frame_element.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
    frame = frame_element.element_handle().content_frame()
    frame.wait_for_load_state("load")
    assert frame.url.startswith(live_url + "/weekly-email/preview/email/?week=")
    assert frame.locator("table.scorecard-table").count() >= 4  # the email, laid out
    assert frame.get_by_text(PAYLOAD).first.is_visible()  # the name, as text, in the HTML version
    # The charts are data: images: loaded, so the frame's policy lets them through.
    sizes = frame.locator("img").evaluate_all("images => images.map(i => [i.complete, i.naturalWidth])")
    assert sizes and all(complete and width > 0 for complete, width in sizes), sizes
    # Its inline styles applied (the header cell's padding), so the policy lets those through too.
    assert frame.locator("h1").first.evaluate("h => getComputedStyle(h).fontSize") == "22px"

    assert not dialogs, f"script ran: {dialogs}"
    assert not [text for text in console if "Content Security Policy" in text], console


# Plotly draws labels from a pseudo-HTML subset of its own (<b>, <a href>...): the names it is given must
# still come out as text, and no link it draws may run script.
CHART_PAYLOAD = '<img src=x onerror=alert(1)><a href="javascript:alert(2)">open</a>'
# After the page's scripts ran: any element with an inline handler or a javascript: URL, as name=value.
DOM_HANDLERS = """() => Array.from(document.querySelectorAll('*')).flatMap(element =>
    Array.from(element.attributes)
        .filter(a => a.name.startsWith('on') || /^[\\s\\u0000-\\u001f]*javascript:/i.test(a.value))
        .map(a => element.tagName + ' ' + a.name + '=' + a.value))"""


@pytest.fixture
def hostile_chart_names(django_db_setup, django_db_blocker):
    from compliance.services import audit_result_record, obligation_create
    from cs_platform.tenancy import context
    from segments.models import KpiDefinition
    from segments.services import kpi_definition_update, segment_update

    today = timezone.localdate()
    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="browser-xss-charts", name="Browser XSS Charts")
        admin = factories.UserFactory(username="admin@browser-xss-charts.test")
        factories.MembershipFactory(tenant=tenant, user=admin, role=Role.ADMIN)
        bank = segment_update(tenant=tenant, segment=factories.segment_of(tenant), name=CHART_PAYLOAD, actor=admin)
        with context.tenant_context(tenant):
            kpi = KpiDefinition.objects.filter(segment=bank).order_by("sort_order").first()
        kpi_definition_update(tenant=tenant, kpi=kpi, name=CHART_PAYLOAD, actor=admin)
        account = factories.AccountFactory(tenant=tenant, segment=bank)
        obligation = obligation_create(
            tenant=tenant,
            account=account,
            requirement=factories.requirement_of(tenant),
            due_date=today + datetime.timedelta(days=30),
            actor=admin,
        )
        # An audit this year, so the compliance dashboard charts the segment's pass rate.
        audit_result_record(tenant=tenant, obligation=obligation, audited_on=today, outcome="passed", actor=admin)
    yield tenant, admin, bank
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        purge_tenant(tenant.pk, [admin.pk])


def test_charts_draw_typed_names_as_text(live_url, page, hostile_chart_names):
    tenant, admin, bank = hostile_chart_names
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_url, admin.username, factories.TEST_PASSWORD)
    for path, chart in (
        (f"/portfolio/segments/{bank.pk}/", "#kpi-attainment-chart"),
        ("/compliance/", "#pass-rate-chart"),
    ):
        page.goto(live_url + path)
        page.wait_for_selector(f"{chart} svg text")  # Plotly drew
        page.wait_for_timeout(300)
        assert "<img src=x" in page.locator(chart).inner_text(), path  # the typed name, as text
        assert not page.evaluate(DOM_HANDLERS), (path, page.evaluate(DOM_HANDLERS))
    assert not dialogs, f"script ran: {dialogs}"
