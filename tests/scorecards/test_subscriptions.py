"""Scorecard email subscriptions: the audited services, the signed unsubscribe token, and the no-login
unsubscribe page (confirm button, RFC 8058 one-click, tampered tokens, tenant isolation)."""

from __future__ import annotations

import json
import threading

import pytest
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connections
from django.test import Client, override_settings
from django.urls import reverse

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from scorecards import recipients, services
from scorecards.models import ScorecardSubscription
from scorecards.tokens import (
    SALT,
    InvalidUnsubscribeToken,
    read_unsubscribe_token,
    unsubscribe_token,
    unsubscribe_url,
)
from tests import factories
from tests.helpers import event_count, last_event, page_text

# Every test but the concurrency one (which commits, and so must stay outside the test transaction).
db = pytest.mark.django_db


def _row(tenant, user) -> ScorecardSubscription | None:
    with context.tenant_context(tenant):
        return ScorecardSubscription.objects.filter(user=user).first()


def _events(tenant, action: str) -> list[AuditEvent]:
    with context.tenant_context(tenant):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def _swap_tenant(token: str, tenant_id: int) -> str:
    """The same signature over a payload naming another tenant: what a forger without the key can make."""
    payload, signature = token.rsplit(":", 1)
    data = json.loads(signing.b64_decode(payload.encode()))
    data["t"] = tenant_id
    forged = signing.b64_encode(json.dumps(data, separators=(",", ":")).encode()).decode()
    return f"{forged}:{signature}"


# --- Tokens ------------------------------------------------------------------------------------------
@db
def test_token_round_trips_tenant_and_user(tenant_a):
    user = tenant_a.user(Role.EXECUTIVE)
    token = unsubscribe_token(tenant_a.tenant, user)
    assert read_unsubscribe_token(token) == (tenant_a.tenant.pk, user.pk)
    assert "/" not in token  # it is one path segment


@db
@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature altered
        lambda t: t[:-6],  # cut short
        lambda t: "x" + t,  # payload altered
        lambda t: "not-a-token",
        lambda t: "",
    ],
)
def test_tampered_tokens_are_refused(tenant_a, mangle):
    token = unsubscribe_token(tenant_a.tenant, tenant_a.user(Role.EXECUTIVE))
    with pytest.raises(InvalidUnsubscribeToken):
        read_unsubscribe_token(mangle(token))


@db
def test_a_token_with_the_tenant_swapped_fails_the_signature(tenant_a, tenant_b):
    token = unsubscribe_token(tenant_a.tenant, tenant_a.user(Role.EXECUTIVE))
    forged = _swap_tenant(token, tenant_b.tenant.pk)
    assert forged != token
    with pytest.raises(InvalidUnsubscribeToken):
        read_unsubscribe_token(forged)


@db
def test_tokens_signed_for_another_purpose_or_key_are_refused(tenant_a):
    payload = {"t": tenant_a.tenant.pk, "u": tenant_a.user(Role.EXECUTIVE).pk}
    with pytest.raises(InvalidUnsubscribeToken):
        read_unsubscribe_token(signing.Signer().sign_object(payload))  # no salt: another feature's value
    with pytest.raises(InvalidUnsubscribeToken):
        read_unsubscribe_token(signing.Signer(salt="password-reset").sign_object(payload))
    with pytest.raises(InvalidUnsubscribeToken):
        read_unsubscribe_token(signing.Signer(key="another-deployment-key", salt=SALT).sign_object(payload))
    # A well-signed token of an unexpected shape reads as invalid too, never as a server error.
    with pytest.raises(InvalidUnsubscribeToken):
        read_unsubscribe_token(signing.Signer(salt=SALT).sign_object({"t": "1", "u": None}))
    with pytest.raises(InvalidUnsubscribeToken):
        read_unsubscribe_token(signing.Signer(salt=SALT).sign_object([1, 2]))


@db
@override_settings(SITE_URL="https://cs.example.test")
def test_unsubscribe_url_is_absolute_on_the_site_url(tenant_a):
    user = tenant_a.user(Role.EXECUTIVE)
    url = unsubscribe_url(tenant_a.tenant, user)
    token = unsubscribe_token(tenant_a.tenant, user)
    assert url == f"https://cs.example.test/weekly-email/unsubscribe/{token}/"


# --- Services ----------------------------------------------------------------------------------------
@db
def test_update_saves_the_choice_and_records_an_audit_event(tenant_a):
    user = tenant_a.user(Role.CSM)
    insurer = factories.segment_of(tenant_a.tenant, "insurer")
    bank = factories.segment_of(tenant_a.tenant, "bank")
    services.scorecard_subscription_update(
        tenant=tenant_a.tenant, user=user, enabled=True, segment_ids=[insurer.pk, bank.pk, insurer.pk], actor=user
    )
    row = _row(tenant_a.tenant, user)
    assert row.enabled is True
    assert row.segment_ids == sorted([insurer.pk, bank.pk])
    event = last_event(tenant_a.tenant)
    assert event.action == "scorecard_subscription.update"
    assert event.actor_id == user.pk
    assert event.object_id == str(row.pk)
    # Before: a CSM's default (not receiving); after: the recorded choice.
    assert event.before == {"enabled": False, "segment_ids": [], "explicit": False}
    assert event.after == {"enabled": True, "segment_ids": sorted([insurer.pk, bank.pk]), "explicit": True}

    services.scorecard_subscription_update(tenant=tenant_a.tenant, user=user, enabled=False, segment_ids=[], actor=user)
    row = _row(tenant_a.tenant, user)
    assert (row.enabled, row.segment_ids) == (False, [])
    assert last_event(tenant_a.tenant).before["enabled"] is True
    with context.tenant_context(tenant_a.tenant):
        assert ScorecardSubscription.objects.filter(user=user).count() == 1


@db
@pytest.mark.parametrize("bad", [["abc"], [999_999_999], "1,2", 7])
def test_update_refuses_bad_segment_ids_naming_the_field(tenant_a, bad):
    user = tenant_a.user(Role.EXECUTIVE)
    before = event_count(tenant_a.tenant)
    with pytest.raises(ValidationError) as exc:
        services.scorecard_subscription_update(
            tenant=tenant_a.tenant, user=user, enabled=True, segment_ids=bad, actor=user
        )
    assert list(exc.value.message_dict) == ["segment_ids"]
    assert _row(tenant_a.tenant, user) is None
    assert event_count(tenant_a.tenant) == before


@db
def test_update_refuses_another_tenants_segment(tenant_a, tenant_b):
    user = tenant_a.user(Role.EXECUTIVE)
    theirs = factories.segment_of(tenant_b.tenant, "insurer")
    with pytest.raises(ValidationError) as exc:
        services.scorecard_subscription_update(
            tenant=tenant_a.tenant, user=user, enabled=True, segment_ids=[theirs.pk], actor=user
        )
    assert str(theirs.pk) in exc.value.message_dict["segment_ids"][0]
    assert _row(tenant_a.tenant, user) is None


@db
def test_update_refuses_a_user_who_is_not_a_member(tenant_a, tenant_b):
    outsider = tenant_b.user(Role.EXECUTIVE)
    with pytest.raises(ValidationError) as exc:
        services.scorecard_subscription_update(
            tenant=tenant_a.tenant, user=outsider, enabled=True, segment_ids=[], actor=outsider
        )
    assert "user" in exc.value.message_dict
    assert _row(tenant_a.tenant, outsider) is None


@db
def test_unsubscribe_is_audited_once_and_idempotent(tenant_a):
    executive = tenant_a.user(Role.EXECUTIVE)
    insurer = factories.segment_of(tenant_a.tenant, "insurer")
    services.scorecard_subscription_update(
        tenant=tenant_a.tenant, user=executive, enabled=True, segment_ids=[insurer.pk], actor=executive
    )
    services.scorecard_unsubscribe(tenant=tenant_a.tenant, user=executive, via="one-click")
    services.scorecard_unsubscribe(tenant=tenant_a.tenant, user=executive, via="link")
    row = _row(tenant_a.tenant, executive)
    assert row.enabled is False
    assert row.segment_ids == [insurer.pk]  # kept, so subscribing again restores the choice
    events = _events(tenant_a.tenant, "scorecard_subscription.unsubscribe")
    assert len(events) == 1
    assert events[0].actor_id is None and events[0].actor_label == "system"
    assert events[0].after["via"] == "one-click"
    with pytest.raises(ValidationError):
        services.scorecard_unsubscribe(tenant=tenant_a.tenant, user=executive, via="carrier-pigeon")


@db
def test_subscription_state_falls_back_to_the_role_default(tenant_a):
    for role, expected in ((Role.EXECUTIVE, True), (Role.CSM, False), (Role.ADMIN, False)):
        user = tenant_a.user(role)
        assert recipients.scorecard_subscription_state(tenant=tenant_a.tenant, user=user, role=role) == (
            expected,
            [],
            False,
        )
    executive = tenant_a.user(Role.EXECUTIVE)
    services.scorecard_unsubscribe(tenant=tenant_a.tenant, user=executive)
    assert recipients.scorecard_subscription_state(tenant=tenant_a.tenant, user=executive, role=Role.EXECUTIVE) == (
        False,
        [],
        True,
    )


# --- The unsubscribe page ----------------------------------------------------------------------------
def _url(world, role=Role.EXECUTIVE) -> str:
    return reverse("weekly_email_unsubscribe", kwargs={"token": unsubscribe_token(world.tenant, world.user(role))})


@db
def test_get_shows_who_is_unsubscribed_without_logging_in_and_changes_nothing(client, tenant_a):
    response = client.get(_url(tenant_a))
    assert response.status_code == 200
    body = page_text(response)
    assert "e•••@alpha.test" in body
    assert tenant_a.user(Role.EXECUTIVE).email not in body  # masked
    assert tenant_a.tenant.name in body
    assert 'method="post"' in body and "Unsubscribe</button>" in body
    assert response["Referrer-Policy"] == "no-referrer"
    assert _row(tenant_a.tenant, tenant_a.user(Role.EXECUTIVE)) is None
    assert not _events(tenant_a.tenant, "scorecard_subscription.unsubscribe")


@db
def test_get_for_a_member_who_does_not_receive_it_says_so(client, tenant_a):
    body = page_text(client.get(_url(tenant_a, Role.CSM)))  # CSMs opt in; this one never did
    assert "does not receive the weekly scorecard email" in body
    assert "Unsubscribe</button>" not in body
    body = page_text(client.get(_url(tenant_a, Role.EXECUTIVE)))  # executives receive it by default
    assert "Unsubscribe</button>" in body


@db
def test_post_unsubscribes_without_logging_in_and_twice_is_fine(tenant_a):
    client = Client(enforce_csrf_checks=True)  # the confirm button posts no CSRF token
    executive = tenant_a.user(Role.EXECUTIVE)
    first = client.post(_url(tenant_a))
    assert first.status_code == 200
    assert "You are unsubscribed" in page_text(first)
    assert reverse("weekly_email_preferences") in page_text(first)  # the way back
    assert _row(tenant_a.tenant, executive).enabled is False
    second = client.post(_url(tenant_a))
    assert second.status_code == 200
    assert _row(tenant_a.tenant, executive).enabled is False
    events = _events(tenant_a.tenant, "scorecard_subscription.unsubscribe")
    assert len(events) == 1
    assert events[0].object_id == str(_row(tenant_a.tenant, executive).pk)
    assert events[0].actor_id is None
    assert events[0].after == {
        "enabled": False,
        "segment_ids": [],
        "explicit": True,
        "via": "link",
        "member": executive.get_username(),
    }
    assert events[0].before == {"enabled": True, "segment_ids": [], "explicit": False}
    # Afterwards GET says so instead of offering the button again.
    assert "does not receive the weekly scorecard email" in page_text(client.get(_url(tenant_a)))


@db
def test_rfc8058_one_click_post_works_without_csrf(tenant_a):
    client = Client(enforce_csrf_checks=True)
    executive = tenant_a.user(Role.EXECUTIVE)
    services.scorecard_subscription_update(
        tenant=tenant_a.tenant, user=executive, enabled=True, segment_ids=[], actor=executive
    )
    response = client.post(
        _url(tenant_a), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert _row(tenant_a.tenant, executive).enabled is False
    event = _events(tenant_a.tenant, "scorecard_subscription.unsubscribe")[-1]
    assert event.after["via"] == "one-click"


@db
def test_only_the_unsubscribe_view_is_csrf_exempt(tenant_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_a.user(Role.EXECUTIVE))
    response = client.post(reverse("weekly_email_preferences"), {"enabled": "on"})
    assert response.status_code == 403
    assert _row(tenant_a.tenant, tenant_a.user(Role.EXECUTIVE)) is None


@db
@pytest.mark.parametrize("method", ["get", "post"])
def test_tampered_token_answers_400_with_a_clear_message(client, tenant_a, method):
    token = unsubscribe_token(tenant_a.tenant, tenant_a.user(Role.EXECUTIVE))
    url = reverse("weekly_email_unsubscribe", kwargs={"token": token[:-2] + "xx"})
    response = getattr(client, method)(url)
    assert response.status_code == 400
    assert "This unsubscribe link is not valid" in page_text(response)
    assert _row(tenant_a.tenant, tenant_a.user(Role.EXECUTIVE)) is None


@db
def test_a_token_for_a_deleted_member_answers_400(client, tenant_a):
    user = factories.UserFactory(username="gone@alpha.test", email="gone@alpha.test")
    token = unsubscribe_token(tenant_a.tenant, user)
    user.delete()
    response = client.post(reverse("weekly_email_unsubscribe", kwargs={"token": token}))
    assert response.status_code == 400
    assert "no longer matches" in page_text(response)


@db
def test_a_token_of_tenant_a_touches_nothing_in_tenant_b(client, tenant_a, tenant_b):
    # One person, a member of both tenants: the link from A's email stops A's email only.
    person = tenant_a.user(Role.EXECUTIVE)
    factories.MembershipFactory(tenant=tenant_b.tenant, user=person, role=Role.EXECUTIVE)
    services.scorecard_subscription_update(
        tenant=tenant_b.tenant, user=person, enabled=True, segment_ids=[], actor=person
    )
    b_events = event_count(tenant_b.tenant)
    token = unsubscribe_token(tenant_a.tenant, person)
    assert client.post(reverse("weekly_email_unsubscribe", kwargs={"token": token})).status_code == 200
    assert _row(tenant_a.tenant, person).enabled is False
    assert _row(tenant_b.tenant, person).enabled is True
    assert event_count(tenant_b.tenant) == b_events
    # Pointing the same token at tenant B needs the key: the forged token is refused before any lookup.
    forged = _swap_tenant(token, tenant_b.tenant.pk)
    response = client.post(reverse("weekly_email_unsubscribe", kwargs={"token": forged}))
    assert response.status_code == 400
    assert _row(tenant_b.tenant, person).enabled is True
    assert event_count(tenant_b.tenant) == b_events


@db
def test_the_page_acts_for_the_token_not_for_whoever_is_logged_in(client, tenant_a, tenant_b):
    # A member of tenant B, logged in, follows A's executive's link: A's executive is unsubscribed,
    # the visitor's own subscription in B is untouched.
    visitor = tenant_b.user(Role.EXECUTIVE)
    client.force_login(visitor)
    response = client.post(_url(tenant_a))
    assert response.status_code == 200
    assert _row(tenant_a.tenant, tenant_a.user(Role.EXECUTIVE)).enabled is False
    assert _row(tenant_b.tenant, visitor) is None
    assert not _events(tenant_b.tenant, "scorecard_subscription.unsubscribe")


def test_concurrent_unsubscribes_write_one_row_and_one_event(tenant_committed, django_db_blocker):
    """A mail client may repeat the one-click POST at once. With no subscription row yet, each request
    would insert one (and all but one fail on the unique key); the lock on the member's membership row
    makes the others wait and then find the first one's row."""
    with django_db_blocker.unblock():
        user = factories.UserFactory(username="race@committed.test", email="race@committed.test")
        factories.MembershipFactory(tenant=tenant_committed, user=user, role=Role.EXECUTIVE)
    requests = 4
    barrier = threading.Barrier(requests)
    errors: list[BaseException] = []

    def unsubscribe() -> None:
        try:
            with django_db_blocker.unblock():
                barrier.wait()
                services.scorecard_unsubscribe(tenant=tenant_committed, user=user, via="one-click")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=unsubscribe) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    with django_db_blocker.unblock(), context.tenant_context(tenant_committed):
        assert list(ScorecardSubscription.objects.filter(user=user).values_list("enabled", flat=True)) == [False]
        assert AuditEvent.objects.filter(action="scorecard_subscription.unsubscribe").count() == 1


@db
@override_settings(SITE_URL="https://cs.example.test")
def test_the_emails_one_click_header_stops_the_next_weeks_email(tenant_a):
    """End to end across the three parts: the List-Unsubscribe header of the executive's email, posted
    the way a mail client does (RFC 8058), takes them off the recipients of the weekly run."""
    from scorecards.content import weekly_scorecard
    from scorecards.email import render_scorecard, scorecard_message
    from scorecards.weeks import IsoWeek

    executive = tenant_a.user(Role.EXECUTIVE)
    assert executive.pk in {r.user.pk for r in recipients.scorecard_recipients(tenant=tenant_a.tenant)}
    card = weekly_scorecard(
        user=executive, membership=tenant_a.memberships[Role.EXECUTIVE], week=IsoWeek.parse("2026-W48")
    )
    url = unsubscribe_url(tenant_a.tenant, executive)
    message = scorecard_message(render_scorecard(card, unsubscribe_url=url), to=executive.email, unsubscribe_url=url)
    header = message.message()["List-Unsubscribe"]
    assert message.message()["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = header.strip("<>")
    assert link.startswith("https://cs.example.test/weekly-email/unsubscribe/")

    response = Client(enforce_csrf_checks=True).post(
        link.removeprefix("https://cs.example.test"),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert executive.pk not in {r.user.pk for r in recipients.scorecard_recipients(tenant=tenant_a.tenant)}
    assert _events(tenant_a.tenant, "scorecard_subscription.unsubscribe")[-1].after["via"] == "one-click"
