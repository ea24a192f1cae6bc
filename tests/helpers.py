"""Small helpers the page and form tests share."""

from __future__ import annotations

import html

from django.urls import reverse

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context


def last_event(tenant) -> AuditEvent:
    with context.tenant_context(tenant):
        return AuditEvent.objects.order_by("-seq").first()


def event_count(tenant) -> int:
    with context.tenant_context(tenant):
        return AuditEvent.objects.count()


def owned_account(world, name: str = "Harbor Point Bank", **fields):
    """An account owned by the world's CSM, through the service (so the CSM holds the permission)."""
    from accounts.services import account_create
    from cs_platform.tenancy.models import Role
    from tests import factories

    return account_create(
        tenant=world.tenant,
        actor=world.user(Role.ADMIN),
        name=name,
        segment=factories.segment_of(world.tenant),
        owner_csm=world.user(Role.CSM),
        **fields,
    )


def log_in_as(client, world, role) -> None:
    client.force_login(world.user(role))
    client.get(reverse("account_list"))  # stores the active tenant in the session


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def form_key(client, url: str) -> str:
    """The single-use key (cs_platform.single_use) of the form on the page at `url`, which a browser
    sends back with the form."""
    body = client.get(url).content.decode()
    return body.split('name="form_key" value="', 1)[1].split('"', 1)[0]


def stored_anywhere(secret: str, *responses) -> list[str]:
    """Where a one-time secret rests after the responses that showed it: every row of django_session,
    decoded (and raw), and every cookie those responses set (the messages framework may use one).
    Empty when nowhere."""
    import json

    from django.contrib.sessions.models import Session

    found = []
    for row in Session.objects.all():
        if secret in row.session_data or secret in json.dumps(row.get_decoded(), default=str):
            found.append(f"django_session {row.session_key}")
    for response in responses:
        found += [f"cookie {name}" for name, morsel in response.cookies.items() if secret in morsel.value]
    return found


def field_error(body: str, field: str) -> str:
    """The error shown next to `field` (empty when none)."""
    marker = f'id="id_{field}_error">'
    return body.split(marker, 1)[1].split("</span>", 1)[0] if marker in body else ""


def other_csm_account(world, name: str = "Keystone Savings"):
    """An account in a second CSM's book (the world's CSM cannot see it; the manager's team can't either).
    Its CSM is `account.owner_csm`."""
    from accounts.services import account_create
    from cs_platform.tenancy.models import Role
    from tests import factories

    other = factories.UserFactory(username=f"other-csm@{world.tenant.slug}.test")
    factories.MembershipFactory(tenant=world.tenant, user=other, role=Role.CSM)
    return account_create(
        tenant=world.tenant,
        actor=world.user(Role.ADMIN),
        name=name,
        segment=factories.segment_of(world.tenant),
        owner_csm=other,
    )


def owned_accounts_bulk(world, owner, accounts: list) -> list:
    """Insert unsaved `accounts` (owner_csm=owner) with bulk_create and grant `owner` the guardian view
    permission on each, as account_assign_csm would one by one: for the large books of query-count
    tests."""
    from django.contrib.auth.models import Permission

    from accounts.models import Account, AccountUserObjectPermission

    with context.tenant_context(world.tenant):
        created = Account.objects.bulk_create(accounts)
        view = Permission.objects.get(codename="view_account")
        AccountUserObjectPermission.objects.bulk_create(
            AccountUserObjectPermission(tenant=world.tenant, user=owner, permission=view, content_object=a)
            for a in created
        )
    return created


def force_login_verified(client, user):
    """client.force_login, plus the MFA step passed, as the code step leaves a session: the user gets a
    confirmed authenticator app (unless they have one) and the session is verified by it. Platform
    superusers need this for every page (MFA is mandatory for them), and so do members whose tenant
    requires MFA for their role. Returns the device (its `bin_key` makes codes, see tests/identity)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from cs_platform.identity import sessions

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[sessions.HAS_MFA] = True
    session.save()
    return device
