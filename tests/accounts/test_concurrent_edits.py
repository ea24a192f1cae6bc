"""Two edits of the same account or contact at once, on two real connections (tests/concurrency.py
forces the overlap), each request holding its own copy read before either wrote: the second edit's
audit event names the first's value as "before", and the first edit's other fields are not written
back from the second's stale copy."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.models import Account, Contact
from accounts.services import account_create, account_update, contact_create, contact_delete, contact_update
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from tests import factories
from tests.concurrency import race

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks of PostgreSQL")


def _copies(model, pk: int, tenant, n: int = 2) -> list:
    with context.tenant_context(tenant):
        return [model.objects.get(pk=pk) for _ in range(n)]


def test_two_edits_of_an_account_at_once(tenant_committed, django_db_blocker):
    with django_db_blocker.unblock():
        account = account_create(
            tenant=tenant_committed,
            name="Old Name Bank",
            segment=factories.segment_of(tenant_committed),
            executive_sponsor="Old Sponsor",
        )
        first, second = _copies(Account, account.pk, tenant_committed)
    race(
        tenant_committed,
        lambda: account_update(tenant=tenant_committed, account=first, name="New Name Bank"),
        lambda: account_update(tenant=tenant_committed, account=second, executive_sponsor="New Sponsor"),
        blocker=django_db_blocker,
    )
    with django_db_blocker.unblock(), context.tenant_context(tenant_committed):
        stored = Account.objects.get(pk=account.pk)
        assert (stored.name, stored.executive_sponsor) == ("New Name Bank", "New Sponsor")  # both edits kept
        first_event, second_event = AuditEvent.objects.filter(action="account.update").order_by("seq")
        assert (first_event.before["name"], first_event.after["name"]) == ("Old Name Bank", "New Name Bank")
        assert (second_event.before["name"], second_event.after["name"]) == ("New Name Bank", "New Name Bank")
        assert (second_event.before["executive_sponsor"], second_event.after["executive_sponsor"]) == (
            "Old Sponsor",
            "New Sponsor",
        )


def test_an_edit_and_a_delete_of_a_contact_at_once(tenant_committed, django_db_blocker):
    """The delete's event keeps the contact's last values (the edit's), and a second delete racing the
    first records nothing more."""
    with django_db_blocker.unblock():
        account = account_create(
            tenant=tenant_committed, name="Contact Bank", segment=factories.segment_of(tenant_committed)
        )
        contact = contact_create(tenant=tenant_committed, account=account, name="Ana Ruiz", title="CFO")
        editing, deleting, deleting_again = _copies(Contact, contact.pk, tenant_committed, 3)
    race(
        tenant_committed,
        lambda: contact_update(tenant=tenant_committed, contact=editing, title="CEO"),
        lambda: contact_delete(tenant=tenant_committed, contact=deleting),
        blocker=django_db_blocker,
    )
    with django_db_blocker.unblock():
        contact_delete(tenant=tenant_committed, contact=deleting_again)
        with context.tenant_context(tenant_committed):
            assert not Contact.objects.filter(pk=contact.pk).exists()
            (deleted,) = AuditEvent.objects.filter(action="contact.delete")
            assert deleted.before["title"] == "CEO"
