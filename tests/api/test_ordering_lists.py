"""Every list endpoint sorts the same way (api.filters.MappedOrderingFilter): an unknown ?ordering= is a
400 in the error format naming the names it takes, every documented name works both ways, and the id
breaks ties so cursor pages neither skip nor repeat rows among equal values."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import resolve

from api.filters import ordering_map
from api.models import ALL_SCOPES
from cs_platform.tenancy import context
from metrics.models import KpiMeasurement
from segments.models import KpiDefinition
from tests import factories
from tests.api.helpers import bearer
from tests.helpers import owned_account

TODAY = datetime.date.today()


def _list_paths(client) -> list[str]:
    """The schema's list operations: GETs without path parameters that take a cursor (paginated)."""
    schema = client.get("/api/schema/?format=json").json()
    paths = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        names = {parameter["name"] for parameter in get.get("parameters", [])}
        if "cursor" in names:
            assert "ordering" in names, f"{path} is paginated but documents no ordering"
            paths.append(path)
    return paths


def _view_of(path: str):
    match = resolve(path)
    view = match.func.cls(**match.func.initkwargs)
    view.action = match.func.actions.get("get") if hasattr(match.func, "actions") else None
    return view


@pytest.mark.django_db
def test_every_list_refuses_an_unknown_ordering_and_takes_every_name_it_lists(client, tenant_a):
    paths = _list_paths(client)
    # accounts, contacts, touchpoints, segments, KPIs, measurements, surveys, incidents, health scores and
    # their latest, journeys, activities, decisions, obligations, evidence, audit results, compliance
    # statuses, audit events: a walk that found only a few would prove little.
    assert len(paths) >= 18, paths
    auth = bearer(tenant_a, *ALL_SCOPES)  # created by the admin: every list of the tenant is readable
    for path in paths:
        response = client.get(path, {"ordering": "-no_such_field"}, **auth)
        assert response.status_code == 400, (path, response.status_code, response.content[:200])
        body = response.json()
        assert (body["status"], body["code"]) == (400, "invalid"), path
        assert [error["field"] for error in body["errors"]] == ["ordering"], path
        names = list(ordering_map(_view_of(path)))
        message = body["errors"][0]["message"]
        assert "'no_such_field'" in message and all(name in message for name in names), (path, message)
        for name in names:
            for term in (name, f"-{name}", f"{name},-{names[0]}"):
                response = client.get(path, {"ordering": term}, **auth)
                assert response.status_code == 200, (path, term, response.content[:200])


def _measurements_on_one_day(world, count: int) -> list[int]:
    """`count` measurements all on the same day (distinct accounts and KPIs): ties on measured_on."""
    accounts = [owned_account(world, name=f"Tie Bank {i}") for i in range(4)]
    with context.tenant_context(world.tenant):
        kpis = list(KpiDefinition.objects.filter(segment_id=accounts[0].segment_id).order_by("pk"))[:3]
    ids = []
    for i in range(count):
        account, kpi = accounts[i % len(accounts)], kpis[i // len(accounts)]
        ids.append(factories.KpiMeasurementFactory(tenant=world.tenant, account=account, kpi=kpi, measured_on=TODAY).pk)
    return ids


def _walk(client, url: str, params: dict, auth: dict) -> list[int]:
    seen, query = [], dict(params)
    for _ in range(50):
        response = client.get(url, query, **auth)
        assert response.status_code == 200, response.content
        seen += [row["id"] for row in response.json()["results"]]
        following = response.json()["next"]
        if following is None:
            return seen
        query = {key: values[0] for key, values in parse_qs(urlsplit(following).query).items()}
    raise AssertionError("the cursor never ended")


@pytest.mark.django_db
@pytest.mark.parametrize("ordering", ["measured_on", "-measured_on", "-recorded_at,measured_on"])
def test_cursor_pages_over_equal_values_return_every_row_exactly_once(client, tenant_a, ordering):
    ids = _measurements_on_one_day(tenant_a, 11)
    if ordering.startswith("-recorded_at"):
        with context.tenant_context(tenant_a.tenant):  # ties on recorded_at too
            KpiMeasurement.objects.update(recorded_at=KpiMeasurement.objects.order_by("pk")[0].recorded_at)
    auth = bearer(tenant_a, "metrics:read")
    seen = _walk(client, "/api/v1/measurements/", {"ordering": ordering, "page_size": 3}, auth)
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)  # none skipped, none repeated
    # Among equal values the id decides, in the direction of the first field: the same order on every page.
    assert seen == sorted(ids, reverse=ordering.startswith("-"))


def test_the_default_ordering_ends_with_the_id_too():
    """Audit events sort by seq by default; the pagination still gets a total order ending with the id."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from api.filters import MappedOrderingFilter

    def ordering(path: str, **params) -> tuple[str, ...]:
        request = Request(APIRequestFactory().get(path, params))
        return MappedOrderingFilter().get_ordering(request, None, _view_of(path))

    assert ordering("/api/v1/audit-events/") == ("seq", "id")
    assert ordering("/api/v1/segments/", ordering="-name") == ("-name", "-id")
    assert ordering("/api/v1/incidents/", ordering="opened_at,-id") == ("opened_at", "-id")  # already unique
