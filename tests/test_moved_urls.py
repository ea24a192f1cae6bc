"""Pages renamed by issue #17 item 6 ("scorecard" meant four things): their old addresses answer a permanent
redirect to the new ones, with the query string and (308) the method kept, and the unsubscribe links in
weekly emails already sent keep working in place."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from cs_platform.tenancy.models import Role
from scorecards.tokens import unsubscribe_token
from tests.urlwalk import all_patterns

db = pytest.mark.django_db

MOVED = [
    ("/scorecards/", "health_model", {}),
    ("/settings/scorecard/", "weekly_email_preferences", {}),
    ("/scorecards/preview/", "weekly_email_preview", {}),
    ("/scorecards/preview/email/", "weekly_email_preview_email", {}),
    ("/settings/scorecards/deliveries/", "weekly_email_deliveries", {}),
]


@db
@pytest.mark.parametrize(("old", "name", "kwargs"), MOVED)
def test_an_old_address_answers_308_to_the_new_one_with_its_query(client, tenant_a, old, name, kwargs):
    client.force_login(tenant_a.user(Role.ADMIN))
    response = client.get(old, {"week": "2026-W49"})
    assert response.status_code == 308
    assert response["Location"] == reverse(name, kwargs=kwargs) + "?week=2026-W49"
    assert client.get(response["Location"]).status_code == 200


@db
def test_an_old_health_model_edit_address_keeps_its_id_and_a_post_stays_a_post(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    response = client.post("/scorecards/7/", {"green_at": "70"})
    assert response.status_code == 308  # not 301/302, which browsers turn into a GET
    assert response["Location"] == reverse("health_model_edit", kwargs={"scorecard_id": 7}) == "/health-model/7/"


@db
def test_the_new_names_are_what_the_pages_link_to(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    body = client.get(reverse("home"), follow=True).content.decode()
    assert 'href="/health-model/"' in body and 'href="/settings/weekly-email/"' in body
    assert "/scorecards/" not in body and "/settings/scorecard/" not in body


@db
def test_an_unsubscribe_link_from_an_email_sent_before_the_rename_still_unsubscribes(tenant_a):
    executive = tenant_a.user(Role.EXECUTIVE)
    token = unsubscribe_token(tenant_a.tenant, executive)
    client = Client(enforce_csrf_checks=True)  # as a mail client's one-click POST: no session, no CSRF token
    response = client.post(
        f"/scorecards/unsubscribe/{token}/",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert reverse("weekly_email_unsubscribe", kwargs={"token": token}) == f"/weekly-email/unsubscribe/{token}/"


def test_the_url_walks_leave_out_the_redirects_but_keep_the_old_unsubscribe_link():
    names = {name for name, _ in all_patterns(with_token_urls=True)}
    assert None not in names
    assert "weekly_email_unsubscribe_before_17" in names
