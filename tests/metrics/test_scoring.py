"""Health arithmetic, checked against hand-computed figures."""

import pytest

from segments.health_model import (
    AccountInputs,
    KpiTarget,
    MeasureConfig,
    SurveyStats,
    band,
    describe,
    kpi_score,
    nps_value,
    score_account,
)

RENEWAL = KpiTarget(
    "policy_renewal", "Customer retention rates", "gte", "higher", 95.0, None, "95%+ policy renewal rates"
)
DEPLOY = KpiTarget(
    "integration_deployment_speed",
    "Integration deployment speed",
    "lt",
    "lower",
    None,
    45.0,
    "<45 days average deployment time",
)
RISK = KpiTarget(
    "risk_reduction", "Risk reduction achievement", "between", "higher", 25.0, 35.0, "25-35% operational risk reduction"
)


def test_nps_is_promoters_minus_detractors():
    # 4 promoters (9, 10, 9, 10), 3 passives (7, 8, 8), 3 detractors (0, 5, 6): (4 - 3) / 10 = +10
    assert nps_value([9, 10, 9, 10, 7, 8, 8, 0, 5, 6]) == pytest.approx(10.0)
    assert nps_value([10, 10]) == 100.0
    assert nps_value([0, 6]) == -100.0
    assert nps_value([]) is None


@pytest.mark.parametrize(
    ("target", "value", "expected"),
    [
        (RENEWAL, 96.0, 100.0),  # met
        (RENEWAL, 95.0, 100.0),  # exactly the target meets "95%+"
        (RENEWAL, 90.25, 80.0),  # 5 % short of 95 -> 100 - 4 x 5
        (RENEWAL, 50.0, 0.0),  # far short, floored at 0
        (DEPLOY, 44.0, 100.0),  # under 45 days
        (DEPLOY, 45.0, 96.0),  # "<45": 45 itself misses, by the minimum 1 % -> 100 - 4
        (DEPLOY, 54.0, 20.0),  # 20 % over 45 days -> 100 - 80
        (RISK, 30.0, 100.0),  # inside the band
        (RISK, 20.0, 20.0),  # 20 % short of 25 -> 100 - 80
    ],
)
def test_kpi_scores(target, value, expected):
    assert kpi_score(target, value) == pytest.approx(expected)


def test_bands_use_inclusive_green_and_exclusive_red():
    assert band(75, green_at=75, red_below=50) == "green"
    assert band(74.99, green_at=75, red_below=50) == "yellow"
    assert band(50, green_at=75, red_below=50) == "yellow"
    assert band(49.99, green_at=75, red_below=50) == "red"


def _insurer(**overrides) -> AccountInputs:
    values = dict(
        segment_code="insurer",
        kpis=[(RENEWAL, 90.25)],  # score 80
        nps=SurveyStats(responses=10, average=7.0, promoters=4, detractors=3),  # NPS +10 -> score 55
        csat=SurveyStats(responses=2, average=4.0),  # (4 - 1) / 4 -> 75
        compliance_status="expiring",  # 70
        days_to_renewal=90,  # 50
    )
    values.update(overrides)
    return AccountInputs(**values)


CARD = [
    MeasureConfig("kpi_attainment", 40),
    MeasureConfig("nps", 20),
    MeasureConfig("csat", 10),
    MeasureConfig("compliance", 20),
    MeasureConfig("renewal", 10),
]


def test_total_is_the_weighted_mean_and_components_add_up():
    result = score_account(_insurer(), CARD, green_at=70, red_below=50)
    # 80 x .4 + 55 x .2 + 75 x .1 + 70 x .2 + 50 x .1 = 32 + 11 + 7.5 + 14 + 5 = 69.5
    assert str(result.total) == "69.50"
    assert result.band == "yellow"
    contributions = {c["measure"]: c["contribution"] for c in result.components}
    assert contributions == {"kpi_attainment": 32.0, "nps": 11.0, "csat": 7.5, "compliance": 14.0, "renewal": 5.0}
    assert sum(contributions.values()) == pytest.approx(69.5)
    nps = next(c for c in result.components if c["measure"] == "nps")
    assert nps["raw"] == 10.0 and nps["facts"] == {"n": 10} and nps["band"] == "yellow"
    # Stored compactly; the sentence a reader sees is written from the raw value and the facts.
    assert next(c for c in describe(result.components) if c["measure"] == "nps")["display"] == "NPS +10 (10 responses)"
    # Stored in MEASURES order (as the SQL engine writes them); shown heaviest first, ties by label.
    assert [c["measure"] for c in result.components] == ["kpi_attainment", "nps", "csat", "compliance", "renewal"]
    assert [c["label"] for c in describe(result.components)] == [
        "KPI attainment",
        "Compliance",
        "NPS",
        "CSAT",
        "Days to renewal",
    ]


def test_missing_data_is_reweighted_and_shown_as_missing_never_as_zero():
    result = score_account(_insurer(nps=SurveyStats(), csat=SurveyStats()), CARD, green_at=70, red_below=50)
    # Present: kpi 40, compliance 20, renewal 10 (70 of 100) -> effective 57.14 / 28.57 / 14.29
    # total = (80 x 40 + 70 x 20 + 50 x 10) / 70 = 5100 / 70 = 72.857...
    assert str(result.total) == "72.86"
    assert result.band == "green"
    assert result.missing == ["nps", "csat"]
    nps = next(c for c in result.components if c["measure"] == "nps")
    assert nps["missing"] and nps["score"] is None and nps["contribution"] == 0.0 and nps["band"] == "missing"
    kpi = next(c for c in result.components if c["measure"] == "kpi_attainment")
    assert kpi["effective_weight"] == pytest.approx(400 / 7)  # 40 of the 70 present: 57.14 %


def test_no_data_at_all_is_grey_not_red():
    empty = AccountInputs(segment_code="bank")
    result = score_account(empty, [MeasureConfig("nps", 50), MeasureConfig("csat", 50)], green_at=70, red_below=50)
    assert result.band == "grey" and str(result.total) == "0.00" and result.missing == ["nps", "csat"]
    assert [c["display"] for c in describe(result.components)] == ["no data", "no data"]


def test_kpi_detail_explains_each_target():
    result = score_account(
        _insurer(kpis=[(RENEWAL, 96.0), (RISK, 20.0)]),
        [MeasureConfig("kpi_attainment", 100)],
        green_at=70,
        red_below=50,
    )
    component = result.components[0]
    names = {"policy_renewal": "Customer retention rates", "risk_reduction": "Risk reduction achievement"}
    described = describe(result.components, kpi_names=names)[0]
    assert described["display"] == "1 of 2 targets met" and described["label"] == "KPI attainment"
    assert [(k["name"], k["met"]) for k in described["kpis"]] == [
        ("Customer retention rates", True),
        ("Risk reduction achievement", False),
    ]
    assert str(result.total) == "60.00"  # (100 + 20) / 2
    assert [(k["kpi"], k["met"], k["score"]) for k in component["facts"]["kpis"]] == [
        ("policy_renewal", True, 100.0),
        ("risk_reduction", False, 20.0),
    ]


def test_escalations_mttr_journey_decisions():
    inputs = AccountInputs(
        segment_code="bank",
        escalations=2,
        resolved_hours=[8.0, 40.0],
        journey_status="at_risk",
        decisions_due=4,
        decisions_closed_on_time=3,
    )
    card = [
        MeasureConfig("escalations", 25),
        MeasureConfig("mttr", 25),
        MeasureConfig("journey", 25),
        MeasureConfig("decision_closure", 25),
    ]
    result = score_account(inputs, card, green_at=70, red_below=50)
    scores = {c["measure"]: c["score"] for c in result.components}
    # escalations 100 - 50; MTTR 24 h -> (72 - 24) / 64 = 75; at risk 50; 3 of 4 on time 75
    assert scores == {"escalations": 50.0, "mttr": 75.0, "journey": 50.0, "decision_closure": 75.0}
    assert str(result.total) == "62.50"
