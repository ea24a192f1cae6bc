"""Reads about tenants and memberships."""

from __future__ import annotations

from cs_platform import bounds
from cs_platform.tenancy import system
from cs_platform.tenancy.models import Membership, Tenant, TenantOwned


def memberships_for_user(user) -> list[Membership]:
    """A user's active memberships across tenants, tenant joined, ordered by tenant name.

    It must look across tenants (it is how a request learns its tenant), so on PostgreSQL it is the
    SECURITY DEFINER lookup cs_user_memberships (tenancy migration 0002): the app role cannot read other
    tenants' membership rows itself. One query."""
    if not system.uses_database_lookups():
        plain = Membership._plain.filter(user_id=user.pk, is_active=True)
        return list(plain.select_related("tenant").order_by("tenant__name", "pk"))
    memberships = []
    for membership_row, tenant_row in system.lookup_rows("cs_user_memberships", user.pk):
        membership = system.instance_from_json(Membership, membership_row)
        membership.tenant = system.instance_from_json(Tenant, tenant_row)
        memberships.append(membership)
    return memberships


def team_user_ids(membership: Membership) -> list[int]:
    """User ids of a manager's team: the manager and everyone reporting to them, directly or not.
    Kept on the membership object, which lives for one request: a page calls visible_accounts()
    from several selectors and should walk the team tree once."""
    cached = getattr(membership, "_team_user_ids", None)
    if cached is not None:
        return cached
    ids: set[int] = {membership.user_id}
    frontier = [membership.pk]
    # Team trees are a few levels deep; one query per level, never per person.
    while frontier:
        rows = list(Membership.objects.filter(manager_id__in=frontier, is_active=True).values_list("pk", "user_id"))
        frontier = [pk for pk, user_id in rows if user_id not in ids]
        ids.update(user_id for _, user_id in rows)
    membership._team_user_ids = sorted(ids)
    return membership._team_user_ids


def out_of_bounds_dates() -> list[tuple[str, str, int, str]]:
    """(model label, field, row id, stored value as PostgreSQL prints it) of the current tenant's rows whose
    date or timestamp lies outside cs_platform.bounds (1900-01-01 to 2200-12-31), for rows stored before
    those bounds were enforced. The value is read as text: a timestamp outside Python's years 1-9999 (an
    incident stored as 0001-01-01T00:00:00+14:00 is 1 BC in UTC) cannot be read as a datetime at all. One
    query per date column of every tenant-owned model."""
    from django.apps import apps
    from django.db.models import DateField, DateTimeField, F, Q, TextField
    from django.db.models.functions import Cast

    found = []
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if not issubclass(model, TenantOwned):
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, DateTimeField):
                low, high = bounds.MIN_MOMENT, bounds.MAX_MOMENT
            elif isinstance(field, DateField):
                low, high = bounds.MIN_DATE, bounds.MAX_DATE
            else:
                continue
            outside = Q(**{f"{field.name}__lt": low}) | Q(**{f"{field.name}__gt": high})
            rows = (
                model.objects.filter(outside)
                .annotate(stored_as=Cast(F(field.name), output_field=TextField()))
                .order_by("pk")
                .values_list("pk", "stored_as")
            )
            found.extend((model._meta.label, field.name, pk, stored) for pk, stored in rows)
    return found
