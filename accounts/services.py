"""Writes for client accounts, contacts, touchpoints and CSM assignment. Each records audit events."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import Account, Contact, DataStandard, Touchpoint
from accounts.selectors import account_history, reassign_candidates
from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership, Role
from cs_platform.tenancy.policy import Capability

ACCOUNT_FIELDS = {
    "name",
    "segment",
    "tier",
    "arr",
    "currency",
    "contract_start",
    "renewal_date",
    "lifecycle_stage",
    "owner_csm",
    "executive_sponsor",
    "jurisdictions",
    "regulators",
    "data_standards",
}
CSM_PERMISSIONS = ("view_account", "change_account", "manage_account")


def _validate_account(account: Account) -> None:
    # Field-level checks first: they also coerce strings ("1200000.00", "2026-01-31") to real types.
    account.full_clean(exclude=["tenant"], validate_unique=False)
    errors: dict[str, str] = {}
    unknown = [s for s in account.data_standards or [] if s not in DataStandard.values]
    if unknown:
        known = ", ".join(DataStandard.values)
        errors["data_standards"] = f"Unknown data standard(s) {', '.join(unknown)}; use {known}."
    if account.contract_start and account.renewal_date and account.renewal_date < account.contract_start:
        errors["renewal_date"] = "The renewal date is before the contract start."
    if account.arr is not None and account.arr < 0:
        errors["arr"] = "ARR cannot be negative."
    for name in ("jurisdictions", "regulators", "data_standards"):
        value = getattr(account, name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            errors[name] = "Expected a list of strings."
    if errors:
        raise ValidationError(errors)
    if Account.objects.filter(name=account.name).exclude(pk=account.pk).exists():
        raise ValidationError({"name": f"An account called “{account.name}” already exists."})


def _require_member(tenant, user, field: str) -> None:
    if user is not None and not Membership.objects.filter(user=user, is_active=True).exists():
        raise ValidationError({field: f"{user} is not a member of {tenant}."})


def _active_membership(user) -> Membership | None:
    return Membership.objects.filter(user=user, is_active=True).first() if user is not None else None


def _check_owner_choice(membership: Membership | None, owner, *, unowned: str | None = None) -> None:
    """Who may own an account the member creates or hands over: a manager, a CSM of their team (else it
    leaves their book at once); an admin, any active CSM or manager, or nobody; anyone else, nobody.
    `unowned`: the refusal of "nobody" for a non-admin, when it is not simply "choose someone"."""
    is_admin = membership is not None and membership.role == Role.ADMIN
    if owner is None and is_admin:
        return
    if owner is None and unowned:
        raise ValidationError({"owner_csm": unowned})
    allowed = {m.user_id for m in reassign_candidates(membership=membership)} if membership is not None else set()
    if owner is None or owner.pk not in allowed:
        scope = "a CSM of your team" if membership is not None and membership.role == Role.MANAGER else None
        raise ValidationError({"owner_csm": f"Choose {scope or 'an active CSM or manager'}."})


@transaction.atomic
def account_create(*, tenant, actor=None, **fields: Any) -> Account:
    """Create an account. An admin or manager creating it chooses its owner as for a reassignment (see
    _check_owner_choice); otherwise (seeding, imports, no actor) any active member may own it. Who may
    create accounts at all is the permission layer's decision, not this function's."""
    unknown = set(fields) - ACCOUNT_FIELDS
    if unknown:
        raise ValidationError({name: "Unknown field." for name in sorted(unknown)})
    with context.tenant_context(tenant):
        account = Account(tenant=tenant, **fields)
        if account.segment_id and account.segment.tenant_id != tenant.pk:
            raise ValidationError({"segment": "Unknown segment."})
        membership = _active_membership(actor)
        if membership is not None and membership.role in (Role.ADMIN, Role.MANAGER):
            _check_owner_choice(membership, account.owner_csm)
        _require_member(tenant, account.owner_csm, "owner_csm")
        _validate_account(account)
        account.save()
        audit_record(tenant=tenant, actor=actor, action="account.create", obj=account, after=model_snapshot(account))
        if account.owner_csm is not None:
            _grant_csm(tenant=tenant, account=account, user=account.owner_csm, actor=actor)
    return account


@transaction.atomic
def account_update(*, tenant, account: Account, actor=None, **changes: Any) -> Account:
    unknown = set(changes) - ACCOUNT_FIELDS
    if unknown:
        raise ValidationError({name: "Unknown field." for name in sorted(unknown)})
    with context.tenant_context(tenant):
        # The caller's copy may be stale (read before another edit committed): lock the row and read it
        # again, so "before" is what this edit replaces and fields it does not change keep the other
        # edit's values instead of being written back from the stale copy.
        account.refresh_from_db(from_queryset=Account.objects.select_for_update())
        before = model_snapshot(account)
        previous_owner = account.owner_csm
        for name, value in changes.items():
            setattr(account, name, value)
        if "owner_csm" in changes:
            _require_member(tenant, account.owner_csm, "owner_csm")
        _validate_account(account)
        account.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="account.update",
            obj=account,
            before=before,
            after=model_snapshot(account),
        )
        if "owner_csm" in changes and account.owner_csm != previous_owner:
            if previous_owner is not None:
                _revoke_csm(tenant=tenant, account=account, user=previous_owner, actor=actor)
            if account.owner_csm is not None:
                _grant_csm(tenant=tenant, account=account, user=account.owner_csm, actor=actor)
    return account


def _grant_csm(*, tenant, account: Account, user, actor) -> None:
    for perm in CSM_PERMISSIONS:
        assign_perm(f"accounts.{perm}", user, account)
    audit_record(
        tenant=tenant,
        actor=actor,
        action="account.grant_csm",
        obj=account,
        after={"user": user.pk, "permissions": list(CSM_PERMISSIONS)},
    )


def _revoke_csm(*, tenant, account: Account, user, actor) -> None:
    for perm in CSM_PERMISSIONS:
        remove_perm(f"accounts.{perm}", user, account)
    audit_record(
        tenant=tenant,
        actor=actor,
        action="account.revoke_csm",
        obj=account,
        before={"user": user.pk, "permissions": list(CSM_PERMISSIONS)},
    )


@transaction.atomic
def account_assign_csm(*, tenant, account: Account, user, actor=None) -> None:
    """Give a CSM the guardian object permissions on an account (in addition to its owner)."""
    with context.tenant_context(tenant):
        membership = Membership.objects.filter(user=user, is_active=True).first()
        if membership is None or membership.role not in Capability.HOLD_ACCOUNTS.roles:
            raise ValidationError({"user": f"{user} is not an active CSM or manager of {tenant}."})
        _grant_csm(tenant=tenant, account=account, user=user, actor=actor)


@transaction.atomic
def account_reassign(*, tenant, account: Account, owner_csm, actor) -> Account:
    """Move an account to another CSM (or, for admins, to nobody: owner_csm None) through account_update
    (which moves the guardian permissions and records the change). Who may receive it depends on the
    actor's role: see _check_owner_choice."""
    with context.tenant_context(tenant):
        membership = _active_membership(actor)
        if owner_csm is None:
            _check_owner_choice(membership, None, unowned="Only admins leave an account without a CSM.")
            return account_update(tenant=tenant, account=account, actor=actor, owner_csm=None)
        if membership is None or membership.role not in Capability.REASSIGN_ACCOUNTS.roles:
            raise ValidationError({"owner_csm": "Only managers and admins reassign accounts."})
        _check_owner_choice(membership, owner_csm)
        if owner_csm.pk == account.owner_csm_id:
            raise ValidationError({"owner_csm": f"{account.name} is already assigned to {owner_csm}."})
        return account_update(tenant=tenant, account=account, actor=actor, owner_csm=owner_csm)


@transaction.atomic
def contact_create(*, tenant, account: Account, actor=None, **fields: Any) -> Contact:
    with context.tenant_context(tenant):
        contact = Contact(tenant=tenant, account=account, **fields)
        contact.full_clean(exclude=["tenant", "account"])
        contact.save()
        audit_record(tenant=tenant, actor=actor, action="contact.create", obj=contact, after=model_snapshot(contact))
    return contact


@transaction.atomic
def touchpoint_log(*, tenant, account: Account, actor=None, **fields: Any) -> Touchpoint:
    with context.tenant_context(tenant):
        touchpoint = Touchpoint(tenant=tenant, account=account, author=fields.pop("author", actor), **fields)
        if touchpoint.contact_id and touchpoint.contact.account_id != account.pk:
            raise ValidationError({"contact": "The contact belongs to another account."})
        touchpoint.full_clean(exclude=["tenant", "account"])
        # The timeline records what happened; a touchpoint "in the future" is a typo or a plan.
        if touchpoint.occurred_at > timezone.now():
            raise ValidationError({"occurred_at": "A touchpoint cannot be in the future."})
        touchpoint.save()
        audit_record(
            tenant=tenant, actor=actor, action="touchpoint.log", obj=touchpoint, after=model_snapshot(touchpoint)
        )
    return touchpoint


# --- Deleting, and contact edits (REST API) --------------------------------------------------------------
class AccountHasHistory(Exception):
    """The account holds records a regulated client's file must keep; churn it instead of deleting."""

    def __init__(self, account: Account, relations: list[str]) -> None:
        self.account, self.relations = account, relations
        kinds = ", ".join(name.replace("_", " ") for name in relations)
        super().__init__(
            f'{account.name} has history ({kinds}) and cannot be deleted; set lifecycle_stage to "churned" instead.'
        )


@transaction.atomic
def account_delete(*, tenant, account: Account, actor=None) -> None:
    """Delete an account that holds nothing but itself (one created by mistake). An account with any
    history (touchpoints, contacts, health snapshots, measurements, surveys, incidents, obligations,
    journeys, decisions...) raises AccountHasHistory: a regulated product does not lose records, the
    account is churned instead. The audit event keeps the deleted row's last values."""

    with context.tenant_context(tenant):
        # Lock the row so a touchpoint logged meanwhile cannot slip in between the check and the delete,
        # and read it again so the event keeps its last values, not the caller's copy's.
        account.refresh_from_db(from_queryset=Account.objects.select_for_update())
        history = account_history(account)
        if history:
            raise AccountHasHistory(account, history)
        before = model_snapshot(account)
        account_id = account.pk
        account.delete()  # cascades only the guardian permission rows, which are access, not history
        audit_record(
            tenant=tenant,
            actor=actor,
            action="account.delete",
            object_type="accounts.account",
            object_id=account_id,
            before=before,
        )


CONTACT_FIELDS = {"name", "email", "phone", "title", "is_executive_sponsor", "is_primary"}


@transaction.atomic
def contact_update(*, tenant, contact: Contact, actor=None, **changes: Any) -> Contact:
    """Edit a contact's details. A contact stays on its account: moving a person to another client
    is a new contact there (`account` may be given, as a client echoing what it read does, but only as
    the contact's own)."""
    if "account" in changes:
        account = changes.pop("account")
        if getattr(account, "pk", account) != contact.account_id:
            raise ValidationError({"account": "A contact cannot move to another account; create it there."})
    unknown = set(changes) - CONTACT_FIELDS
    if unknown:
        raise ValidationError({name: "This field cannot be edited." for name in sorted(unknown)})
    with context.tenant_context(tenant):
        # As in account_update: "before" from the locked, current row, not the caller's copy.
        contact.refresh_from_db(from_queryset=Contact.objects.select_for_update())
        before = model_snapshot(contact)
        for name, value in changes.items():
            setattr(contact, name, value)
        contact.full_clean(exclude=["tenant", "account"])
        contact.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="contact.update",
            obj=contact,
            before=before,
            after=model_snapshot(contact),
        )
    return contact


@transaction.atomic
def contact_delete(*, tenant, contact: Contact, actor=None) -> None:
    """Remove a contact (a person who left the client). Touchpoints that named them keep their
    record (their contact becomes empty); the audit event keeps the contact's last values."""
    with context.tenant_context(tenant):
        current = Contact.objects.select_for_update().filter(pk=contact.pk).first()
        if current is None:
            return  # a concurrent request deleted it (and recorded the event) first
        before = model_snapshot(current)
        contact_id = contact.pk
        current.delete()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="contact.delete",
            object_type="accounts.contact",
            object_id=contact_id,
            before=before,
        )
