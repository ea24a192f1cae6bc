"""The scorecard email pages for logged-in members: their own preferences and the preview of this
week's email."""

from __future__ import annotations

import base64
import datetime
import html
import re
import zoneinfo

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from scorecards import schedule, services
from scorecards.content import weekly_scorecard
from scorecards.email import render_scorecard
from scorecards.models import ScorecardSubscription
from scorecards.tokens import unsubscribe_url
from scorecards.weeks import IsoWeek
from tests import factories
from tests.helpers import last_event, log_in_as, page_text
from tests.scorecards import TODAY

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("send_day_is_today")]


def _row(tenant, user):
    with context.tenant_context(tenant):
        return ScorecardSubscription.objects.filter(user=user).first()


# --- Preferences -------------------------------------------------------------------------------------
def test_the_nav_links_every_member_to_their_preferences(client, tenant_a):
    for role in (Role.VIEWER, Role.EXECUTIVE):
        log_in_as(client, tenant_a, role)
        body = client.get(reverse("account_list")).content.decode()
        assert f'href="{reverse("weekly_email_preferences")}"' in body and "Weekly email" in body


def test_preferences_show_the_default_and_the_next_send(client, tenant_a):
    log_in_as(client, tenant_a, Role.CSM)
    response = client.get(reverse("weekly_email_preferences"))
    assert response.status_code == 200
    body = page_text(response)
    assert "Executives receive it unless they turn it off" in body
    assert "you do not receive it" in body
    assert not re.search(r'name="enabled"[^>]*checked', body)
    next_send = schedule.next_scorecard_send(tenant_a.tenant)
    assert next_send.strftime("%A") in body and f"{next_send:%H:%M}" in body
    for code in ("bank", "insurer"):
        segment = factories.segment_of(tenant_a.tenant, code)
        assert f'name="segment_ids" value="{segment.pk}"' in body

    log_in_as(client, tenant_a, Role.EXECUTIVE)
    body = page_text(client.get(reverse("weekly_email_preferences")))
    assert "you receive it by default" in body
    assert re.search(r'name="enabled"[^>]*checked', body)


def test_saving_preferences_goes_through_the_audited_service(client, tenant_a):
    log_in_as(client, tenant_a, Role.CSM)
    csm = tenant_a.user(Role.CSM)
    insurer = factories.segment_of(tenant_a.tenant, "insurer")
    response = client.post(reverse("weekly_email_preferences"), {"enabled": "on", "segment_ids": [str(insurer.pk)]})
    assert response.status_code == 302 and response["Location"] == reverse("weekly_email_preferences")
    row = _row(tenant_a.tenant, csm)
    assert (row.enabled, row.segment_ids) == (True, [insurer.pk])
    event = last_event(tenant_a.tenant)
    assert event.action == "scorecard_subscription.update" and event.actor_id == csm.pk
    body = page_text(client.get(reverse("weekly_email_preferences")))
    assert "you will receive the weekly scorecard email" in body
    assert re.search(rf'name="segment_ids" value="{insurer.pk}"[^>]*checked', body)

    # Unticking "send me" turns it off (an unchecked box posts nothing).
    client.post(reverse("weekly_email_preferences"), {"segment_ids": [str(insurer.pk)]})
    assert _row(tenant_a.tenant, csm).enabled is False


@pytest.mark.parametrize("bad", ["other-tenant", "missing", "text"])
def test_bad_segment_ids_are_refused_naming_the_field(client, tenant_a, tenant_b, bad):
    value = {
        "other-tenant": str(factories.segment_of(tenant_b.tenant, "insurer").pk),
        "missing": "987654321",
        "text": "bank",
    }[bad]
    log_in_as(client, tenant_a, Role.EXECUTIVE)
    response = client.post(reverse("weekly_email_preferences"), {"enabled": "on", "segment_ids": [value]})
    assert response.status_code == 400
    body = page_text(response)
    assert 'id="id_segment_ids_error"' in body
    assert _row(tenant_a.tenant, tenant_a.user(Role.EXECUTIVE)) is None


def test_the_page_only_ever_touches_the_logged_in_member(client, tenant_a):
    """There is no URL for another member's subscription; extra fields naming someone else are ignored."""
    log_in_as(client, tenant_a, Role.VIEWER)
    viewer, executive = tenant_a.user(Role.VIEWER), tenant_a.user(Role.EXECUTIVE)
    response = client.post(
        reverse("weekly_email_preferences") + f"?user={executive.pk}",
        {"enabled": "", "user": executive.pk, "user_id": executive.pk, "tenant": "bravo"},
    )
    assert response.status_code == 302
    assert _row(tenant_a.tenant, executive) is None
    assert _row(tenant_a.tenant, viewer).enabled is False
    assert last_event(tenant_a.tenant).object_id == str(_row(tenant_a.tenant, viewer).pk)


def test_preferences_need_a_login_and_a_membership(client):
    response = client.get(reverse("weekly_email_preferences"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(factories.UserFactory(username="nobody@example.test"))
    assert client.get(reverse("weekly_email_preferences")).status_code == 404


@override_settings(SCORECARD_WEEKDAY=1, SCORECARD_LOCAL_HOUR=7)
def test_next_send_is_the_next_weekday_at_the_local_hour(tenant_a):
    tenant = tenant_a.tenant
    tenant.time_zone = "America/New_York"
    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    utc = datetime.UTC
    # Monday 06:00 in New York: today at 07:00.
    now = datetime.datetime(2026, 11, 23, 11, 0, tzinfo=utc)
    assert schedule.next_scorecard_send(tenant, now=now) == datetime.datetime(2026, 11, 23, 7, tzinfo=zone)
    # Monday 07:30: next Monday.
    now = datetime.datetime(2026, 11, 23, 12, 30, tzinfo=utc)
    assert schedule.next_scorecard_send(tenant, now=now) == datetime.datetime(2026, 11, 30, 7, tzinfo=zone)
    # Across the spring-forward change (8 March 2026): still 07:00 local, which is 11:00 UTC, not 12:00.
    now = datetime.datetime(2026, 3, 3, 15, 0, tzinfo=utc)
    result = schedule.next_scorecard_send(tenant, now=now)
    assert result == datetime.datetime(2026, 3, 9, 7, tzinfo=zone)
    assert result.astimezone(utc).hour == 11


# --- Preview -----------------------------------------------------------------------------------------
def _week_with_figures(world):
    """An account that dropped from green to red this week and renews within 90 days: it is a mover
    and a renewal at risk, so its name is one of the week's figures."""
    today = TODAY
    account = factories.AccountFactory(
        tenant=world.tenant, name="Harbor Point Bank", renewal_date=today + datetime.timedelta(days=30)
    )
    factories.AccountFactory(tenant=world.tenant, name="Quiet Creek Credit Union")
    factories.HealthSnapshotFactory(
        tenant=world.tenant, account=account, snapshot_date=today - datetime.timedelta(days=7), band="green"
    )
    factories.HealthSnapshotFactory(
        tenant=world.tenant, account=account, snapshot_date=today, band="red", total="31.00"
    )
    return account, IsoWeek.of(today)


def _expected_email(world, role, week, segment_ids=None):
    user, membership = world.user(role), world.memberships[role]
    scorecard = weekly_scorecard(user=user, membership=membership, week=week, segment_ids=segment_ids)
    return render_scorecard(scorecard, unsubscribe_url=unsubscribe_url(world.tenant, user))


def test_preview_shows_this_weeks_email_for_an_executive(client, tenant_a):
    account, week = _week_with_figures(tenant_a)
    log_in_as(client, tenant_a, Role.EXECUTIVE)
    response = client.get(reverse("weekly_email_preview"))
    assert response.status_code == 200
    body = response.content.decode()
    expected = _expected_email(tenant_a, Role.EXECUTIVE, week)

    # The plain-text version, exactly as the email carries it.
    text = html.unescape(body.split('<pre class="email-text card">', 1)[1].split("</pre>", 1)[0])
    assert text == expected.text
    assert account.name in text and str(week) in text

    # The HTML version in a sandboxed iframe that loads it as a document of its own, every cid: image
    # inlined as a data: URI.
    frame = re.search(r'<iframe [^>]*sandbox="allow-popups allow-popups-to-escape-sandbox"[^>]*src="([^"]*)"', body)
    assert frame, "the email is not shown in a sandboxed iframe"
    assert html.unescape(frame[1]) == f"{reverse('weekly_email_preview_email')}?week={week}"
    document = client.get(html.unescape(frame[1]))
    assert document.status_code == 200 and document["Content-Type"] == "text/html; charset=utf-8"
    email_html = document.content.decode()
    assert "cid:" not in body and "cid:" not in email_html
    assert expected.images, "the week's email has charts"
    for png in expected.images.values():
        assert "data:image/png;base64," + base64.b64encode(png).decode() in email_html
    assert account.name in email_html
    assert '<base target="_blank">' in email_html  # the email's links open outside the sandbox
    assert html.escape(expected.subject) in body


def test_preview_queries_do_not_grow_with_the_number_of_accounts(client, tenant_a):
    """Equal for 2 and 20 accounts: the page adds a fixed handful of queries (session, user and
    memberships in the middleware; the member's subscription row) to weekly_scorecard's fixed set,
    which the content tests count one by one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    log_in_as(client, tenant_a, Role.EXECUTIVE)
    today = TODAY

    def add_accounts(n: int) -> None:
        for _ in range(n):
            account = factories.AccountFactory(tenant=tenant_a.tenant, renewal_date=today + datetime.timedelta(days=20))
            factories.HealthSnapshotFactory(tenant=tenant_a.tenant, account=account, snapshot_date=today, band="red")

    counts = []
    for n in (2, 18):  # 2, then 20 in all
        add_accounts(n)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("weekly_email_preview")).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_preview_follows_the_members_segment_choice(client, tenant_a):
    account, week = _week_with_figures(tenant_a)
    executive = tenant_a.user(Role.EXECUTIVE)
    insurer = factories.segment_of(tenant_a.tenant, "insurer")
    services.scorecard_subscription_update(
        tenant=tenant_a.tenant, user=executive, enabled=True, segment_ids=[insurer.pk], actor=executive
    )
    log_in_as(client, tenant_a, Role.EXECUTIVE)
    body = page_text(client.get(reverse("weekly_email_preview")))
    expected = _expected_email(tenant_a, Role.EXECUTIVE, week, segment_ids=[insurer.pk])
    assert expected.text in body
    assert account.name not in expected.text  # a bank: not in the insurer-only email
    assert account.name not in body


def test_preview_of_another_week_and_a_bad_week(client, tenant_a):
    log_in_as(client, tenant_a, Role.VIEWER)
    previous = IsoWeek.of(timezone.localdate()).previous()
    response = client.get(reverse("weekly_email_preview"), {"week": str(previous)})
    assert response.status_code == 200
    assert f"week {previous}" in page_text(response)
    response = client.get(reverse("weekly_email_preview"), {"week": "2026-W99"})
    assert response.status_code == 400
    assert "has no week 99" in page_text(response)


def test_preview_says_when_the_member_does_not_receive_it(client, tenant_a):
    log_in_as(client, tenant_a, Role.CSM)
    body = page_text(client.get(reverse("weekly_email_preview")))
    assert "You do not receive this email" in body


def test_preview_needs_a_login_and_a_membership(client):
    response = client.get(reverse("weekly_email_preview"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(factories.UserFactory(username="nobody@example.test"))
    assert client.get(reverse("weekly_email_preview")).status_code == 404


# --- The email document the preview frames -----------------------------------------------------------
EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)


def _as_framed(rendered) -> str:
    """The email's HTML as the preview frame must show it, worked out here independently of the view:
    each cid: image as a data: URI, and a <base target="_blank"> first in <head>."""
    document = rendered.html
    for content_id, png in rendered.images.items():
        document = document.replace(f"cid:{content_id}", "data:image/png;base64," + base64.b64encode(png).decode())
    assert document.count("<head>") == 1
    return document.replace("<head>", '<head><base target="_blank">')


def test_the_framed_email_is_a_document_of_its_own_under_the_emails_policy(client, tenant_a):
    _, week = _week_with_figures(tenant_a)
    log_in_as(client, tenant_a, Role.EXECUTIVE)
    response = client.get(reverse("weekly_email_preview_email"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Security-Policy"] == EMAIL_POLICY
    assert response["X-Frame-Options"] == "SAMEORIGIN"  # the site's DENY would blank the preview
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response.content.decode() == _as_framed(_expected_email(tenant_a, Role.EXECUTIVE, week))


def test_the_framed_email_follows_the_week_parameter(client, tenant_a):
    log_in_as(client, tenant_a, Role.VIEWER)
    previous = IsoWeek.of(timezone.localdate()).previous()
    response = client.get(reverse("weekly_email_preview_email"), {"week": str(previous)})
    assert response.status_code == 200
    assert response.content.decode() == _as_framed(_expected_email(tenant_a, Role.VIEWER, previous))
    # The preview page frames the week it shows.
    page = client.get(reverse("weekly_email_preview"), {"week": str(previous)}).content.decode()
    assert f'src="{reverse("weekly_email_preview_email")}?week={previous}"' in page

    for bad in ("2026-W99", "<script>alert(1)</script>"):
        refused = client.get(reverse("weekly_email_preview_email"), {"week": bad})
        assert refused.status_code == 400
        # Plain text under the same policy: what was typed in ?week= is never parsed as HTML.
        assert refused["Content-Type"] == "text/plain; charset=utf-8"
        assert refused["Content-Security-Policy"] == EMAIL_POLICY
    assert "has no week 99" in client.get(reverse("weekly_email_preview_email"), {"week": "2026-W99"}).content.decode()


def test_the_framed_email_is_only_ever_the_members_own(client, tenant_a):
    account, week = _week_with_figures(tenant_a)  # not in the CSM's book
    log_in_as(client, tenant_a, Role.CSM)
    executive = tenant_a.user(Role.EXECUTIVE)
    # No parameter names another member: an executive's id in the query changes nothing.
    response = client.get(reverse("weekly_email_preview_email"), {"user": executive.pk, "user_id": executive.pk})
    assert response.status_code == 200
    body = response.content.decode()
    assert body == _as_framed(_expected_email(tenant_a, Role.CSM, week))
    assert account.name not in body and "your accounts" in body


def test_the_framed_email_needs_a_login_and_a_membership(client):
    response = client.get(reverse("weekly_email_preview_email"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(factories.UserFactory(username="nobody@example.test"))
    assert client.get(reverse("weekly_email_preview_email")).status_code == 404
