"""Tenant admins edit scorecards in the browser; bad input is refused field by field and nothing is kept."""

import html

import pytest
from django.urls import reverse

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from segments.models import Scorecard
from segments.services import scorecard_defaults_ensure


def _card(tenant, code="bank") -> Scorecard:
    scorecard_defaults_ensure(tenant=tenant)
    with context.tenant_context(tenant):
        return Scorecard.objects.get(segment__code=code)


def _weights(card) -> dict[str, float]:
    with context.tenant_context(card.tenant):
        return {m.measure: float(m.weight) for m in card.measures.all()}


def _login(client, world, role=Role.ADMIN):
    client.force_login(world.user(role))
    client.get(reverse("home"))  # stores the active tenant in the session


@pytest.mark.django_db
def test_admin_lists_every_segments_scorecard_in_a_fixed_number_of_queries(client, tenant_a, django_assert_num_queries):
    scorecard_defaults_ensure(tenant=tenant_a.tenant)
    _login(client, tenant_a)
    # session, user, memberships, scorecards with their segments, their measures
    with django_assert_num_queries(5):
        body = client.get(reverse("health_model")).content.decode()
    assert "Banks and Credit Unions" in body and "compliance" in body and body.count("<section") == 4


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(set(Role.values) - Capability.EDIT_HEALTH_MODEL.roles))
def test_other_roles_do_not_get_scorecard_pages(client, tenant_a, role):
    card = _card(tenant_a.tenant)
    _login(client, tenant_a, role)
    assert client.get(reverse("health_model")).status_code == 403  # pages their role may not use
    before = _weights(card)
    response = client.post(reverse("health_model_edit", args=[card.pk]), {"nps-weight": "100"})
    assert response.status_code == 403 and _weights(card) == before


def _form(card, **overrides) -> dict[str, str]:
    from segments.health_model import MEASURES

    with context.tenant_context(card.tenant):
        stored = {m.measure: m for m in card.measures.all()}
    data = {"green_at": "70", "red_below": "50"}
    for code in MEASURES:
        measure = stored.get(code)
        data[f"{code}-weight"] = str(measure.weight) if measure else "0"
        data[f"{code}-green_at"] = "75"
        data[f"{code}-red_below"] = "50"
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_admin_saves_new_weights_and_the_change_is_audited(client, tenant_a):
    card = _card(tenant_a.tenant)
    _login(client, tenant_a)
    page = client.get(reverse("health_model_edit", args=[card.pk])).content.decode()
    assert 'name="compliance-weight"' in page and 'value="25"' in page  # the bank default: compliance 25
    data = _form(card, **{"compliance-weight": "30", "nps-weight": "5", "red_below": "45"})
    response = client.post(reverse("health_model_edit", args=[card.pk]), data)
    assert response.status_code == 302 and response["Location"] == reverse("health_model")
    weights = _weights(card)
    assert weights["compliance"] == 30.0 and weights["nps"] == 5.0 and sum(weights.values()) == 100.0
    with context.tenant_context(tenant_a.tenant):
        card.refresh_from_db()
        event = AuditEvent.objects.filter(action="scorecard.update").latest("id")
    assert float(card.red_below) == 45.0
    assert event.actor_id == tenant_a.user(Role.ADMIN).pk and event.after["red_below"] == "45"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"compliance-weight": "35"}, "weights", "The weights add up to 110, not 100."),
        ({"nps-weight": "ten"}, "NPS", "'ten' is not a number."),
        ({"csat-green_at": "120"}, "CSAT", "120 is outside 0-100."),
        ({"red_below": "80"}, "red_below", "The red threshold (80) is above the green one (70)."),
        # NaN passed Decimal() and failed the 0-100 comparison (500); 33.333 was stored as 33.33.
        ({"csat-green_at": "NaN"}, "CSAT", "'NaN' is not a finite number."),
        ({"nps-weight": "0.005", "compliance-weight": "24.995"}, "NPS", "Use at most 2 decimal places."),
    ],
)
def test_bad_input_names_the_field_and_keeps_nothing(client, tenant_a, overrides, field, message):
    card = _card(tenant_a.tenant)
    before = _weights(card)
    _login(client, tenant_a)
    response = client.post(reverse("health_model_edit", args=[card.pk]), _form(card, **overrides))
    body = html.unescape(response.content.decode())
    assert response.status_code == 400 and message in body
    if field in ("NPS", "CSAT"):  # shown on the measure's own row, next to the bad input
        row = body.split(f'<th scope="row">{field}</th>')[1].split("</tr>")[0]
        assert message in row and 'aria-invalid="true"' in row
    else:
        assert f"<code>{field}</code>" in body
    assert _weights(card) == before  # nothing kept
    for value in overrides.values():
        assert f'value="{value}"' in body  # the admin's input is shown back, not lost
