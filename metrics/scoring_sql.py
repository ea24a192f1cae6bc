"""The health snapshot of every account in one SQL statement, on PostgreSQL.

`segments.health_model` is the reference: it states each measure's rule in Python and is what the tests
check by hand. Shipping 100,000 accounts' inputs to Python and the snapshots back costs several
times what the arithmetic does, so on PostgreSQL the nightly run evaluates the same rules where the
data lives: one INSERT ... SELECT ... ON CONFLICT per tenant (or chunk of accounts) that gathers the
inputs, scores every measure, re-weights missing ones, builds the same components JSON and upserts
the snapshots, returning the band counts and the digest the audit event records. The tests hold the
two implementations to each other component by component (tests/metrics/test_scoring_sql.py).

Every constant comes from segments.health_model, and the module refuses to load if a measure exists there
that it does not compute, so the two cannot drift apart silently.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection
from django.utils import timezone

from segments.health_model import (
    ADOPTION_KPIS,
    COMPLIANCE_SCORES,
    DECISION_WINDOW_DAYS,
    INCIDENT_WINDOW_DAYS,
    JOURNEY_SCORES,
    KPI_WINDOW_DAYS,
    MEASURES,
    SHORTFALL_PENALTY,
    SURVEY_WINDOW_DAYS,
    TRUST_KPIS,
)


def _clamp(expr: str) -> str:
    """scoring._clamp for SQL, keeping NULL (missing) NULL: greatest/least alone would drop it."""
    return f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE greatest(0.0, least(100.0, ({expr}))) END"


def _case(column: str, scores: dict[str, float]) -> str:
    return f"CASE {column} " + " ".join(f"WHEN '{key}' THEN {value}" for key, value in scores.items()) + " END"


def _first_kpi(codes, name: str) -> str:
    """The value and code of the first (by code) of `codes` an account has, as scoring._kpi_value
    picks it: plain filtered aggregates (one row per account and KPI), no per-group sorting."""
    ordered = sorted(codes)
    value = "coalesce(" + ", ".join(f"max(v) FILTER (WHERE code = '{c}')" for c in ordered) + ", NULL)"
    code = "CASE " + " ".join(f"WHEN bool_or(code = '{c}') THEN '{c}'" for c in ordered) + " END"
    return f"{value} AS {name}, {code} AS {name}_kpi"


@dataclass(frozen=True)
class SqlMeasure:
    raw: str  # the raw value in the measure's unit, NULL when missing
    score: str  # 0-100, NULL when missing
    facts: str  # a jsonb expression: what segments.health_model puts in MeasureResult.facts


# Columns available: the `inputs` CTE below. Each entry mirrors the m_<code> function in scoring.py.
SQL_MEASURES: dict[str, SqlMeasure] = {
    "kpi_attainment": SqlMeasure(
        raw="CASE WHEN k.n > 0 THEN k.met * 100.0 / k.n END",
        score="k.attainment",
        facts="jsonb_build_object('met', k.met, 'of', k.n, 'kpis', k.kpis)",
    ),
    "nps": SqlMeasure(
        raw="CASE WHEN s.nps_n > 0 THEN (s.promoters - s.detractors) * 100.0 / s.nps_n END",
        score="CASE WHEN s.nps_n > 0 THEN ((s.promoters - s.detractors) * 100.0 / s.nps_n + 100.0) / 2.0 END",
        facts="jsonb_build_object('n', s.nps_n)",
    ),
    "csat": SqlMeasure(
        raw="s.csat", score=_clamp("(s.csat - 1.0) / 4.0 * 100.0"), facts="jsonb_build_object('n', s.csat_n)"
    ),
    "ces": SqlMeasure(
        raw="s.ces", score=_clamp("(s.ces - 1.0) / 6.0 * 100.0"), facts="jsonb_build_object('n', s.ces_n)"
    ),
    "trust": SqlMeasure(
        raw="k.trust", score=_clamp("(k.trust - 1.0) / 4.0 * 100.0"), facts="jsonb_build_object('kpi', k.trust_kpi)"
    ),
    "adoption": SqlMeasure(
        raw="k.adoption", score=_clamp("k.adoption"), facts="jsonb_build_object('kpi', k.adoption_kpi)"
    ),
    "escalations": SqlMeasure(
        raw="coalesce(i.escalations, 0)::float8",
        score="greatest(0.0, least(100.0, 100.0 - 25.0 * coalesce(i.escalations, 0)))",
        facts="'{}'::jsonb",
    ),
    "mttr": SqlMeasure(
        raw="i.mttr_hours",
        score=_clamp("(72.0 - i.mttr_hours) / 64.0 * 100.0"),
        facts="jsonb_build_object('n', i.resolved)",
    ),
    "journey": SqlMeasure(
        raw=_case("j.status", JOURNEY_SCORES),
        score=_case("j.status", JOURNEY_SCORES),
        facts="jsonb_build_object('status', j.status)",
    ),
    "compliance": SqlMeasure(
        raw=_case("c.status", COMPLIANCE_SCORES),
        score=_case("c.status", COMPLIANCE_SCORES),
        facts="jsonb_build_object('status', c.status)",
    ),
    "decision_closure": SqlMeasure(
        raw="CASE WHEN d.due > 0 THEN d.on_time * 100.0 / d.due END",
        score="CASE WHEN d.due > 0 THEN d.on_time * 100.0 / d.due END",
        facts="jsonb_build_object('closed', d.on_time, 'due', d.due)",
    ),
    "renewal": SqlMeasure(
        raw="a.days_to_renewal::float8", score=_clamp("a.days_to_renewal / 180.0 * 100.0"), facts="'{}'::jsonb"
    ),
}

if set(SQL_MEASURES) != set(MEASURES):  # pragma: no cover - a developer error, caught at import
    raise ImportError(
        f"metrics.scoring_sql does not compute {sorted(set(MEASURES) - set(SQL_MEASURES))} "
        f"(or computes unknown {sorted(set(SQL_MEASURES) - set(MEASURES))}): keep it in step with segments.health_model"
    )


def _component(code: str) -> str:
    """One measure's component, as scoring.score_account builds it."""
    missing = (
        f"jsonb_build_object('measure', '{code}', 'weight', w_{code}, 'raw', NULL, 'score', NULL, "
        f"'effective_weight', 0.0, 'contribution', 0.0, 'band', 'missing', 'missing', true, 'facts', '{{}}'::jsonb)"
    )
    # Unrounded, as scoring.score_account stores them: rounding 1.2 million numbers a night costs more
    # than building the rest of the snapshot, and the page rounds for display anyway.
    present = (
        f"jsonb_build_object('measure', '{code}', 'weight', w_{code}, 'raw', raw_{code}, 'score', s_{code}, "
        f"'effective_weight', w_{code} * 100.0 / present_weight, "
        f"'contribution', s_{code} * w_{code} / present_weight, "
        f"'band', CASE WHEN s_{code} >= g_{code} THEN 'green' WHEN s_{code} < r_{code} THEN 'red' ELSE 'yellow' END, "
        f"'missing', false, 'facts', f_{code})"
    )
    return f"CASE WHEN s_{code} IS NULL OR present_weight = 0 THEN {missing} ELSE {present} END"


@cache
def snapshot_statement(*, chunked: bool) -> str:
    """The upsert for one tenant and day; with `chunked`, for the accounts in %(ids)s only."""

    def only(column: str) -> str:
        return f"AND {column} = ANY(%(ids)s)" if chunked else ""

    codes = list(MEASURES)
    card_columns = ",\n            ".join(
        f"coalesce(max(m.weight) FILTER (WHERE m.measure = '{c}'), 0)::float8 AS w_{c}, "
        f"max(m.green_at) FILTER (WHERE m.measure = '{c}')::float8 AS g_{c}, "
        f"max(m.red_below) FILTER (WHERE m.measure = '{c}')::float8 AS r_{c}"
        for c in codes
    )
    measure_columns = ",\n            ".join(
        f"{m.raw} AS raw_{c}, {m.score} AS s_{c}, {m.facts} AS f_{c}" for c, m in SQL_MEASURES.items()
    )
    present = " + ".join(f"CASE WHEN s_{c} IS NULL THEN 0 ELSE w_{c} END" for c in codes)
    weighted = " + ".join(f"coalesce(w_{c} * s_{c}, 0)" for c in codes)
    # In MEASURES order, measures the scorecard does not weigh left out (NULL, then removed).
    components = ", ".join(f"CASE WHEN w_{c} > 0 THEN {_component(c)} END" for c in codes)
    # kpi_score: 100 when met, else 100 - penalty per 1 % of relative shortfall (at least 1 %).
    shortfall_lower = "CASE WHEN coalesce(d.hi, 0) <> 0 THEN (l.v - d.hi) / d.hi ELSE 1.0 END"
    shortfall_higher = "CASE WHEN coalesce(d.lo, 0) <> 0 THEN (d.lo - l.v) / d.lo ELSE 1.0 END"
    # Only code-defined names and numbers are interpolated; every value is a bound parameter.
    return f"""
    WITH
    acc AS (
        SELECT id, segment_id, renewal_date - %(day)s::date AS days_to_renewal
        FROM accounts_account WHERE tenant_id = %(tenant)s {only("id")}
    ),
    card AS (  -- each segment's scorecard, one weight and threshold pair per measure
        SELECT c.segment_id, c.green_at::float8 AS green_at, c.red_below::float8 AS red_below,
            {card_columns}
        FROM segments_scorecard c
        LEFT JOIN segments_scorecardmeasure m ON m.scorecard_id = c.id AND m.weight > 0
        WHERE c.tenant_id = %(tenant)s
        GROUP BY c.id
    ),
    latest AS (  -- the latest value of each KPI within the window
        SELECT DISTINCT ON (account_id, kpi_id) account_id, kpi_id, value::float8 AS v
        FROM metrics_kpimeasurement
        WHERE tenant_id = %(tenant)s AND measured_on <= %(day)s::date
          AND measured_on > %(day)s::date - {KPI_WINDOW_DAYS} {only("account_id")}
        ORDER BY account_id, kpi_id, measured_on DESC
    ),
    kpi_scored AS (
        SELECT l.account_id, d.code, l.v, met,
            CASE WHEN met THEN 100.0 ELSE greatest(0.0, least(100.0, 100.0 - greatest(0.01,
                CASE WHEN d.direction = 'lower' THEN {shortfall_lower} ELSE {shortfall_higher} END)
                * 100.0 * {SHORTFALL_PENALTY})) END AS score
        FROM latest l
        JOIN (SELECT id, code, direction, target_low::float8 AS lo, target_high::float8 AS hi, comparator
              FROM segments_kpidefinition WHERE tenant_id = %(tenant)s) AS d ON d.id = l.kpi_id
        CROSS JOIN LATERAL (SELECT CASE d.comparator WHEN 'lt' THEN l.v < d.hi ELSE l.v >= d.lo END AS met) AS t
    ),
    kpi AS (
        SELECT account_id, count(*) AS n, count(*) FILTER (WHERE met) AS met, avg(score) AS attainment,
            -- No ORDER BY: a sort per account costs more than the whole aggregate; describe() orders them.
            jsonb_agg(jsonb_build_object('kpi', code, 'value', v, 'met', met, 'score', score))
                AS kpis,
            {_first_kpi(TRUST_KPIS, "trust")},
            {_first_kpi(ADOPTION_KPIS, "adoption")}
        FROM kpi_scored GROUP BY account_id
    ),
    surveys AS (
        SELECT account_id,
            count(*) FILTER (WHERE survey_type = 'nps') AS nps_n,
            count(*) FILTER (WHERE survey_type = 'nps' AND score >= 9) AS promoters,
            count(*) FILTER (WHERE survey_type = 'nps' AND score <= 6) AS detractors,
            count(*) FILTER (WHERE survey_type = 'csat') AS csat_n,
            avg(score) FILTER (WHERE survey_type = 'csat')::float8 AS csat,
            count(*) FILTER (WHERE survey_type = 'ces') AS ces_n,
            avg(score) FILTER (WHERE survey_type = 'ces')::float8 AS ces
        FROM metrics_surveyresponse
        WHERE tenant_id = %(tenant)s AND responded_on <= %(day)s::date
          AND responded_on > %(day)s::date - {SURVEY_WINDOW_DAYS} {only("account_id")}
        GROUP BY account_id
    ),
    incidents AS (
        SELECT account_id, count(*) FILTER (WHERE escalated) AS escalations,
            count(*) FILTER (WHERE resolved_at IS NOT NULL AND resolved_at < %(until)s) AS resolved,
            avg(extract(epoch FROM resolved_at - opened_at)::float8 / 3600.0)
                FILTER (WHERE resolved_at IS NOT NULL AND resolved_at < %(until)s) AS mttr_hours
        FROM metrics_incident
        WHERE tenant_id = %(tenant)s AND opened_at >= %(since)s AND opened_at < %(until)s {only("account_id")}
        GROUP BY account_id
    ),
    journey AS (  -- the most recent journey speaks for the account
        SELECT DISTINCT ON (account_id) account_id, status
        FROM journeys_accountjourney
        WHERE tenant_id = %(tenant)s AND started_on <= %(day)s::date {only("account_id")}
        ORDER BY account_id, started_on DESC, id DESC
    ),
    compliance AS (
        SELECT account_id, status FROM compliance_compliancestatussnapshot
        WHERE tenant_id = %(tenant)s AND snapshot_date = %(day)s::date {only("account_id")}
    ),
    decisions AS (
        SELECT account_id, count(*) AS due,
            count(*) FILTER (WHERE status IN ('resolved', 'fallback') AND resolved_at IS NOT NULL
                             AND (resolved_at AT TIME ZONE %(tz)s)::date <= due_date) AS on_time
        FROM journeys_decision
        WHERE tenant_id = %(tenant)s AND due_date <= %(day)s::date
          AND due_date > %(day)s::date - {DECISION_WINDOW_DAYS} {only("account_id")}
        GROUP BY account_id
    ),
    previous AS (
        SELECT account_id,
            max(total) FILTER (WHERE snapshot_date = %(day)s::date - 7) AS total_7,
            max(total) FILTER (WHERE snapshot_date = %(day)s::date - 30) AS total_30
        FROM metrics_healthsnapshot
        WHERE tenant_id = %(tenant)s AND snapshot_date IN (%(day)s::date - 7, %(day)s::date - 30)
            {only("account_id")}
        GROUP BY account_id
    ),
    inputs AS MATERIALIZED (  -- materialized: each measure is evaluated once per account
        SELECT a.id AS account_id, card.*, p.total_7, p.total_30,
            {measure_columns}
        FROM acc a
        JOIN card ON card.segment_id = a.segment_id
        LEFT JOIN kpi k ON k.account_id = a.id
        LEFT JOIN surveys s ON s.account_id = a.id
        LEFT JOIN incidents i ON i.account_id = a.id
        LEFT JOIN journey j ON j.account_id = a.id
        LEFT JOIN compliance c ON c.account_id = a.id
        LEFT JOIN decisions d ON d.account_id = a.id
        LEFT JOIN previous p ON p.account_id = a.id
    ),
    weighed AS (  -- missing measures' weight is spread over the present ones
        SELECT inputs.*, {present} AS present_weight, {weighted} AS weighted FROM inputs
    ),
    totals AS MATERIALIZED (
        SELECT weighed.*,
            CASE WHEN present_weight > 0 THEN round((weighted / present_weight)::numeric, 2) ELSE 0 END AS total
        FROM weighed
    ),
    written AS (
        INSERT INTO metrics_healthsnapshot AS h
            (tenant_id, account_id, snapshot_date, total, band, components, change_7d, change_30d, computed_at)
        SELECT %(tenant)s, account_id, %(day)s::date, total,
            CASE WHEN present_weight = 0 THEN 'grey' WHEN total >= green_at THEN 'green'
                 WHEN total < red_below THEN 'red' ELSE 'yellow' END,
            to_jsonb(array_remove(ARRAY[{components}]::jsonb[], NULL)),
            total - total_7, total - total_30, %(now)s
        FROM totals
        ON CONFLICT (tenant_id, account_id, snapshot_date) DO UPDATE SET
            total = EXCLUDED.total, band = EXCLUDED.band, components = EXCLUDED.components,
            change_7d = EXCLUDED.change_7d, change_30d = EXCLUDED.change_30d, computed_at = EXCLUDED.computed_at
        RETURNING account_id, total, band
    )
    SELECT
        (SELECT count(*) FROM written),
        (SELECT coalesce(jsonb_object_agg(band, n), '{{}}'::jsonb)
         FROM (SELECT band, count(*) AS n FROM written GROUP BY band) AS b),
        (SELECT encode(sha256(convert_to(coalesce(
            string_agg(account_id::text || '|' || total::text || '|' || band, E'\\n' ORDER BY account_id), ''),
            'UTF8')), 'hex') FROM written)
    """  # noqa: S608


def health_snapshots_upsert(
    *, tenant_id: int, day: datetime.date, account_ids: list[int] | None
) -> tuple[int, dict[str, int], str]:
    """Run the statement in the caller's transaction and tenant context: (accounts, bands, sha256)."""
    since = timezone.make_aware(
        datetime.datetime.combine(day - datetime.timedelta(days=INCIDENT_WINDOW_DAYS), datetime.time())
    )
    until = timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time()))
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "day": day,
        "since": since,
        "until": until,
        "now": timezone.now(),
        # The zone Django's __date lookups use, so "closed on time" means the same in both engines.
        "tz": timezone.get_current_timezone_name(),
        "ids": account_ids,
    }
    with connection.cursor() as cursor:
        # For this statement only: no JIT (compiling it costs ~0.4 s per chunk, more than it saves) and
        # no nested loops. The day's compliance snapshots were written moments ago, so the planner's
        # statistics still think they are few; hash and merge joins stay fast whatever it believes,
        # a nested loop chosen on that belief does not.
        cursor.execute(
            "SELECT current_setting('jit'), current_setting('enable_nestloop'), "
            "set_config('jit', 'off', true), set_config('enable_nestloop', 'off', true)"
        )
        jit, nestloop = cursor.fetchone()[:2]
        cursor.execute(snapshot_statement(chunked=account_ids is not None), params)
        accounts, bands, digest = cursor.fetchone()
        cursor.execute("SELECT set_config('jit', %s, true), set_config('enable_nestloop', %s, true)", [jit, nestloop])
    # Django leaves jsonb undecoded on raw cursors (its JSONField decodes in from_db_value).
    return accounts, json.loads(bands) if isinstance(bands, str) else bands, digest
