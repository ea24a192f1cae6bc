"""The Django admin for platform superusers: one tenant at a time under RLS, and every change in the
affected tenant's audit trail (issue #15, items 5 and 7)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from accounts.models import Contact
from cs_platform.admin_site import SESSION_TENANT
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from tests.helpers import force_login_verified

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-long-new-passphrase-2026"


@pytest.fixture
def operator(client):
    superuser = factories.UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    force_login_verified(client, superuser)  # platform superusers always pass MFA
    return superuser


def _work_in(client, world) -> None:
    response = client.post("/admin/tenant/", {"tenant": world.tenant.pk})
    assert response.status_code == 302
    assert client.session[SESSION_TENANT] == world.tenant.pk


def _form_data(response) -> dict:
    """The change form's current values, as the browser would post them back."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or value is False:
            continue
        if hasattr(field.widget, "decompress"):  # split date and time inputs
            data.update({f"{name}_{i}": str(part) for i, part in enumerate(field.widget.decompress(value))})
            continue
        data[name] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
    return data


def _admin_events(world, action: str) -> list[AuditEvent]:
    with context.tenant_context(world.tenant):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_a_tenant_owned_page_needs_a_tenant_chosen_first(client, operator, tenant_b):
    account = factories.AccountFactory(tenant=tenant_b.tenant)
    response = client.get(f"/admin/accounts/account/{account.pk}/change/")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert "Choose the tenant" in client.get("/admin/").content.decode()
    # Tenants and users are not tenant-owned: reachable with no tenant chosen.
    assert client.get("/admin/tenancy/tenant/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200


def test_the_chosen_tenant_is_the_only_one_the_admin_sees(client, operator, tenant_a, tenant_b):
    theirs = factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Harbor Bank")
    _work_in(client, tenant_a)
    # B's row does not exist from inside A: the admin answers as for a missing object.
    response = client.get(f"/admin/accounts/account/{theirs.pk}/change/")
    assert response.status_code == 302
    listing = client.get("/admin/accounts/account/").content.decode()
    assert "Bravo Harbor Bank" not in listing
    _work_in(client, tenant_b)
    response = client.get(f"/admin/accounts/account/{theirs.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Bravo Harbor Bank" in body and "Working in Bravo Customer Success" in body
    # The page is rendered inside the tenant: the segment choices (a queryset evaluated while rendering)
    # are B's four segments, not an empty list.
    assert body.count('<option value="') - body.count('<option value="" ') >= 4


def test_changing_a_row_is_audited_in_its_tenant_with_before_and_after(client, operator, tenant_b):
    contact = factories.ContactFactory(tenant=tenant_b.tenant, name="Dana Reyes", title="CFO")
    _work_in(client, tenant_b)
    url = f"/admin/accounts/contact/{contact.pk}/change/"
    data = _form_data(client.get(url)) | {"title": "Chief Risk Officer"}
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    [event] = _admin_events(tenant_b, "admin.change")
    assert event.object_type == "accounts.contact" and event.object_id == str(contact.pk)
    assert event.actor_id == operator.pk
    assert event.before == {"title": "CFO"} and event.after == {"title": "Chief Risk Officer"}


def test_deleting_rows_is_audited_one_event_each(client, operator, tenant_b):
    first = factories.ContactFactory(tenant=tenant_b.tenant, name="Avery Lin")
    second = factories.ContactFactory(tenant=tenant_b.tenant, name="Blake Ono")
    _work_in(client, tenant_b)
    response = client.post(f"/admin/accounts/contact/{first.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    response = client.post(
        "/admin/accounts/contact/", {"action": "delete_selected", "_selected_action": [second.pk], "post": "yes"}
    )
    assert response.status_code == 302
    events = _admin_events(tenant_b, "admin.delete")
    assert [(e.object_id, e.before["name"], e.after) for e in events] == [
        (str(first.pk), "Avery Lin", None),
        (str(second.pk), "Blake Ono", None),
    ]
    with context.tenant_context(tenant_b.tenant):
        assert not Contact.objects.exists()


def test_a_user_change_is_audited_in_each_of_their_tenants_without_personal_data_or_hashes(
    client, operator, tenant_a, tenant_b
):
    user = tenant_a.user(Role.CSM)
    factories.MembershipFactory(tenant=tenant_b.tenant, user=user, role=Role.VIEWER)
    url = f"/admin/auth/user/{user.pk}/change/"
    data = _form_data(client.get(url)) | {"email": "new-address@alpha.test", "is_staff": "on"}
    data.pop("password", None)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    for world in (tenant_a, tenant_b):
        [event] = _admin_events(world, "admin.change")
        assert event.object_type == "auth.user" and event.object_id == str(user.pk)
        # Only what changed (the form round trip may also trim date_joined's microseconds).
        assert event.before["is_staff"] is False and event.after["is_staff"] is True
        assert set(event.after) <= {"is_staff", "date_joined", "personal_fields_changed"}
        assert event.after["personal_fields_changed"] == ["email"]
        assert "new-address@alpha.test" not in str(event.before) + str(event.after)
    response = client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {
            "password1": "a-long-new-passphrase-2026",
            "password2": "a-long-new-passphrase-2026",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    for world in (tenant_a, tenant_b):
        [event] = _admin_events(world, "admin.set_password")
        assert event.after == {"password": "(changed, not copied)"}
    assert get_user_model().objects.get(pk=user.pk).check_password(NEW_PASSWORD)


def test_a_tenant_change_is_audited_in_that_tenant(client, operator, tenant_b):
    url = f"/admin/tenancy/tenant/{tenant_b.tenant.pk}/change/"
    data = _form_data(client.get(url)) | {"time_zone": "Europe/London"}
    assert client.post(url, data).status_code == 302
    [event] = _admin_events(tenant_b, "admin.change")
    assert event.after == {"time_zone": "Europe/London"} and event.before == {"time_zone": "UTC"}


def test_every_registered_admin_is_audited_and_asks_for_a_recent_password():
    """Every registered admin has the audited base mixed in, third-party ones included (axes, django-otp)."""
    from cs_platform.admin_site import AuditedModelAdmin
    from cs_platform.identity.reauth import ReauthForWritesAdminMixin

    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, AuditedModelAdmin), model
        assert isinstance(model_admin, ReauthForWritesAdminMixin), model


def test_inline_rows_are_audited_without_their_secrets(client, operator, tenant_a):
    """django-otp's recovery-code device edits its codes inline: each inline row is an event of the
    device owner's tenants, and the code itself never enters the trail."""
    user = tenant_a.user(Role.EXECUTIVE)
    # The codes are editable only when the device is added (OTP_ADMIN_HIDE_SENSITIVE_DATA hides them later).
    url = "/admin/otp_static/staticdevice/add/"
    assert client.get(url).status_code == 200
    data = {
        "user": str(user.pk),
        "name": "Recovery codes",
        "confirmed": "on",
        "token_set-TOTAL_FORMS": "1",
        "token_set-INITIAL_FORMS": "0",
        "token_set-MIN_NUM_FORMS": "0",
        "token_set-MAX_NUM_FORMS": "1000",
        "token_set-0-token": "printed-code-17",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    [event] = [e for e in _admin_events(tenant_a, "admin.add") if e.object_type == "otp_static.statictoken"]
    assert event.actor_id == operator.pk and "token" not in event.after
    assert "printed-code-17" not in str(event.after)


def test_an_admin_write_needs_a_recent_password(client, operator, tenant_b):
    from cs_platform.identity import sessions

    contact = factories.ContactFactory(tenant=tenant_b.tenant, title="CFO")
    _work_in(client, tenant_b)
    url = f"/admin/accounts/contact/{contact.pk}/change/"
    data = _form_data(client.get(url)) | {"title": "CEO"}
    session = client.session
    session[sessions.REAUTH_AT] = sessions.now() - 3600  # the login an hour ago
    session.save()
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"].startswith("/reauth/")
    assert _admin_events(tenant_b, "admin.change") == []
    with context.tenant_context(tenant_b.tenant):
        assert Contact.objects.get(pk=contact.pk).title == "CFO"


def test_the_admin_change_and_its_event_commit_together(client, operator, tenant_b, monkeypatch):
    """The view and its audit event share one transaction: when the event cannot be written (a fault
    injected into the recording step), the change is not saved either."""
    import cs_platform.admin_site

    contact = factories.ContactFactory(tenant=tenant_b.tenant, name="Casey Ward", title="COO")
    _work_in(client, tenant_b)
    url = f"/admin/accounts/contact/{contact.pk}/change/"
    data = _form_data(client.get(url)) | {"title": "Chief Operating Officer"}

    def refuse(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(cs_platform.admin_site, "audit_record", refuse)
    with pytest.raises(RuntimeError, match="audit store unavailable"):
        client.post(url, data)
    with context.tenant_context(tenant_b.tenant):
        assert Contact.objects.get(pk=contact.pk).title == "COO"


def test_reading_the_trail_in_the_admin_is_itself_recorded(client, operator, tenant_b):
    from cs_platform.audit.services import audit_record

    event = audit_record(tenant=tenant_b.tenant, actor=None, action="check", object_type="check", object_id=1)
    _work_in(client, tenant_b)
    assert client.get("/admin/audit/auditevent/", {"action__exact": "check"}).status_code == 200
    assert client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200
    reads = _admin_events(tenant_b, "audit.read")
    assert [(e.object_type, e.object_id, e.actor_id, e.after["via"]) for e in reads] == [
        ("audit.auditevent", "", operator.pk, "platform_admin"),
        ("audit.auditevent", str(event.pk), operator.pk, "platform_admin"),
    ]
    assert reads[0].after["filters"] == {"action__exact": "check"}
