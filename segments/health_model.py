"""Health scoring: pure functions from an account's inputs to an explainable 0-100 score.

Nothing here touches the database, so the arithmetic is testable by hand. Every measure maps its raw
value to 0-100 by a rule stated in its `rule` text (shown in the UI next to the score); a measure
with no data is *missing*: it is shown as missing and its weight is spread over the others, never
counted as zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

HUNDRED = Decimal(100)

# How far back each measure looks from the scored day. Both engines (metrics.selectors.health_inputs for
# this reference, metrics.scoring_sql for PostgreSQL) and the pages that explain a score read these.
SURVEY_WINDOW_DAYS = 180
INCIDENT_WINDOW_DAYS = 90
KPI_WINDOW_DAYS = 120  # the latest value of each KPI within this window counts
DECISION_WINDOW_DAYS = 90


def _clamp(value: float) -> float:
    return max(0.0, min(100.0, value))


def q2(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# --- KPI attainment ---------------------------------------------------------------------------------
# Points lost per 1 % short of a target: 4, so 25 % short scores 0. Stated once, shown in the UI.
SHORTFALL_PENALTY = 4.0


@dataclass(frozen=True)
class KpiTarget:
    code: str
    name: str
    comparator: str  # gte | lt | eq | between | top_quartile
    direction: str  # higher | lower
    low: float | None
    high: float | None
    target_text: str


def kpi_met(target: KpiTarget, value: float) -> bool:
    if target.comparator == "lt":
        return value < target.high
    if target.comparator == "eq":
        return value >= target.low  # "100 % audit pass rate": nothing above 100 exists
    # gte, between (reaching the low end of the band meets it), top_quartile (percentile >= 75)
    return value >= target.low


def kpi_score(target: KpiTarget, value: float) -> float:
    """100 when the target is met; otherwise 100 minus SHORTFALL_PENALTY per 1 % of shortfall
    relative to the target (for lower-is-better targets, relative excess)."""
    if kpi_met(target, value):
        return 100.0
    if target.direction == "lower":
        goal = target.high
        shortfall = (value - goal) / goal if goal else 1.0
    else:
        goal = target.low
        shortfall = (goal - value) / goal if goal else 1.0
    # A miss always costs something, even on the boundary ("<45 days" at exactly 45 days).
    shortfall = max(shortfall, 0.01)
    return _clamp(100.0 - shortfall * 100.0 * SHORTFALL_PENALTY)


# --- Measure results --------------------------------------------------------------------------------
@dataclass
class MeasureResult:
    raw: float | None  # the measure's own unit (NPS points, hours, days, %); None = missing
    score: float | None  # 0-100; None = missing
    # The few facts a reader needs besides the raw value (response counts, which KPI, the status), stored
    # with the snapshot; the sentence shown in the UI is written from them by `describe`, so the stored
    # snapshot stays compact and identical whichever engine (Python or SQL) computed it.
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def missing(self) -> bool:
        return self.score is None


MISSING = MeasureResult(raw=None, score=None)


def nps_from_counts(promoters: int, detractors: int, responses: int) -> float | None:
    """Net Promoter Score: % promoters (9-10) minus % detractors (0-6), from -100 to 100."""
    if not responses:
        return None
    return (promoters - detractors) * 100.0 / responses


def nps_value(scores: Sequence[int]) -> float | None:
    return nps_from_counts(sum(1 for s in scores if s >= 9), sum(1 for s in scores if s <= 6), len(scores))


@dataclass(frozen=True)
class SurveyStats:
    responses: int = 0
    average: float | None = None
    promoters: int = 0
    detractors: int = 0

    @classmethod
    def of(cls, scores: Sequence[int]) -> SurveyStats:
        if not scores:
            return cls()
        return cls(
            len(scores), sum(scores) / len(scores), sum(1 for s in scores if s >= 9), sum(1 for s in scores if s <= 6)
        )


@dataclass
class AccountInputs:
    """Everything the measures need for one account on one day, gathered set-based beforehand."""

    segment_code: str
    kpis: list[tuple[KpiTarget, float]] = field(default_factory=list)  # latest value per KPI in window
    nps: SurveyStats = field(default_factory=SurveyStats)
    csat: SurveyStats = field(default_factory=SurveyStats)
    ces: SurveyStats = field(default_factory=SurveyStats)
    escalations: int = 0
    resolved_hours: list[float] = field(default_factory=list)
    journey_status: str | None = None
    compliance_status: str | None = None
    decisions_due: int = 0
    decisions_closed_on_time: int = 0
    days_to_renewal: int | None = None


TRUST_KPIS = ("customer_trust", "client_satisfaction")  # 5-point trust/satisfaction scores (seed 000)
ADOPTION_KPIS = ("api_adoption",)


def m_kpi_attainment(inputs: AccountInputs) -> MeasureResult:
    if not inputs.kpis:
        return MISSING
    rows = [
        {"kpi": t.code, "value": v, "met": kpi_met(t, v), "score": kpi_score(t, v)}
        for t, v in sorted(inputs.kpis, key=lambda pair: pair[0].code)
    ]
    met = sum(1 for r in rows if r["met"])
    score = sum(kpi_score(t, v) for t, v in inputs.kpis) / len(inputs.kpis)
    return MeasureResult(raw=met * 100.0 / len(rows), score=score, facts={"met": met, "of": len(rows), "kpis": rows})


def m_nps(inputs: AccountInputs) -> MeasureResult:
    stats = inputs.nps
    value = nps_from_counts(stats.promoters, stats.detractors, stats.responses)
    if value is None:
        return MISSING
    return MeasureResult(raw=value, score=(value + 100.0) / 2.0, facts={"n": stats.responses})


def m_csat(inputs: AccountInputs) -> MeasureResult:
    if not inputs.csat.responses:
        return MISSING
    avg = inputs.csat.average
    return MeasureResult(raw=avg, score=_clamp((avg - 1.0) / 4.0 * 100.0), facts={"n": inputs.csat.responses})


def m_ces(inputs: AccountInputs) -> MeasureResult:
    if not inputs.ces.responses:
        return MISSING
    avg = inputs.ces.average
    return MeasureResult(raw=avg, score=_clamp((avg - 1.0) / 6.0 * 100.0), facts={"n": inputs.ces.responses})


def _kpi_value(inputs: AccountInputs, codes: Sequence[str]) -> tuple[KpiTarget, float] | None:
    return min(((t, v) for t, v in inputs.kpis if t.code in codes), key=lambda pair: pair[0].code, default=None)


def m_trust(inputs: AccountInputs) -> MeasureResult:
    found = _kpi_value(inputs, TRUST_KPIS)
    if found is None:
        return MISSING
    target, value = found
    return MeasureResult(raw=value, score=_clamp((value - 1.0) / 4.0 * 100.0), facts={"kpi": target.code})


def m_adoption(inputs: AccountInputs) -> MeasureResult:
    found = _kpi_value(inputs, ADOPTION_KPIS)
    if found is None:
        return MISSING
    target, value = found
    return MeasureResult(raw=value, score=_clamp(value), facts={"kpi": target.code})


def m_escalations(inputs: AccountInputs) -> MeasureResult:
    n = inputs.escalations
    return MeasureResult(raw=float(n), score=_clamp(100.0 - 25.0 * n))


def m_mttr(inputs: AccountInputs) -> MeasureResult:
    if not inputs.resolved_hours:
        return MISSING
    hours = sum(inputs.resolved_hours) / len(inputs.resolved_hours)
    # 8 hours or less scores 100, 72 hours or more scores 0, linear between.
    return MeasureResult(
        raw=hours, score=_clamp((72.0 - hours) / 64.0 * 100.0), facts={"n": len(inputs.resolved_hours)}
    )


JOURNEY_SCORES = {"on_track": 100.0, "completed": 100.0, "at_risk": 50.0, "late": 0.0}
COMPLIANCE_SCORES = {"compliant": 100.0, "expiring": 70.0, "not_started": 40.0, "overdue": 20.0, "failed": 0.0}


def m_journey(inputs: AccountInputs) -> MeasureResult:
    if inputs.journey_status is None:
        return MISSING
    score = JOURNEY_SCORES[inputs.journey_status]
    return MeasureResult(raw=score, score=score, facts={"status": inputs.journey_status})


def m_compliance(inputs: AccountInputs) -> MeasureResult:
    if inputs.compliance_status is None:
        return MISSING
    score = COMPLIANCE_SCORES[inputs.compliance_status]
    return MeasureResult(raw=score, score=score, facts={"status": inputs.compliance_status})


def m_decision_closure(inputs: AccountInputs) -> MeasureResult:
    if not inputs.decisions_due:
        return MISSING
    rate = inputs.decisions_closed_on_time * 100.0 / inputs.decisions_due
    return MeasureResult(
        raw=rate, score=rate, facts={"closed": inputs.decisions_closed_on_time, "due": inputs.decisions_due}
    )


def m_renewal(inputs: AccountInputs) -> MeasureResult:
    days = inputs.days_to_renewal
    if days is None:
        return MISSING
    # 180+ days out scores 100; the score falls linearly to 0 on the renewal date (and stays 0 after).
    return MeasureResult(raw=float(days), score=_clamp(days / 180.0 * 100.0))


@dataclass(frozen=True)
class Measure:
    code: str
    label: str
    rule: str
    compute: Callable[[AccountInputs], MeasureResult]


MEASURES: dict[str, Measure] = {
    m.code: m
    for m in (
        Measure(
            "kpi_attainment",
            "KPI attainment",
            f"mean of per-KPI scores: 100 if met, -{SHORTFALL_PENALTY:g} per 1 % short",
            m_kpi_attainment,
        ),
        Measure("nps", "NPS", "(NPS + 100) / 2 over 180 days", m_nps),
        Measure("csat", "CSAT", "(average - 1) / 4 x 100 over 180 days", m_csat),
        Measure("ces", "Customer effort", "(average - 1) / 6 x 100 over 180 days", m_ces),
        Measure("trust", "Customer trust", "latest trust/satisfaction KPI on a 1-5 scale", m_trust),
        Measure("adoption", "API / product adoption", "latest adoption % as the score", m_adoption),
        Measure("escalations", "Support escalations", "100 - 25 per escalated incident in 90 days", m_escalations),
        Measure("mttr", "Time to resolve", "100 at <= 8 h, 0 at >= 72 h (90 days)", m_mttr),
        Measure("journey", "Journey", "on track 100, at risk 50, late 0", m_journey),
        Measure(
            "compliance", "Compliance", "compliant 100, expiring 70, not started 40, overdue 20, failed 0", m_compliance
        ),
        Measure(
            "decision_closure", "Decision closure", "% of decisions due in 90 days closed on time", m_decision_closure
        ),
        Measure("renewal", "Days to renewal", "100 at 180+ days, 0 at the renewal date", m_renewal),
    )
}

# Default weights per segment (sum 100), following what seed 000 says matters for each: compliance
# and risk for banks, claims handling (time to resolve) and retention for insurers, relationship and
# satisfaction for wealth managers, API adoption and integration for fintechs.
DEFAULT_WEIGHTS: dict[str, dict[str, int]] = {
    "bank": {
        "compliance": 25,
        "kpi_attainment": 20,
        "nps": 10,
        "trust": 10,
        "journey": 10,
        "csat": 5,
        "escalations": 5,
        "mttr": 5,
        "decision_closure": 5,
        "renewal": 5,
    },
    "insurer": {
        "kpi_attainment": 25,
        "compliance": 20,
        "mttr": 10,
        "nps": 10,
        "csat": 10,
        "journey": 10,
        "escalations": 5,
        "decision_closure": 5,
        "renewal": 5,
    },
    "wealth": {
        "kpi_attainment": 20,
        "compliance": 20,
        "nps": 15,
        "trust": 15,
        "renewal": 10,
        "csat": 5,
        "escalations": 5,
        "journey": 5,
        "decision_closure": 5,
    },
    "fintech": {
        "adoption": 20,
        "kpi_attainment": 20,
        "compliance": 15,
        "nps": 10,
        "journey": 10,
        "csat": 5,
        "escalations": 5,
        "mttr": 5,
        "decision_closure": 5,
        "renewal": 5,
    },
}
GENERIC_WEIGHTS = {
    "kpi_attainment": 25,
    "compliance": 20,
    "nps": 15,
    "journey": 10,
    "csat": 10,
    "escalations": 5,
    "decision_closure": 5,
    "renewal": 10,
}


@dataclass(frozen=True)
class MeasureConfig:
    measure: str
    weight: float
    green_at: float = 75.0
    red_below: float = 50.0


def band(score: float, *, green_at: float, red_below: float) -> str:
    if score >= green_at:
        return "green"
    if score < red_below:
        return "red"
    return "yellow"


@dataclass
class HealthResult:
    total: Decimal
    band: str
    components: list[dict[str, Any]]
    missing: list[str]


_RANK = {code: index for index, code in enumerate(MEASURES)}


def ordered(measures: Sequence[MeasureConfig]) -> list[MeasureConfig]:
    """The scored measures in the stored order, MEASURES order (the SQL engine's too); `describe`
    puts the heaviest first for display."""
    return sorted((m for m in measures if m.weight > 0), key=lambda m: _RANK.get(m.measure, len(_RANK)))


def score_account(
    inputs: AccountInputs, measures: Sequence[MeasureConfig], *, green_at: float, red_below: float
) -> HealthResult:
    """Weighted mean of the present measures' scores; missing measures' weight is spread over the
    present ones in proportion to their weights. Each component records raw value, score, nominal
    and effective weight, its contribution (score x effective weight / 100, so the contributions add
    up to the total), its band and the facts behind the raw value. Numbers are stored unrounded (the
    total alone is rounded, to cents); pages round them for display.

    This is the reference implementation: metrics.scoring_sql computes the same snapshot in one SQL
    statement on PostgreSQL, and the tests hold the two to each other."""
    results = [(config, MEASURES[config.measure].compute(inputs)) for config in ordered(measures)]
    present_weight = sum(config.weight for config, result in results if not result.missing)
    components: list[dict[str, Any]] = []
    missing: list[str] = []
    total = 0.0
    for config, result in results:
        row: dict[str, Any] = {"measure": config.measure, "weight": config.weight}
        if result.missing or not present_weight:
            missing.append(config.measure)
            row.update(
                raw=None, score=None, effective_weight=0.0, contribution=0.0, band="missing", missing=True, facts={}
            )
        else:
            effective = config.weight * 100.0 / present_weight
            contribution = result.score * effective / 100.0
            total += contribution
            row.update(
                raw=result.raw,
                score=result.score,
                effective_weight=effective,
                contribution=contribution,
                band=band(result.score, green_at=config.green_at, red_below=config.red_below),
                missing=False,
                facts=result.facts,
            )
        components.append(row)
    total_q = q2(total)
    return HealthResult(
        total=total_q,
        # With no data at all there is nothing to judge: grey, not red.
        band=band(float(total_q), green_at=green_at, red_below=red_below) if present_weight else "grey",
        components=components,
        missing=missing,
    )


# --- Reading a stored snapshot ---------------------------------------------------------------------
def _display(code: str, raw: float | None, facts: dict[str, Any], kpi_names: dict[str, str]) -> str:
    if raw is None:
        return "no data"
    if code == "kpi_attainment":
        return f"{facts.get('met', 0)} of {facts.get('of', 0)} targets met"
    if code == "nps":
        return f"NPS {raw:+.0f} ({facts.get('n', 0)} responses)"
    if code == "csat":
        return f"CSAT {raw:.2f} / 5 ({facts.get('n', 0)} responses)"
    if code == "ces":
        return f"CES {raw:.2f} / 7 ({facts.get('n', 0)} responses)"
    if code == "trust":
        return f"{raw:.2f} / 5 ({kpi_names.get(facts.get('kpi', ''), facts.get('kpi', ''))})"
    if code == "adoption":
        return f"{raw:.0f} % ({kpi_names.get(facts.get('kpi', ''), facts.get('kpi', ''))})"
    if code == "escalations":
        return f"{raw:.0f} escalated incident(s) in 90 days"
    if code == "mttr":
        return f"MTTR {raw:.1f} h ({facts.get('n', 0)} resolved)"
    if code in ("journey", "compliance"):
        return str(facts.get("status", "")).replace("_", " ")
    if code == "decision_closure":
        return f"{facts.get('closed', 0)} of {facts.get('due', 0)} closed on time"
    if code == "renewal":
        return f"{raw:.0f} days to renewal"
    return f"{raw:g}"


def describe(components: Sequence[dict[str, Any]], *, kpi_names: dict[str, str] | None = None) -> list[dict]:
    """A stored snapshot's components with what a reader needs added: the measure's label and rule,
    the raw value as a sentence, and for KPI attainment each KPI by name. Unknown measures (removed
    from the code since the snapshot was taken) are shown by their code rather than hidden."""
    kpi_names = kpi_names or {}
    described = []
    for component in components:
        measure = MEASURES.get(component.get("measure", ""))
        facts = component.get("facts") or {}
        row = dict(component)
        row["label"] = measure.label if measure else component.get("measure", "")
        row["rule"] = measure.rule if measure else ""
        row["display"] = _display(component.get("measure", ""), component.get("raw"), facts, kpi_names)
        row["kpis"] = sorted(
            (dict(k, name=kpi_names.get(k.get("kpi", ""), k.get("kpi", ""))) for k in facts.get("kpis", [])),
            key=lambda k: k["name"],
        )
        described.append(row)
    # Heaviest first, ties by label: the measures that move the total most are read first.
    return sorted(described, key=lambda row: (-(row.get("weight") or 0), row["label"]))
