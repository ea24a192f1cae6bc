"""Regression test for the stored XSS of issue #15, item 1: a CSM renames their own account through the
API to an HTML payload; an executive opens the weekly scorecard preview. The plain-text part of the email
(rendered with autoescape off, as a text email must be) was returned as a SafeString and printed into the
preview page unescaped, so the payload ran in the executive's browser."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeData

from cs_platform.tenancy.models import Role
from scorecards.content import weekly_scorecard
from scorecards.email import RenderedScorecard, render_scorecard
from scorecards.weeks import IsoWeek
from tests import factories
from tests.helpers import log_in_as, owned_account
from tests.scorecards import send_today
from tests.security.markup import parse_html

pytestmark = pytest.mark.django_db

PAYLOAD = "<img src=x onerror=alert(document.domain)>"


@pytest.fixture
def renamed_by_its_csm(client, tenant_a, settings):
    """The CSM's account, renamed by the CSM through the REST API, red this week after a green one: a
    mover and a renewal at risk, so its name is in the executive's email."""
    send_today(settings)  # this week's figures are today's
    account = owned_account(tenant_a, "Harbor Point Bank", renewal_date=timezone.localdate() + datetime.timedelta(30))
    log_in_as(client, tenant_a, Role.CSM)
    response = client.patch(f"/api/v1/accounts/{account.pk}/", {"name": PAYLOAD}, content_type="application/json")
    assert response.status_code == 200, response.content
    today = timezone.localdate()
    factories.HealthSnapshotFactory(
        tenant=tenant_a.tenant, account=account, snapshot_date=today - datetime.timedelta(days=7), band="green"
    )
    factories.HealthSnapshotFactory(tenant=tenant_a.tenant, account=account, snapshot_date=today, band="red")
    client.logout()
    return account


def test_the_text_part_and_subject_are_plain_text_not_safe_html(tenant_a, renamed_by_its_csm):
    executive = tenant_a.user(Role.EXECUTIVE)
    card = weekly_scorecard(
        user=executive, membership=tenant_a.memberships[Role.EXECUTIVE], week=IsoWeek.of(timezone.localdate())
    )
    rendered = render_scorecard(card, unsubscribe_url=None)
    assert PAYLOAD in rendered.text  # a text email reads as typed
    assert not isinstance(rendered.text, SafeData) and not isinstance(rendered.subject, SafeData)
    # Whoever builds one: the text parts never arrive marked safe.
    from django.utils.safestring import mark_safe

    built = RenderedScorecard(subject=mark_safe("<b>s</b>"), text=mark_safe("<b>t</b>"), html="", images={})
    assert type(built.subject) is str and type(built.text) is str


@pytest.mark.parametrize("role", [Role.EXECUTIVE, Role.ADMIN])
def test_the_preview_shows_the_payload_as_text_and_runs_nothing(client, tenant_a, renamed_by_its_csm, role):
    log_in_as(client, tenant_a, role)
    page = client.get(reverse("weekly_email_preview"))
    assert page.status_code == 200
    document = parse_html(page.content.decode())
    assert not document.handlers, document.handlers  # the <img onerror> of the exploit, among others
    assert not [tag for tag in document.tags if tag[0] == "img"]
    # The plain-text version holds the name exactly as typed, as text.
    (text,) = document.texts_of("pre")
    assert PAYLOAD in text

    framed = client.get(reverse("weekly_email_preview_email"))
    assert framed.status_code == 200
    email = parse_html(framed.content.decode())
    assert not email.handlers and not email.scripts
    assert any(PAYLOAD in chunk for chunk in email.text)  # the account name, shown as text in the HTML email
