"""Delivery of the weekly scorecard against a real SMTP server (aiosmtpd, started by the test): who
receives it, one email per user and week whatever is re-run, SMTP outages retried with backoff and then
failed (visible to admins), lost messages and dead workers swept, and each executive seeing only their
own tenant's data."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from cs_platform.audit.models import AuditEvent
from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from scorecards import delivery, services, tasks
from scorecards.models import ScorecardDelivery, ScorecardSubscription
from scorecards.recipients import scorecard_recipients
from tests import factories
from tests.helpers import page_text
from tests.scorecards import WEEK  # the week whose send day is the shared TODAY (send_day_is_today)
from tests.scorecards.smtp import SmtpServer, mail_to

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("send_day_is_today")]


def _rows(world, **filters) -> list[ScorecardDelivery]:
    with context.tenant_context(world.tenant):
        return list(ScorecardDelivery.objects.filter(**filters).order_by("pk"))


def _events(world, action: str) -> list[AuditEvent]:
    with context.tenant_context(world.tenant):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def _decision(world, account_name: str, title: str):
    """An open decision on a named account: the email lists it with its account, so the account's name
    shows whose data an email carries."""
    account = factories.AccountFactory(tenant=world.tenant, name=account_name)
    return factories.DecisionFactory(tenant=world.tenant, account=account, title=title, owner=world.user(Role.CSM))


def _send_all(world, week=WEEK, **kwargs) -> list[delivery.SendOutcome]:
    prepared = delivery.scorecard_deliveries_prepare(tenant=world.tenant, week=week)
    return [
        delivery.scorecard_delivery_send(tenant=world.tenant, delivery_id=pk, **kwargs) for pk in prepared.sendable_ids
    ]


# --- Recipients ----------------------------------------------------------------------------------------
def test_recipients_are_executives_by_default_and_subscribers_by_choice(tenant_a):
    world = tenant_a
    by_email = {r.email: r for r in scorecard_recipients(tenant=world.tenant)}
    assert set(by_email) == {"executive@alpha.test"}  # no rows: executives only
    assert by_email["executive@alpha.test"].segment_ids is None

    bank = factories.segment_of(world.tenant, "bank")
    insurer = factories.segment_of(world.tenant, "insurer")
    factories.AccountFactory(tenant=world.tenant, segment=bank)  # the admin's whole-tenant book has a bank
    admin, executive = world.user(Role.ADMIN), world.user(Role.EXECUTIVE)
    services.scorecard_subscription_update(
        tenant=world.tenant, user=admin, enabled=True, segment_ids=[insurer.pk, bank.pk], actor=admin
    )
    services.scorecard_subscription_update(
        tenant=world.tenant, user=executive, enabled=False, segment_ids=[], actor=executive
    )
    by_email = {r.email: r for r in scorecard_recipients(tenant=world.tenant)}
    assert set(by_email) == {"admin@alpha.test"}  # the executive opted out, the admin in
    assert sorted(by_email["admin@alpha.test"].segment_ids) == sorted([insurer.pk, bank.pk])


def test_recipients_skip_inactive_members_missing_addresses_and_empty_segment_choices(tenant_a):
    world = tenant_a
    second = factories.UserFactory(username="exec2@alpha.test", email="exec2@alpha.test")
    factories.MembershipFactory(tenant=world.tenant, user=second, role=Role.EXECUTIVE, is_active=False)
    no_mail = factories.UserFactory(username="exec3@alpha.test", email="")
    factories.MembershipFactory(tenant=world.tenant, user=no_mail, role=Role.EXECUTIVE)
    gone = factories.UserFactory(username="exec4@alpha.test", email="exec4@alpha.test", is_active=False)
    factories.MembershipFactory(tenant=world.tenant, user=gone, role=Role.EXECUTIVE)
    # A choice of segments that no longer exist: nothing to show, so nothing is sent.
    ghost = factories.UserFactory(username="exec5@alpha.test", email="exec5@alpha.test")
    factories.MembershipFactory(tenant=world.tenant, user=ghost, role=Role.EXECUTIVE)
    with context.tenant_context(world.tenant):
        ScorecardSubscription.objects.create(tenant=world.tenant, user=ghost, enabled=True, segment_ids=[987654])
    # A CSM who subscribed but has no account in their book: no visible segment either.
    csm = world.user(Role.CSM)
    services.scorecard_subscription_update(tenant=world.tenant, user=csm, enabled=True, segment_ids=[], actor=csm)
    assert [r.email for r in scorecard_recipients(tenant=world.tenant)] == ["executive@alpha.test"]


# --- The email arrives, once -------------------------------------------------------------------------------
def test_each_recipient_gets_one_multipart_email_recorded_and_audited(tenant_a, smtp):
    world = tenant_a
    _decision(world, "Harbor Point Bank", "Pick the ISO 20022 cut-over date")
    second = factories.UserFactory(username="cfo@alpha.test", email="cfo@alpha.test")
    factories.MembershipFactory(tenant=world.tenant, user=second, role=Role.EXECUTIVE)

    outcomes = _send_all(world)

    assert [o.status for o in outcomes] == [DeliveryStatus.SENT, DeliveryStatus.SENT]
    assert sorted(a for m in smtp.messages for a in m.rcpt_tos) == ["cfo@alpha.test", "executive@alpha.test"]
    rows = {r.email: r for r in _rows(world, week=str(WEEK))}
    for received in smtp.messages:
        message = received.message
        assert message.get_content_type() == "multipart/alternative"
        plain, related = message.get_payload()
        assert plain.get_content_type() == "text/plain"
        assert related.get_content_type() == "multipart/related"
        html, *images = related.get_payload()
        assert html.get_content_type() == "text/html"
        assert images and all(i.get_content_type() == "image/png" for i in images)
        body = html.get_content()
        for image in images:  # every image is referenced from the HTML by its Content-ID
            assert f"cid:{image['Content-ID'].strip('<>')}" in body
        assert "Harbor Point Bank" in plain.get_content() and "Harbor Point Bank" in body
        row = rows[received.rcpt_tos[0]]
        assert row.status == DeliveryStatus.SENT and row.attempts == 1 and row.sent_at is not None
        assert message["Message-ID"] == row.message_id and row.last_error == ""
        assert message["List-Unsubscribe"]  # the member's own no-login link (scorecards.tokens)
    sent = _events(world, "scorecard_delivery.send")
    assert sorted(e.after["email"] for e in sent) == ["cfo@alpha.test", "executive@alpha.test"]
    assert len(_events(world, "scorecard_delivery.prepare")) == 1


def test_running_the_week_again_sends_nothing_new(tenant_a, smtp):
    world = tenant_a
    _send_all(world)
    assert len(smtp.messages) == 1
    again = delivery.scorecard_deliveries_prepare(tenant=world.tenant, week=WEEK)
    assert again.created == 0 and again.sendable_ids == []
    # Even a stale task message for the sent row (acks_late redelivery) claims nothing.
    row = _rows(world)[0]
    outcome = delivery.scorecard_delivery_send(tenant=world.tenant, delivery_id=row.pk, due_only=False)
    assert outcome.status == "not-claimed"
    assert len(smtp.messages) == 1 and len(_rows(world)) == 1
    assert len(_events(world, "scorecard_delivery.prepare")) == 1


def test_a_second_worker_cannot_claim_a_delivery_being_sent(tenant_a, smtp):
    world = tenant_a
    prepared = delivery.scorecard_deliveries_prepare(tenant=world.tenant, week=WEEK)
    (delivery_id,) = prepared.sendable_ids
    seen = []
    from scorecards.email import ScorecardEmail

    real_send = ScorecardEmail.send

    def send_while_another_worker_tries(self, *args, **kwargs):
        # Mid-send, a duplicate message of the same task runs in "another worker".
        seen.append(delivery.scorecard_delivery_send(tenant=world.tenant, delivery_id=delivery_id, due_only=False))
        return real_send(self, *args, **kwargs)

    with mock.patch.object(ScorecardEmail, "send", send_while_another_worker_tries):
        outcome = delivery.scorecard_delivery_send(tenant=world.tenant, delivery_id=delivery_id)
    assert outcome.status == DeliveryStatus.SENT
    assert [s.status for s in seen] == ["not-claimed"]
    assert len(smtp.messages) == 1


def test_an_unsubscribe_after_preparing_is_honoured(tenant_a, smtp):
    world = tenant_a
    prepared = delivery.scorecard_deliveries_prepare(tenant=world.tenant, week=WEEK)
    services.scorecard_unsubscribe(tenant=world.tenant, user=world.user(Role.EXECUTIVE))
    outcome = delivery.scorecard_delivery_send(tenant=world.tenant, delivery_id=prepared.sendable_ids[0])
    assert outcome.status == DeliveryStatus.SKIPPED
    assert smtp.messages == []
    assert _rows(world)[0].status == DeliveryStatus.SKIPPED


# --- SMTP down, then up ------------------------------------------------------------------------------------
def test_backoff_doubles_up_to_the_cap_and_the_defaults_cover_hours_of_outage(settings):
    settings.SCORECARD_RETRY_BASE_SECONDS, settings.SCORECARD_RETRY_MAX_SECONDS = 60.0, 3600.0
    waits = [delivery.OUTBOX.retry_delay(attempt) for attempt in range(1, 10)]
    # The outbox's schedule (as a webhook's): doubling up to the cap, plus up to 10% jitter.
    expected = [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert all(low <= wait <= low * 1.1 for wait, low in zip(waits, expected, strict=True)), waits
    # With the shipped default of 10 attempts a relay down for 4 hours still gets the email out.
    from cs_platform import settings as project  # the module's values, not the test's overrides

    total = sum(delivery.OUTBOX.retry_delay(n) for n in range(1, project.SCORECARD_MAX_ATTEMPTS))
    assert project.SCORECARD_MAX_ATTEMPTS == 10 and total > 4 * 3600


def test_smtp_down_then_up_retries_with_backoff_and_delivers_exactly_once(tenant_a, settings):
    world = tenant_a
    settings.SCORECARD_RETRY_BASE_SECONDS = 60.0
    server = SmtpServer()  # its port refuses connections until start()
    mail_to(settings, server)
    from scorecards.tasks import scorecard_send

    prepared = delivery.scorecard_deliveries_prepare(tenant=world.tenant, week=WEEK)
    (delivery_id,) = prepared.sendable_ids
    started = timezone.now()
    with mock.patch.object(scorecard_send, "apply_async") as requeue:
        assert scorecard_send.run(world.tenant.pk, delivery_id) == DeliveryStatus.RETRYING
    ended = timezone.now()
    row = _rows(world)[0]
    # The next message is due exactly when the row is: eta is the very value written to next_attempt_at.
    requeue.assert_called_once_with((world.tenant.pk, delivery_id), eta=row.next_attempt_at)
    assert row.status == DeliveryStatus.RETRYING and row.attempts == 1
    assert "Connection refused" in row.last_error or "ConnectionRefused" in row.last_error
    due = row.next_attempt_at
    # 60 s after the failure, which happened during the call (however slow the machine is).
    assert started + datetime.timedelta(seconds=60) <= due <= ended + datetime.timedelta(seconds=66)  # +10% jitter

    server.start()
    try:
        # A message arriving before the backoff has passed sends nothing but says when the row is due (the
        # task then comes back at that time); the one at the due time sends.
        early = delivery.scorecard_delivery_send(tenant=world.tenant, delivery_id=delivery_id)
        assert early.status == "not-due" and early.next_attempt_at == due and server.messages == []
        with mock.patch.object(scorecard_send, "apply_async") as requeue:
            assert scorecard_send.run(world.tenant.pk, delivery_id) == "not-due"
            assert scorecard_send.run(world.tenant.pk, delivery_id, tasks.MAX_EARLY_REQUEUES) == "not-due"
        # Put back for the due time, counting the hops; past the bound it ends (the sweep remains).
        requeue.assert_called_once_with((world.tenant.pk, delivery_id, 1), eta=due)
        later = due + datetime.timedelta(seconds=1)
        assert (
            delivery.scorecard_delivery_send(tenant=world.tenant, delivery_id=delivery_id, now=later).status == "sent"
        )
        again = delivery.scorecard_delivery_send(tenant=world.tenant, delivery_id=delivery_id, now=later)
        assert again.status == "not-claimed"
    finally:
        server.stop()
    assert [m.rcpt_tos for m in server.messages] == [["executive@alpha.test"]]
    row = _rows(world)[0]
    assert row.status == DeliveryStatus.SENT and row.attempts == 2 and row.last_error == ""


def test_after_the_last_attempt_the_delivery_fails_visibly_and_an_admin_can_retry_it(
    tenant_a, settings, client, django_capture_on_commit_callbacks
):
    world = tenant_a
    settings.SCORECARD_MAX_ATTEMPTS = 2
    settings.SCORECARD_RETRY_BASE_SECONDS = 1.0
    server = SmtpServer()
    mail_to(settings, server)
    prepared = delivery.scorecard_deliveries_prepare(tenant=world.tenant, week=WEEK)
    (delivery_id,) = prepared.sendable_ids
    first = delivery.scorecard_delivery_send(tenant=world.tenant, delivery_id=delivery_id)
    assert first.status == DeliveryStatus.RETRYING and 1.0 <= first.retry_in <= 1.1  # +10% jitter at most
    second = delivery.scorecard_delivery_send(
        tenant=world.tenant, delivery_id=delivery_id, now=timezone.now() + datetime.timedelta(seconds=5)
    )
    assert second.status == DeliveryStatus.FAILED and second.retry_in is None
    row = _rows(world)[0]
    assert row.status == DeliveryStatus.FAILED and row.attempts == 2 and row.last_error
    (failed,) = _events(world, "scorecard_delivery.fail")
    assert failed.after["error"] == row.last_error

    # The admin page shows it with its error; other roles are refused.
    url = f"{reverse('weekly_email_deliveries')}?week={WEEK}"
    for role in sorted(set(Role.values) - Capability.MANAGE_WEEKLY_EMAIL.roles):
        client.force_login(world.user(role))
        assert client.get(url).status_code == 403, role
        assert client.post(url, {"delivery": delivery_id}).status_code == 403, role
    client.force_login(world.user(Role.ADMIN))
    response = client.get(url)
    assert response.status_code == 200
    text = page_text(response)
    assert row.last_error in text and "executive@alpha.test" in text and "Retry now" in text

    server.start()
    try:
        from scorecards.tasks import scorecard_send

        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"delivery": delivery_id, "week": str(WEEK)})
        assert response.status_code == 302
        # Queued on commit (the task ran eagerly here through its .run, as a worker would).
        with mock.patch.object(scorecard_send, "apply_async", side_effect=lambda args, **kw: scorecard_send.run(*args)):
            with django_capture_on_commit_callbacks(execute=True):
                tasks.scorecard_sends_queue(tenant_id=world.tenant.pk, delivery_ids=[delivery_id])
    finally:
        server.stop()
    (retried,) = _events(world, "scorecard_delivery.retry")
    assert retried.actor_id == world.user(Role.ADMIN).pk and retried.before["status"] == "failed"
    row = _rows(world)[0]
    assert row.status == DeliveryStatus.SENT and len(server.messages) == 1


def test_retry_all_failed_requeues_the_weeks_failed_emails_but_not_those_stopped_mid_send(
    tenant_a, client, settings, django_capture_on_commit_callbacks
):
    world = tenant_a
    settings.SCORECARD_MAX_ATTEMPTS = 1  # the outage outlasts every attempt at once
    for name in ("cfo", "coo", "cro"):
        user = factories.UserFactory(username=f"{name}@alpha.test", email=f"{name}@alpha.test")
        factories.MembershipFactory(tenant=world.tenant, user=user, role=Role.EXECUTIVE)
    server = SmtpServer()
    mail_to(settings, server)
    outcomes = _send_all(world)
    assert [o.status for o in outcomes] == [DeliveryStatus.FAILED] * 4
    stopped = _rows(world, email="cro@alpha.test")[0]
    with context.tenant_context(world.tenant):
        ScorecardDelivery.objects.filter(pk=stopped.pk).update(last_error=delivery.STUCK_ERROR)

    url = f"{reverse('weekly_email_deliveries')}?week={WEEK}"
    client.force_login(world.user(Role.EXECUTIVE))
    assert client.post(url, {"action": "retry_failed", "week": str(WEEK)}).status_code == 403
    client.force_login(world.user(Role.ADMIN))
    assert "Retry all failed emails of" in page_text(client.get(url))

    from scorecards.tasks import scorecard_send

    server.start()
    try:
        with mock.patch.object(scorecard_send, "apply_async", side_effect=lambda args, **kw: scorecard_send.run(*args)):
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(url, {"action": "retry_failed", "week": str(WEEK)}, follow=True)
    finally:
        server.stop()
    assert "3 failed emails of" in page_text(response)
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [
        "cfo@alpha.test",
        "coo@alpha.test",
        "executive@alpha.test",
    ]
    statuses = {r.email: r.status for r in _rows(world)}
    assert statuses.pop("cro@alpha.test") == DeliveryStatus.FAILED  # it may have arrived: left for a person
    assert set(statuses.values()) == {DeliveryStatus.SENT}
    retried = _events(world, "scorecard_delivery.retry")
    assert len(retried) == 3 and all(e.after["bulk"] and e.actor_id == world.user(Role.ADMIN).pk for e in retried)
    assert {e.before["status"] for e in retried} == {"failed"}

    # Nothing failed any more (but the stopped one): a second press queues nothing and says so.
    response = client.post(url, {"action": "retry_failed", "week": str(WEEK)}, follow=True)
    assert "No failed email of" in page_text(response)
    assert len(_events(world, "scorecard_delivery.retry")) == 3


def test_a_worker_dying_mid_send_is_failed_not_resent_and_lost_messages_are_requeued(tenant_a, smtp):
    world = tenant_a
    other = factories.UserFactory(username="cfo@alpha.test", email="cfo@alpha.test")
    factories.MembershipFactory(tenant=world.tenant, user=other, role=Role.EXECUTIVE)
    prepared = delivery.scorecard_deliveries_prepare(tenant=world.tenant, week=WEEK)
    stuck_id, lost_id = prepared.sendable_ids
    now = timezone.now()
    with context.tenant_context(world.tenant):
        # The first was claimed by a worker that died (its lease ran out); the second's retry message
        # was lost (the broker restarted) and is overdue.
        ScorecardDelivery.objects.filter(pk=stuck_id).update(
            status=DeliveryStatus.SENDING, attempts=1, next_attempt_at=now - datetime.timedelta(minutes=1)
        )
        ScorecardDelivery.objects.filter(pk=lost_id).update(
            status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=now - datetime.timedelta(hours=1)
        )
    from scorecards.tasks import scorecard_send

    with mock.patch.object(scorecard_send, "apply_async") as queue:
        summary = delivery.scorecard_deliveries_sweep(now=now, enqueue=tasks.scorecard_enqueue)
    assert summary == {"requeued": 1, "stuck_failed": 1}
    queue.assert_called_once_with((world.tenant.pk, lost_id))
    stuck = _rows(world, pk=stuck_id)[0]
    assert stuck.status == DeliveryStatus.FAILED and "may or may not have been delivered" in stuck.last_error
    assert scorecard_send.run(world.tenant.pk, stuck_id) == "not-claimed"  # never re-sent by itself
    assert scorecard_send.run(world.tenant.pk, lost_id) == DeliveryStatus.SENT
    assert [m.rcpt_tos for m in smtp.messages] == [["cfo@alpha.test"]]


# --- Role scoping ---------------------------------------------------------------------------------------------
def test_an_executive_never_receives_another_tenants_data(tenant_a, tenant_b, smtp):
    _decision(tenant_a, "Alpha Harbor Savings", "Approve the FIX session schedule")
    _decision(tenant_b, "Bravo Confidential Trust", "Sign the Bravo data-sharing addendum")
    _send_all(tenant_a)
    _send_all(tenant_b)
    (to_a,) = smtp.collector.to("executive@alpha.test")
    (to_b,) = smtp.collector.to("executive@bravo.test")
    text_a = to_a.raw.decode("utf-8", "replace") + to_a.message.get_body(("plain",)).get_content()
    html_a = to_a.message.get_body(("html",)).get_content()
    for body in (to_a.message.get_body(("plain",)).get_content(), html_a):
        assert "Alpha Harbor Savings" in body
        assert "Bravo" not in body  # neither B's account, nor its decision, nor its tenant name
    assert "Bravo Confidential Trust" not in text_a
    assert "Bravo Confidential Trust" in to_b.message.get_body(("plain",)).get_content()
    assert "Alpha Harbor Savings" not in to_b.message.get_body(("html",)).get_content()


def test_a_restricted_subscriber_gets_only_their_book(tenant_a, smtp):
    """A CSM who subscribes sees the accounts their role shows them, not the whole tenant's."""
    from tests.helpers import other_csm_account, owned_account

    world = tenant_a
    mine = owned_account(world, name="Csm Own Credit Union")
    theirs = other_csm_account(world, name="Someone Else's Bank")
    for account, title in ((mine, "Mine to decide"), (theirs, "Not mine to see")):
        factories.DecisionFactory(tenant=world.tenant, account=account, title=title, owner=world.user(Role.CSM))
    csm = world.user(Role.CSM)
    services.scorecard_subscription_update(tenant=world.tenant, user=csm, enabled=True, segment_ids=[], actor=csm)
    _send_all(world)
    (to_csm,) = smtp.collector.to("csm@alpha.test")
    plain = to_csm.message.get_body(("plain",)).get_content()
    assert "Csm Own Credit Union" in plain and "Someone Else's Bank" not in plain
    (to_exec,) = smtp.collector.to("executive@alpha.test")
    assert "Someone Else's Bank" in to_exec.message.get_body(("plain",)).get_content()


# --- Shared views (batches) ------------------------------------------------------------------------------------
def _executives(world, names: list[tuple[str, str]]):
    users = []
    for n, (first, last) in enumerate(names):
        user = factories.UserFactory(
            username=f"x{n}@alpha.test", email=f"x{n}@alpha.test", first_name=first, last_name=last
        )
        factories.MembershipFactory(tenant=world.tenant, user=user, role=Role.EXECUTIVE)
        users.append(user)
    return users


def test_shared_views_render_exactly_what_each_recipient_would_get_alone(tenant_a, tenant_b):
    _decision(tenant_a, "Harbor Point Bank", "Pick the cut-over date")
    _decision(tenant_b, "Bravo Confidential Trust", "Sign the addendum")
    _executives(tenant_a, [("Siobhán", "O'Brien & <Sons>"), ("", ""), ("Ana", "Lima")])
    views = delivery.ScorecardViews()
    recipients = scorecard_recipients(tenant=tenant_a.tenant) + scorecard_recipients(tenant=tenant_b.tenant)
    admin = tenant_a.user(Role.ADMIN)
    services.scorecard_subscription_update(
        tenant=tenant_a.tenant, user=admin, enabled=True, segment_ids=[], actor=admin
    )
    recipients += [r for r in scorecard_recipients(tenant=tenant_a.tenant) if r.membership.role == "admin"]
    for recipient in recipients:
        tenant = recipient.membership.tenant
        shared, _ = delivery.scorecard_build(tenant=tenant, recipient=recipient, week=WEEK, views=views)
        alone, _ = delivery.scorecard_build(tenant=tenant, recipient=recipient, week=WEEK)
        assert shared == alone, recipient.email
    # One figure set per (tenant, role): alpha's executives, bravo's executive, alpha's admin.
    assert views.misses == 3 and views.hits == len(recipients) - 3
    # The name is filled in as each template escapes it: HTML-escaped in the HTML, as is in the text.
    (obrien,) = [r for r in recipients if "O'Brien" in r.user.last_name]
    rendered, _ = delivery.scorecard_build(tenant=tenant_a.tenant, recipient=obrien, week=WEEK, views=views)
    assert "O&#x27;Brien &amp; &lt;Sons&gt;" in rendered.html and "O'Brien & <Sons>" in rendered.text


def test_a_rendering_that_depends_on_the_user_otherwise_is_not_shared(tenant_a, monkeypatch):
    from scorecards import email

    real = email.render_scorecard

    def with_address(scorecard, *, unsubscribe_url):
        rendered = real(scorecard, unsubscribe_url=unsubscribe_url)
        return rendered.__class__(
            rendered.subject, rendered.text + f"\nfor {scorecard.user.pk}", rendered.html, rendered.images
        )

    monkeypatch.setattr(email, "render_scorecard", with_address)
    _executives(tenant_a, [("Ana", "Lima"), ("Rui", "Costa")])
    views = delivery.ScorecardViews()
    for recipient in scorecard_recipients(tenant=tenant_a.tenant):
        shared, _ = delivery.scorecard_build(tenant=tenant_a.tenant, recipient=recipient, week=WEEK, views=views)
        assert shared.text.endswith(f"for {recipient.user.pk}")


def test_the_deliveries_page_query_count_does_not_grow_with_rows(tenant_a, client):
    """Session, user and membership (middleware), then the page's three: the counts per status, the rows
    needing attention with their users (select_related), the recent weeks."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    world = tenant_a
    url = f"{reverse('weekly_email_deliveries')}?week={WEEK}"
    client.force_login(world.user(Role.ADMIN))

    def add_failed(n: int, start: int) -> None:
        users = [
            factories.UserFactory(username=f"f{start + i}@alpha.test", email=f"f{start + i}@alpha.test")
            for i in range(n)
        ]
        with context.tenant_context(world.tenant):
            ScorecardDelivery.objects.bulk_create(
                ScorecardDelivery(
                    tenant=world.tenant,
                    user=u,
                    week=str(WEEK),
                    week_start=WEEK.monday,
                    email=u.email,
                    status=DeliveryStatus.FAILED,
                    attempts=6,
                    last_error=f"SMTPDataError: 451 ({u.pk})",
                )
                for u in users
            )

    client.get(url)  # warm the session
    add_failed(2, 0)
    with CaptureQueriesContext(connection) as two:
        assert client.get(url).status_code == 200
    add_failed(18, 2)
    with CaptureQueriesContext(connection) as twenty:
        response = client.get(url)
    assert page_text(response).count("SMTPDataError: 451") == 20
    assert len(two) == len(twenty), [q["sql"] for q in twenty.captured_queries]


@pytest.mark.parametrize("role", [Role.EXECUTIVE, Role.MANAGER])
def test_the_received_text_carries_the_dashboards_figures_for_the_week(tenant_a, smtp, role):
    """The email that arrived over SMTP, read as a person would, against the dashboard's own selectors
    for the same user and day (written out here, not taken from the scorecard being tested). The
    executive's figures come from the nightly segment snapshots, the manager's (a team) from the live
    aggregate: both paths are compared."""
    from tests.scorecards import build_book, dashboard_figures

    # No owner: not the manager's team's. Before build_book, whose nightly segment snapshots count it.
    factories.AccountFactory(tenant=tenant_a.tenant, name="Outside The Team Bank")
    build_book(tenant_a, 9, prefix="Harbor")
    user = tenant_a.user(role)
    if role == Role.MANAGER:
        services.scorecard_subscription_update(
            tenant=tenant_a.tenant, user=user, enabled=True, segment_ids=[], actor=user
        )
    outcomes = {o.status for o in _send_all(tenant_a)}
    assert outcomes == {DeliveryStatus.SENT}
    (received,) = smtp.collector.to(user.email)
    text = received.message.get_body(("plain",)).get_content()
    expected = dashboard_figures(tenant_a, role)
    movers, renewals = expected.movers, expected.renewals
    failed_total, expiring_total = expected.failed_total, expected.expiring_total
    bank = next(s for s in expected.summaries if s.code == "bank")
    bank_before = next(s for s in expected.earlier if s.code == "bank")
    assert bank.accounts == (10 if role == Role.EXECUTIVE else 9)  # the unowned bank is outside the team
    section = text.split(f"== {bank.name} ==")[1].split("\n== ")[0]
    assert f"Accounts {bank.accounts} " in section
    for band, label in (("red", "Red"), ("yellow", "Yellow"), ("green", "Green")):
        now, was = bank.bands[band], bank_before.bands[band]
        change = f"+{now - was}" if now > was else str(now - was)
        assert f"  {label}: {now} / {was} / {change}" in section, (label, section)
    assert f"NPS (90 d) {bank.nps:,.0f} n={bank.nps_responses}" in section
    assert f"CSAT (90 d) {bank.csat:.2f} n={bank.csat_responses}" in section
    assert (
        f"Compliance audit pass rate (365 d) {bank.audit_pass_rate:.1f}% {bank.audits_passed}/{bank.audits}" in section
    )
    assert f"Retention {bank.retention:.1f}%" in section and f"Churn {bank.churn:.1f}% ({bank.churned})" in section
    reported = [k for k in bank.kpis if k.actual is not None]
    assert reported, "the book reports a KPI value"
    for kpi in reported:
        actual = f"{kpi.actual:,.2f}".rstrip("0").rstrip(".")
        assert f"  - {kpi.name}: actual {actual}" in section, (kpi.name, actual, section)
    assert f"== Top movers: {movers['total']} accounts changed band" in text
    risk_arr = sum(a.arr for a in renewals)
    assert (
        f"== Renewals at risk: {len(renewals)} red or yellow accounts renew in the next 90 days, ARR {risk_arr:,.0f}"
        in text
    )
    assert f"== Compliance exceptions: {failed_total} failed audits" in text
    assert f"{expiring_total} with evidence expiring within 30 days ==" in text


def test_a_failure_before_the_handover_to_smtp_is_retried_not_left_sending(tenant_a, smtp, monkeypatch):
    from django.db import OperationalError

    def broken(user_id):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(delivery, "recipient_now", broken)
    (outcome,) = _send_all(tenant_a)
    assert outcome.status == DeliveryStatus.RETRYING and outcome.retry_in is not None
    (row,) = _rows(tenant_a, week=str(WEEK))
    assert row.status == DeliveryStatus.RETRYING and "server closed the connection" in row.last_error
    assert smtp.messages == []


def test_a_retry_goes_to_the_members_current_address(tenant_a, smtp):
    executive = tenant_a.user(Role.EXECUTIVE)
    prepared = delivery.scorecard_deliveries_prepare(tenant=tenant_a.tenant, week=WEEK)
    executive.email = "new.address@alpha.test"
    executive.save(update_fields=["email"])
    (delivery_id,) = prepared.sendable_ids
    assert delivery.scorecard_delivery_send(tenant=tenant_a.tenant, delivery_id=delivery_id).status == "sent"
    assert [m.rcpt_tos for m in smtp.messages] == [["new.address@alpha.test"]]
    (row,) = _rows(tenant_a, week=str(WEEK))
    assert row.email == "new.address@alpha.test"  # the record says where it actually went
