"""The benchmarks' data generator: one tenant's dataset, in the shape a benchmark asks for.

Every benchmark builds its data here: bench_recompute with `recompute_shape`, bench_dashboards,
bench_load and bench_scorecards with `dashboards_shape`, bench_api with `api_shape`; the suite runs the
generator itself with the foreign-key checks on (tests/test_benchmarks_run.py). Each table is written
by ONE set-based `INSERT ... SELECT` below, so a column added to a model is added here once (until
then `temporary_defaults` gives it an empty value for the generation only, and says so).

A `Shape` says how much of each kind of data an account gets; a kind set to None is not generated.
Rows are written as the owner (a superuser: RLS does not apply to it) with the per-row foreign-key
triggers skipped, the data being consistent by construction; the tenant, its members and the audit
trail go through the real services, as the app role. Deterministic for a seed: `(a.g * p + q) % m`
patterns and `bench_pick` (a hash, so kinds pick their accounts independently of each other and of
the segment cycle) spread the data, the seeded random() adds values.

Django is set up by the benchmark before any function here runs, so models are imported inside them.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tests.perf.benchlib import heading, row, vacuum_analyze


# --- Shapes -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Members:
    """The tenant's members, created by membership_create; CSMs report to the managers in turn."""

    admins: int = 1
    executives: int = 0
    managers: int = 1
    csms: int = 1
    compliance: int = 0
    viewers: int = 0


@dataclass(frozen=True)
class Touchpoints:
    per_account: int  # spread back from the day, one every `every_days`; about one a quarter is a QBR
    every_days: int


@dataclass(frozen=True)
class History:
    """Health snapshots of the days before the benchmark day (the nightly run writes the day itself).
    Each account drifts around its own level (slow wave, trend, daily noise), so change_7d / change_30d
    come from the same formula whenever the earlier day is in the history too."""

    days_back: Sequence[int]  # e.g. (30, 7), or range(365, 0, -1) for a year of daily snapshots
    lacking_pct: float = 0  # accounts with none
    components: bool = True  # the stored format (HealthSnapshot docstring) rather than '[]'
    fixed_components: str | None = None  # one JSON document for every row instead


@dataclass(frozen=True)
class Kpis:
    """Readings `every_days` apart (each 0 to every_days - 1 days earlier, per account and reading) of
    every KPI of the account's segment, or of one KPI in turn when `one_kpi_per_reading`."""

    readings: int
    every_days: int
    one_kpi_per_reading: bool
    lacking_pct: float  # accounts reporting none


@dataclass(frozen=True)
class Surveys:
    """`rounds` rounds `every_days` apart, each one answer of every type in `types`; mostly satisfied
    clients, some accounts with more detractors."""

    rounds: int
    every_days: int
    types: tuple[str, ...]
    skipped_pct: float  # answers not given
    lacking_pct: float  # accounts that never answer


@dataclass(frozen=True)
class Incidents:
    slots: int  # at most this many per account
    kept_pct: float  # share of the slots holding an incident
    within_days: int  # opened 1 to within_days days before the benchmark day
    resolved_pct: float
    resolution_hours: int  # resolved 1 to 1 + resolution_hours hours after opening, mostly early
    resolved_by_now: bool  # False: some resolutions fall after the day's end, which MTTR leaves out
    escalated_pct: float = 20


@dataclass(frozen=True)
class Journeys:
    """Journeys from the default template, with every template activity due at its phase's end."""

    pct: float  # accounts with a journey started started_days_ago (from, to) days back
    started_days_ago: tuple[int, int]
    older_pct: float  # accounts with an older one too, started before that
    future_pct: float  # accounts with one starting 10 days after the benchmark day
    done_past_due_pct: float  # activities done once more than 3 days past due
    done_current_pct: float  # activities of a phase already started, done early
    late_accounts_pct: float = 0  # accounts that struggle: only 70 % of their past-due activities done


@dataclass(frozen=True)
class Decisions:
    """Decisions and blockers owned by the account's CSM (the first CSM when the account has none);
    past-due ones resolved, fallen back or left open (overdue: the nightly run escalates them)."""

    slots: int  # at most this many per account
    kept_pct: float  # share of the slots holding one
    days_back: int  # due from days_back days ago to days_ahead days ahead
    days_ahead: int
    resolved_pct: float  # of the past-due ones
    fallback_pct: float  # of the past-due ones
    resolved_early_pct: float  # of the others
    blocker_pct: float  # blockers rather than decisions


@dataclass(frozen=True)
class Compliance:
    """Obligations from the requirements applying to the account's segment (its own or all segments),
    evidence (no file, a checksum) valid for a year, and audits."""

    obligations: tuple[int, int]  # per account, from, to
    due_span_days: int  # due from 120 days ago over this many days
    evidence_pct: float  # of the obligations; ~2 % of the evidence only becomes valid 5 days ahead
    evidence_within_days: int  # valid from 0 to this many days ago (so some lapsed, some expiring)
    audited_pct: float  # of the obligations, once or (a third of them) twice
    failed_pct: float  # of the audits, with 1-3 open findings
    audit_within_days: int


@dataclass(frozen=True)
class Shape:
    accounts: int
    members: Members
    # Accounts over the segments in seed order: a cycle of sum(segment_mix) accounts holds segment_mix[i]
    # accounts of segment i, consecutively.
    segment_mix: tuple[int, int, int, int]
    books: bool  # the CSMs own blocks of 20 accounts (so every book holds every segment)
    grants: bool  # with the object permissions accounts.services grants the owner
    contacts: bool  # 2-3 contacts per account
    touchpoints: Touchpoints | None
    history: History | None
    kpis: Kpis | None
    surveys: Surveys | None
    incidents: Incidents | None
    journeys: Journeys | None
    decisions: Decisions | None
    compliance: Compliance | None
    audit_trail: bool  # account.create / account.grant_csm / decision.create through audit_record_many

    def tables(self) -> tuple[str, ...]:
        """The tables this shape writes, in the order the benchmarks print them."""
        return tuple(table for table, wanted in _TABLES if wanted(self))


DASHBOARD_MEMBERS = Members(admins=1, executives=2, managers=4, csms=40, compliance=1, viewers=1)


def recompute_shape(accounts: int) -> Shape:
    """bench_recompute (tests/perf/README.md): about 10 KPI measurements per account over 130 days (a
    120-day window), surveys over 200 days (180), incidents over 110 days (90), journeys, decisions,
    compliance, and health snapshots 7 and 30 days back only; a few percent of the accounts lack each
    kind, so missing measures and re-weighting are exercised. No books: the engine does not read them."""
    return Shape(
        accounts=accounts,
        members=Members(admins=1, managers=1, csms=1),
        segment_mix=(1, 1, 1, 1),
        books=False,
        grants=False,
        contacts=False,
        touchpoints=None,
        history=History(days_back=(30, 7), lacking_pct=10, components=False),
        kpis=Kpis(readings=10, every_days=13, one_kpi_per_reading=True, lacking_pct=2),
        surveys=Surveys(rounds=1, every_days=200, types=("nps", "nps", "csat", "ces"), skipped_pct=14, lacking_pct=10),
        incidents=Incidents(
            slots=2, kept_pct=60, within_days=110, resolved_pct=75, resolution_hours=99, resolved_by_now=False
        ),
        journeys=Journeys(
            pct=85,
            started_days_ago=(0, 300),
            older_pct=10,
            future_pct=1,
            done_past_due_pct=97,
            done_current_pct=25,
        ),
        decisions=Decisions(
            slots=2,
            kept_pct=60,
            days_back=110,
            days_ahead=10,
            resolved_pct=55,
            fallback_pct=11,
            resolved_early_pct=55,
            blocker_pct=0,
        ),
        compliance=Compliance(
            obligations=(3, 3),
            due_span_days=240,
            evidence_pct=75,
            evidence_within_days=400,
            audited_pct=30,
            failed_pct=25,
            audit_within_days=200,
        ),
        audit_trail=False,
    )


def dashboards_shape(accounts: int) -> Shape:
    """bench_dashboards (tests/perf/README.md, the table of the dataset): a year of everything for the
    pages to read, 49 members, books of 20 accounts."""
    return Shape(
        accounts=accounts,
        members=DASHBOARD_MEMBERS,
        segment_mix=(8, 5, 4, 3),  # 40 / 25 / 20 / 15 %: the bank segment is the large one
        books=True,
        grants=True,
        contacts=True,
        touchpoints=Touchpoints(per_account=24, every_days=15),
        history=History(days_back=range(365, 0, -1)),
        kpis=Kpis(readings=12, every_days=30, one_kpi_per_reading=False, lacking_pct=2),
        surveys=Surveys(rounds=4, every_days=91, types=("nps", "nps", "csat"), skipped_pct=11, lacking_pct=5),
        incidents=Incidents(
            slots=5, kept_pct=43, within_days=365, resolved_pct=85, resolution_hours=90, resolved_by_now=True
        ),
        journeys=Journeys(
            pct=100,
            started_days_ago=(5, 335),
            older_pct=0,
            future_pct=0,
            done_past_due_pct=99.7,
            done_current_pct=30,
            late_accounts_pct=12.5,
        ),
        decisions=Decisions(
            slots=4,
            kept_pct=40,
            days_back=120,
            days_ahead=30,
            resolved_pct=75,
            fallback_pct=10,
            resolved_early_pct=20,
            blocker_pct=25,
        ),
        compliance=Compliance(
            obligations=(3, 5),
            due_span_days=300,
            evidence_pct=90,
            evidence_within_days=380,
            audited_pct=30,
            failed_pct=10,
            audit_within_days=300,
        ),
        audit_trail=True,
    )


def api_shape(accounts: int, *, components: str) -> Shape:
    """bench_api: the dashboards' members and accounts, and one health snapshot per account for the day
    (with `components`); nothing else, the figures being about the API layer."""
    return Shape(
        accounts=accounts,
        members=DASHBOARD_MEMBERS,
        segment_mix=(8, 5, 4, 3),
        books=True,
        grants=False,
        contacts=False,
        touchpoints=None,
        history=History(days_back=(0,), fixed_components=components),
        kpis=None,
        surveys=None,
        incidents=None,
        journeys=None,
        decisions=None,
        compliance=None,
        audit_trail=False,
    )


# --- The tenant and its members -----------------------------------------------------------------------------
def create_tenant(*, name: str, slug: str, members: Members) -> tuple[Any, dict[str, list[int]]]:
    """The tenant through the real service (seed 000 segments, KPI targets, scorecards, journey template,
    frameworks and requirements) and its members. Returns the tenant and {role: [user ids]}."""
    from django.contrib.auth import get_user_model

    from cs_platform.identity.services import membership_create
    from cs_platform.tenancy.models import Role
    from provisioning.services import tenant_create

    tenant = tenant_create(name=name, slug=slug, load_reference_data=True)
    users = get_user_model().objects
    ids: dict[str, list[int]] = {}

    def member(role: str, number: int, manager=None):
        user = users.create_user(
            username=f"{slug}-{role}-{number:02d}",
            email=f"{role}{number:02d}@{slug}.test",
            first_name=role.capitalize(),
            last_name=f"{number:02d}",
        )
        ids.setdefault(role, []).append(user.pk)
        return membership_create(tenant=tenant, user=user, role=role, manager=manager)

    for n in range(1, members.admins + 1):
        member(Role.ADMIN, n)
    for n in range(1, members.executives + 1):
        member(Role.EXECUTIVE, n)
    managers = [member(Role.MANAGER, n) for n in range(1, members.managers + 1)]
    for n in range(1, members.csms + 1):
        member(Role.CSM, n, manager=managers[(n - 1) % len(managers)] if managers else None)
    for n in range(1, members.compliance + 1):
        member(Role.COMPLIANCE, n)
    for n in range(1, members.viewers + 1):
        member(Role.VIEWER, n)
    return tenant, ids


# --- The rows: one INSERT per table ---------------------------------------------------------------------------
# Parameters: t tenant, d the benchmark day, n accounts, segments (ids, seed order), cycle (segment_mix
# as positions), csms (user ids), template (default journey template), perms (view/change/manage_account),
# then one per Shape field (see `_parameters`). Percentages are per mille, compared with bench_pick.
PREPARE_SQL = """
CREATE TEMP TABLE bench_acc AS
    SELECT id, (row_number() OVER (ORDER BY id))::int AS g, segment_id, owner_csm_id,
           NULL::bigint AS contact_id, NULL::bigint AS journey_id
    FROM accounts_account WHERE tenant_id = %(t)s;
ALTER TABLE bench_acc ADD PRIMARY KEY (id);
CREATE TEMP TABLE bench_kpi AS
    SELECT id, segment_id, code, comparator, target_low::float8 AS lo, target_high::float8 AS hi,
           (row_number() OVER (PARTITION BY segment_id ORDER BY sort_order, id))::int - 1 AS k,
           (count(*) OVER (PARTITION BY segment_id))::int AS n
    FROM segments_kpidefinition WHERE tenant_id = %(t)s;
-- The requirements applying to each segment (its own and the all-segment ones), numbered.
CREATE TEMP TABLE bench_segreq AS
    SELECT s.id AS segment_id, r.id AS requirement_id,
           (row_number() OVER (PARTITION BY s.id ORDER BY r.id))::int - 1 AS r,
           (count(*) OVER (PARTITION BY s.id))::int AS n
    FROM segments_segment s
    JOIN compliance_requirement r ON r.tenant_id = s.tenant_id AND (r.segment_id = s.id OR r.segment_id IS NULL)
    WHERE s.tenant_id = %(t)s;
ANALYZE bench_acc; ANALYZE bench_kpi; ANALYZE bench_segreq;
-- 0-999 for a key (an account's number, a slot, a row id) and a salt (one per use): a hash, so each use
-- picks its share of the accounts independently of the others and of the segment cycle.
CREATE OR REPLACE FUNCTION pg_temp.bench_pick(key bigint, salt int) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT ((hashint8(key * 64 + salt) %% 1000) + 1000) %% 1000
$$;
-- An account's health `back` days before the benchmark day: its own level, a slow wave, a trend and
-- deterministic daily noise.
CREATE OR REPLACE FUNCTION pg_temp.bench_total(g int, back int) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT round(greatest(3.0, least(99.0,
        45.0 + (g * 37 %% 50)
        + 12.0 * sin(back / (15.0 + g %% 45) + g)
        + ((g %% 9) - 4) * back / 90.0
        + 4.0 * sin(g * 12.9898 + back * 78.233)
    ))::numeric, 2)
$$;
"""

ACCOUNTS_SQL = """
INSERT INTO accounts_account (tenant_id, name, segment_id, tier, arr, currency, contract_start, renewal_date,
    lifecycle_stage, owner_csm_id, executive_sponsor, jurisdictions, regulators, data_standards,
    created_at, updated_at)
SELECT %(t)s,
    (ARRAY['First', 'Northern', 'Harbor', 'Summit', 'Liberty', 'Pioneer', 'Granite', 'Atlas'])[1 + g %% 8]
        || ' ' || (ARRAY['Bank', 'Insurance', 'Wealth', 'Pay'])[s] || ' ' || lpad(g::text, 6, '0'),
    (%(segments)s::bigint[])[s],
    (ARRAY['strategic', 'enterprise', 'mid_market', 'growth'])[1 + (g / 3) %% 4],
    (50 + (g * 7919) %% 4950) * 1000, 'USD', %(d)s::date - 400 - (g %% 1100),
    CASE WHEN g %% 25 = 7 THEN NULL ELSE %(d)s::date + (g * 7919 %% 540) - 90 END,
    (ARRAY['onboarding', 'implementation', 'adoption', 'adoption', 'expansion', 'renewal', 'at_risk'])
        [1 + (g * 13) %% 7],
    CASE WHEN %(books)s THEN (%(csms)s::int[])[1 + (g / 20) %% array_length(%(csms)s::int[], 1)] END,
    'Sponsor ' || g,
    (ARRAY['["US-NY"]', '["US-NY", "US-CA"]', '["EU"]', '["US-TX", "EU"]'])[1 + g %% 4]::jsonb,
    (ARRAY['["SEC"]', '["SEC", "FINRA"]', '["OCC"]', '["NAIC"]'])[s]::jsonb,
    (ARRAY['["ISO 20022"]', '["FIX", "ISO 20022"]', '["OFX"]', '["XBRL"]'])[1 + (g / 7) %% 4]::jsonb,
    now(), now()
FROM (
    SELECT g, (%(cycle)s::int[])[1 + g %% array_length(%(cycle)s::int[], 1)] AS s
    FROM generate_series(1, %(n)s) AS g
) AS x
"""

# What accounts.services._grant_csm assigns the owner: view/change/manage_account.
GRANTS_SQL = """
INSERT INTO accounts_accountuserobjectpermission (tenant_id, permission_id, user_id, content_object_id)
SELECT %(t)s, p, a.owner_csm_id, a.id
FROM bench_acc a CROSS JOIN unnest(%(perms)s::int[]) AS p
WHERE a.owner_csm_id IS NOT NULL
"""

CONTACTS_SQL = """
INSERT INTO accounts_contact (tenant_id, account_id, name, email, phone, title, is_executive_sponsor, is_primary)
SELECT %(t)s, a.id, (ARRAY['Alex', 'Sam', 'Jordan'])[c] || ' Contact ' || a.g,
    'contact' || c || '.' || a.g || '@client.example', '+1 555 0' || lpad((a.g %% 1000)::text, 3, '0'),
    (ARRAY['Chief Financial Officer', 'Head of Operations', 'IT Director'])[c], c = 1, c = 2
FROM bench_acc a CROSS JOIN generate_series(1, 3) AS c
WHERE c < 3 OR a.g %% 2 = 0
"""
CONTACTS_LINK_SQL = """
UPDATE bench_acc a SET contact_id = c.id
FROM (SELECT account_id, min(id) AS id FROM accounts_contact WHERE tenant_id = %(t)s GROUP BY account_id) c
WHERE c.account_id = a.id
"""

# The owner CSM writes them; every other one mentions the primary contact.
TOUCHPOINTS_SQL = """
INSERT INTO accounts_touchpoint (tenant_id, account_id, kind, occurred_at, subject, notes, contact_id, author_id)
SELECT %(t)s, a.id,
    CASE WHEN i %% %(tp_qbr_every)s = 0 THEN 'qbr'
         ELSE (ARRAY['meeting', 'email', 'call', 'note', 'email'])[1 + (a.g + i) %% 5] END,
    %(d)s::date + time '10:00' - (1 + i * %(tp_every)s + (a.g * 7 + i * 3) %% 12) * interval '1 day'
        - random() * interval '8 hours',
    (ARRAY['Weekly sync', 'Integration status', 'Renewal discussion', 'Support follow-up', 'Roadmap'])
        [1 + (a.g + i * 3) %% 5],
    'Generated by the benchmark data generator.', CASE WHEN i %% 2 = 0 THEN a.contact_id END, a.owner_csm_id
FROM bench_acc a CROSS JOIN generate_series(0, %(tp_count)s - 1) AS i
"""

# Account by account, oldest day first: the rows reach the (tenant, account, day) index in order. The
# components are written as text and cast once: jsonb_build_object per row is 3x slower.
HISTORY_SQL = """
INSERT INTO metrics_healthsnapshot (tenant_id, account_id, snapshot_date, total, band, components, change_7d,
                                    change_30d, computed_at)
SELECT %(t)s, id, %(d)s::date - back, total,
    CASE WHEN total >= 70 THEN 'green' WHEN total < 50 THEN 'red' ELSE 'yellow' END,
    coalesce(%(h_fixed)s::jsonb, CASE WHEN %(h_components)s THEN
        ('[{"measure": "kpi_attainment", "weight": 60, "raw": ' || total || ', "score": ' || total
         || ', "effective_weight": 66.6667, "contribution": ' || round(total * 0.666667, 4) || ', "band": "' || b
         || '", "missing": false, "facts": {"met": ' || (1 + g %% 3) || ', "of": 3, "kpis": []}}, '
         || '{"measure": "nps", "weight": 30, "raw": ' || (total * 2 - 100) || ', "score": ' || total
         || ', "effective_weight": 33.3333, "contribution": ' || round(total * 0.333333, 4) || ', "band": "' || b
         || '", "missing": false, "facts": {"n": ' || (1 + g %% 4) || '}}, '
         || '{"measure": "csat", "weight": 10, "raw": null, "score": null, "effective_weight": 0, '
         || '"contribution": 0, "band": "missing", "missing": true, "facts": {}}]')::jsonb
        ELSE '[]'::jsonb END),
    CASE WHEN has_7 THEN total - total_7 END,
    CASE WHEN has_30 THEN total - total_30 END,
    %(d)s::date - back + time '02:30'
FROM (
    SELECT id, g, back, has_7, has_30, total, total_7, total_30,
        CASE WHEN total >= 75 THEN 'green' WHEN total < 50 THEN 'red' ELSE 'yellow' END AS b
    FROM (  -- OFFSET 0: computed once per row, not inlined at every use above
        SELECT a.id, a.g, h.back, h.has_7, h.has_30, pg_temp.bench_total(a.g, h.back) AS total,
            pg_temp.bench_total(a.g, h.back + 7) AS total_7, pg_temp.bench_total(a.g, h.back + 30) AS total_30
        FROM (SELECT * FROM bench_acc WHERE pg_temp.bench_pick(g, 1) >= %(h_lacking)s ORDER BY id) AS a
        CROSS JOIN LATERAL unnest(%(h_back)s::int[], %(h_has_7)s::bool[], %(h_has_30)s::bool[])
            AS h (back, has_7, has_30)
        OFFSET 0
    ) AS totals
) AS x
"""

# Reading r of a KPI falls r * every_days days back plus 0 to every_days - 1 days (per account and
# reading): one date per (account, KPI, reading), as the unique constraint wants.
KPIS_SQL = """
INSERT INTO metrics_kpimeasurement (tenant_id, account_id, kpi_id, measured_on, value, source, recorded_at)
SELECT %(t)s, a.id, k.id, %(d)s::date - (r * %(k_every)s + (a.g * 31 + r * 7) %% %(k_every)s),
    round((CASE
        WHEN k.code IN ('customer_trust', 'client_satisfaction') THEN 3.0 + random() * 2.0
        WHEN k.comparator = 'lt' THEN k.hi * (0.55 + random() * 0.9)
        WHEN k.comparator = 'eq' THEN CASE WHEN random() < 0.6 THEN 100 ELSE 85 + random() * 15 END
        WHEN k.code = 'api_adoption' THEN 50 + random() * 50
        ELSE coalesce(k.lo, 50) * (0.75 + random() * 0.5)
    END)::numeric, 4),
    'bench', now()
FROM bench_acc a
CROSS JOIN generate_series(0, %(k_readings)s - 1) AS r
JOIN bench_kpi k ON k.segment_id = a.segment_id AND (NOT %(k_rotate)s OR k.k = r %% k.n)
WHERE pg_temp.bench_pick(a.g, 2) >= %(k_lacking)s
"""

# Mostly satisfied clients; accounts with a high g %% 8 have more detractors.
SURVEYS_SQL = """
INSERT INTO metrics_surveyresponse (tenant_id, account_id, contact_id, survey_type, score, responded_on, comment)
SELECT %(t)s, id, contact_id, survey_type,
    CASE survey_type
        WHEN 'nps' THEN CASE WHEN random() < 0.1 + (g %% 8) * 0.04 THEN floor(random() * 7)
                             ELSE 7 + floor(random() * 4) END
        WHEN 'csat' THEN CASE WHEN random() < 0.15 THEN 1 + floor(random() * 3) ELSE 4 + floor(random() * 2) END
        ELSE CASE WHEN random() < 0.15 THEN 1 + floor(random() * 3) ELSE 4 + floor(random() * 4) END
    END,
    responded_on, ''
FROM (
    SELECT a.id, a.g, a.contact_id, (%(s_types)s::text[])[s] AS survey_type,
        %(d)s::date - (q * %(s_every)s + (a.g * 13 + s * 37) %% %(s_every)s) AS responded_on
    FROM bench_acc a
    CROSS JOIN generate_series(0, %(s_rounds)s - 1) AS q
    CROSS JOIN generate_series(1, array_length(%(s_types)s::text[], 1)) AS s
    WHERE pg_temp.bench_pick(a.g, 3) >= %(s_lacking)s AND pg_temp.bench_pick(a.g * 64 + q * 8 + s, 4) >= %(s_skipped)s
) AS x
"""

INCIDENTS_SQL = """
INSERT INTO metrics_incident (tenant_id, account_id, title, severity, opened_at, resolved_at, escalated,
                              external_ref)
SELECT %(t)s, id, 'Incident ' || g || '-' || i,
    (ARRAY['sev1', 'sev2', 'sev3', 'sev3', 'sev4'])[1 + (g + i) %% 5], opened,
    CASE WHEN random() < %(i_resolved)s THEN
        CASE WHEN %(i_by_now)s THEN least(now(), resolved) ELSE resolved END END,
    random() < %(i_escalated)s, 'INC-' || g || '-' || i
FROM (
    SELECT id, g, i, opened, opened + (1 + random() * random() * %(i_hours)s) * interval '1 hour' AS resolved
    FROM (
        SELECT a.id, a.g, i,
            %(d)s::date + time '12:00' - (1 + (a.g * 17 + i * 73) %% %(i_within)s) * interval '1 day'
                - random() * interval '10 hours' AS opened
        FROM bench_acc a CROSS JOIN generate_series(0, %(i_slots)s - 1) AS i
        WHERE pg_temp.bench_pick(a.g * 64 + i, 5) < %(i_kept)s
    ) AS o
) AS x
"""

# The nightly run sets phase and status.
JOURNEYS_SQL = """
INSERT INTO journeys_accountjourney (tenant_id, account_id, template_id, started_on, status, status_reason)
SELECT %(t)s, a.id, %(template)s, %(d)s::date - %(j_from)s - ((a.g * 11) %% %(j_span)s), 'on_track', ''
FROM bench_acc a WHERE pg_temp.bench_pick(a.g, 6) < %(j_pct)s
UNION ALL
SELECT %(t)s, a.id, %(template)s, %(d)s::date - %(j_to)s - (a.g %% 200), 'on_track', ''
FROM bench_acc a WHERE pg_temp.bench_pick(a.g, 7) < %(j_older)s
UNION ALL
SELECT %(t)s, a.id, %(template)s, %(d)s::date + 10, 'on_track', ''
FROM bench_acc a WHERE pg_temp.bench_pick(a.g, 8) < %(j_future)s
"""
# The journey an account's decisions belong to: its latest started by the benchmark day.
JOURNEYS_LINK_SQL = """
UPDATE bench_acc a SET journey_id = j.id
FROM (
    SELECT DISTINCT ON (account_id) account_id, id FROM journeys_accountjourney
    WHERE tenant_id = %(t)s AND started_on <= %(d)s::date ORDER BY account_id, started_on DESC
) AS j
WHERE j.account_id = a.id
"""

ACTIVITIES_SQL = """
INSERT INTO journeys_journeyactivity (tenant_id, journey_id, activity_id, status, due_on, completed_on)
SELECT %(t)s, id, activity_id,
    CASE WHEN done THEN 'done' WHEN r < 0.5 THEN 'in_progress' ELSE 'not_started' END,
    due, CASE WHEN done THEN least(%(d)s::date, greatest(started_on, due - floor(r * 30)::int)) END
FROM (
    SELECT j.id, pa.id AS activity_id, j.started_on, j.started_on + ph.end_day AS due, random() AS r,
           random() < CASE WHEN j.started_on + ph.end_day < %(d)s::date - 3 THEN
                                CASE WHEN pg_temp.bench_pick(a.g, 9) < %(j_late)s THEN 0.7 ELSE %(j_done_past)s END
                           WHEN j.started_on + ph.start_day < %(d)s::date THEN %(j_done_current)s ELSE 0.0 END AS done
    FROM journeys_accountjourney j
    JOIN bench_acc a ON a.id = j.account_id
    JOIN journeys_phase ph ON ph.template_id = j.template_id
    JOIN journeys_phaseactivity pa ON pa.phase_id = ph.id
    WHERE j.tenant_id = %(t)s
) AS x
"""

DECISIONS_SQL = """
INSERT INTO journeys_decision (tenant_id, account_id, journey_id, kind, title, description, owner_id, due_date,
                               fallback, customer_impact, status, resolution, resolved_at, created_at)
SELECT %(t)s, id, journey_id, CASE WHEN pg_temp.bench_pick(g * 64 + i, 11) < %(x_blocker)s THEN 'blocker'
                                   ELSE 'decision' END,
    (ARRAY['Approve data mapping', 'Choose SSO provider', 'Sign off test plan', 'Confirm go-live date'])
        [1 + (g + i) %% 4],
    '', owner_id, due, 'Proceed with the default', '', status,
    CASE WHEN status <> 'open' THEN 'Agreed with the client.' ELSE '' END,
    CASE WHEN status <> 'open' THEN least(now(), due + time '09:00' + (random() * 10 - 7) * interval '1 day') END,
    due - 30 + time '09:00'
FROM (
    SELECT a.id, a.g, i, a.journey_id, coalesce(a.owner_csm_id, (%(csms)s::int[])[1]) AS owner_id,
        %(d)s::date + %(x_ahead)s - ((a.g * 19 + i * 41) %% (%(x_back)s + %(x_ahead)s)) AS due, random() AS r
    FROM bench_acc a CROSS JOIN generate_series(0, %(x_slots)s - 1) AS i
    WHERE pg_temp.bench_pick(a.g * 64 + i, 10) < %(x_kept)s
) AS x
CROSS JOIN LATERAL (
    SELECT CASE WHEN due < %(d)s::date - 3 THEN
                CASE WHEN r < %(x_resolved)s THEN 'resolved' WHEN r < %(x_resolved)s + %(x_fallback)s THEN 'fallback'
                     ELSE 'open' END
           ELSE CASE WHEN r < %(x_early)s THEN 'resolved' ELSE 'open' END END AS status
) AS s
"""

# From obligations_from to obligations_to of the requirements applying to the account's segment.
OBLIGATIONS_SQL = """
INSERT INTO compliance_obligation (tenant_id, account_id, requirement_id, due_date, status, owner_id)
SELECT %(t)s, a.id, sr.requirement_id, %(d)s::date - 120 + ((a.g * 23 + sr.r * 53) %% %(c_due_span)s),
    'not_started', a.owner_csm_id
FROM bench_acc a JOIN bench_segreq sr ON sr.segment_id = a.segment_id
WHERE (sr.r - a.g %% sr.n + sr.n) %% sr.n
      < least(sr.n, %(c_from)s + a.g %% (%(c_to)s - %(c_from)s + 1))
"""

EVIDENCE_SQL = """
INSERT INTO compliance_evidence (tenant_id, obligation_id, file, filename, checksum_sha256, valid_from,
                                 valid_until, uploaded_at)
SELECT %(t)s, id, '', 'evidence-' || id || '.pdf', md5(id::text) || md5(id::text), valid_from,
    valid_from + 365, least(now(), valid_from + time '09:00')
FROM (
    SELECT id,
        CASE WHEN id %% 50 = 0 THEN %(d)s::date + 5
             ELSE %(d)s::date - (id * 7 %% %(c_evidence_within)s)::int END AS valid_from
    FROM compliance_obligation WHERE tenant_id = %(t)s AND pg_temp.bench_pick(id, 12) < %(c_evidence)s
) AS x
"""

AUDITS_SQL = """
INSERT INTO compliance_auditresult (tenant_id, obligation_id, audited_on, outcome, open_findings, auditor, notes)
SELECT %(t)s, id, %(d)s::date - ((id * 13 + n * 61) %% %(c_audit_within)s)::int,
    CASE WHEN failed THEN 'failed' ELSE 'passed' END,
    CASE WHEN failed THEN 1 + (id %% 3)::int ELSE 0 END, 'Bench Audit LLP', ''
FROM (
    SELECT o.id, n, random() < %(c_failed)s AS failed
    FROM compliance_obligation o CROSS JOIN generate_series(0, 1) AS n
    WHERE o.tenant_id = %(t)s AND pg_temp.bench_pick(o.id, 13) < %(c_audited)s AND (n = 0 OR o.id %% 3 = 0)
) AS x
"""


@dataclass(frozen=True)
class Step:
    label: str
    sql: str
    wanted: Callable[[Shape], bool]
    counted: bool = True  # an INSERT whose row count is printed (not a preparation)


STEPS: tuple[Step, ...] = (
    Step("accounts", ACCOUNTS_SQL, lambda s: True),
    Step("index tables", PREPARE_SQL, lambda s: True, counted=False),
    Step("CSM object permissions", GRANTS_SQL, lambda s: s.books and s.grants),
    Step("contacts", CONTACTS_SQL, lambda s: s.contacts),
    Step("  (primary contacts)", CONTACTS_LINK_SQL, lambda s: s.contacts, counted=False),
    Step("touchpoints", TOUCHPOINTS_SQL, lambda s: s.touchpoints is not None),
    Step("health history", HISTORY_SQL, lambda s: s.history is not None),
    Step("KPI measurements", KPIS_SQL, lambda s: s.kpis is not None),
    Step("survey responses", SURVEYS_SQL, lambda s: s.surveys is not None),
    Step("incidents", INCIDENTS_SQL, lambda s: s.incidents is not None),
    Step("journeys", JOURNEYS_SQL, lambda s: s.journeys is not None),
    Step("  (current journeys)", JOURNEYS_LINK_SQL, lambda s: s.journeys is not None, counted=False),
    Step("journey activities", ACTIVITIES_SQL, lambda s: s.journeys is not None),
    Step("decisions and blockers", DECISIONS_SQL, lambda s: s.decisions is not None),
    Step("obligations", OBLIGATIONS_SQL, lambda s: s.compliance is not None),
    Step("evidence", EVIDENCE_SQL, lambda s: s.compliance is not None),
    Step("audit results", AUDITS_SQL, lambda s: s.compliance is not None),
)

# Every table a shape can fill (the generator's and the audit trail's), in the order they are printed.
_TABLES: tuple[tuple[str, Callable[[Shape], bool]], ...] = (
    ("accounts_account", lambda s: True),
    ("accounts_accountuserobjectpermission", lambda s: s.books and s.grants),
    ("accounts_contact", lambda s: s.contacts),
    ("accounts_touchpoint", lambda s: s.touchpoints is not None),
    ("metrics_healthsnapshot", lambda s: s.history is not None),
    ("metrics_kpimeasurement", lambda s: s.kpis is not None),
    ("metrics_surveyresponse", lambda s: s.surveys is not None),
    ("metrics_incident", lambda s: s.incidents is not None),
    ("journeys_accountjourney", lambda s: s.journeys is not None),
    ("journeys_journeyactivity", lambda s: s.journeys is not None),
    ("journeys_decision", lambda s: s.decisions is not None),
    ("compliance_obligation", lambda s: s.compliance is not None),
    ("compliance_evidence", lambda s: s.compliance is not None),
    ("compliance_auditresult", lambda s: s.compliance is not None),
    ("audit_auditevent", lambda s: s.audit_trail),
)

# What the nightly run writes (its snapshots, statuses, escalations and their audit events).
NIGHTLY_TABLES = (
    "metrics_healthsnapshot",
    "compliance_compliancestatussnapshot",
    "compliance_obligation",
    "journeys_accountjourney",
    "journeys_decision",
    "audit_auditevent",
)


def _permille(pct: float) -> int:
    return round(pct * 10)


def _parameters(shape: Shape) -> dict[str, Any]:
    """The statements' parameters for a shape: those of the kinds it has."""
    cycle = [position for position, weight in enumerate(shape.segment_mix, start=1) for _ in range(weight)]
    params: dict[str, Any] = {"n": shape.accounts, "cycle": cycle, "books": shape.books}
    if (history := shape.history) is not None:
        backs = sorted(history.days_back, reverse=True)  # oldest first
        present = set(backs)
        params.update(
            h_back=backs,
            h_has_7=[back + 7 in present for back in backs],
            h_has_30=[back + 30 in present for back in backs],
            h_lacking=_permille(history.lacking_pct),
            h_components=history.components,
            h_fixed=history.fixed_components,
        )
    if (touchpoints := shape.touchpoints) is not None:
        params.update(
            tp_count=touchpoints.per_account,
            tp_every=touchpoints.every_days,
            tp_qbr_every=max(1, round(91 / touchpoints.every_days)),
        )
    if (kpis := shape.kpis) is not None:
        params.update(
            k_readings=kpis.readings,
            k_every=kpis.every_days,
            k_rotate=kpis.one_kpi_per_reading,
            k_lacking=_permille(kpis.lacking_pct),
        )
    if (surveys := shape.surveys) is not None:
        params.update(
            s_rounds=surveys.rounds,
            s_every=surveys.every_days,
            s_types=list(surveys.types),
            s_skipped=_permille(surveys.skipped_pct),
            s_lacking=_permille(surveys.lacking_pct),
        )
    if (incidents := shape.incidents) is not None:
        params.update(
            i_slots=incidents.slots,
            i_kept=_permille(incidents.kept_pct),
            i_within=incidents.within_days,
            i_resolved=incidents.resolved_pct / 100,
            i_hours=incidents.resolution_hours,
            i_by_now=incidents.resolved_by_now,
            i_escalated=incidents.escalated_pct / 100,
        )
    if (journeys := shape.journeys) is not None:
        first, last = journeys.started_days_ago
        params.update(
            j_pct=_permille(journeys.pct),
            j_from=first,
            j_to=last,
            j_span=last - first,
            j_older=_permille(journeys.older_pct),
            j_future=_permille(journeys.future_pct),
            j_done_past=journeys.done_past_due_pct / 100,
            j_done_current=journeys.done_current_pct / 100,
            j_late=_permille(journeys.late_accounts_pct),
        )
    if (decisions := shape.decisions) is not None:
        params.update(
            x_slots=decisions.slots,
            x_kept=_permille(decisions.kept_pct),
            x_back=decisions.days_back,
            x_ahead=decisions.days_ahead,
            x_resolved=decisions.resolved_pct / 100,
            x_fallback=decisions.fallback_pct / 100,
            x_early=decisions.resolved_early_pct / 100,
            x_blocker=_permille(decisions.blocker_pct),
        )
    if (compliance := shape.compliance) is not None:
        params.update(
            c_from=compliance.obligations[0],
            c_to=compliance.obligations[1],
            c_due_span=compliance.due_span_days,
            c_evidence=_permille(compliance.evidence_pct),
            c_evidence_within=compliance.evidence_within_days,
            c_audited=_permille(compliance.audited_pct),
            c_failed=compliance.failed_pct / 100,
            c_audit_within=compliance.audit_within_days,
        )
    return params


@dataclass
class Generated:
    rows: dict[str, int]  # step label -> rows written
    defaulted: list[tuple[str, str]]  # (table, column): NOT NULL columns the INSERTs lack (temporary_defaults)


def generate(
    owner,
    *,
    tenant,
    users: dict[str, list[int]],
    shape: Shape,
    day: datetime.date,
    seed: int,
    only: Sequence[str] = (),
    foreign_key_checks: bool = False,
) -> Generated:
    """Write the shape's rows for the tenant (whose members are `users`, from create_tenant) with
    set-based SQL on the owner connection, in one transaction, then its audit trail as the app role;
    prints each step. `only` limits it to those steps (and "index tables"):
    e.g. a later day's snapshots of a dataset. Without foreign_key_checks (and as a superuser) the
    per-row foreign-key triggers are skipped."""
    from cs_platform.tenancy import context
    from journeys.models import JourneyTemplate
    from segments.models import Segment

    with context.tenant_context(tenant):
        segments = list(Segment.objects.order_by("sort_order", "pk").values_list("pk", flat=True))
        template = JourneyTemplate.objects.filter(is_default=True).values_list("pk", flat=True).first()
    with owner.cursor() as cursor:
        cursor.execute(
            "SELECT p.id FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id "
            "WHERE ct.app_label = 'accounts' AND ct.model = 'account' "
            "AND p.codename IN ('view_account', 'change_account', 'manage_account') ORDER BY p.id"
        )
        perms = [r[0] for r in cursor.fetchall()]
    if len(segments) != len(shape.segment_mix) or len(perms) != 3 or template is None:
        raise RuntimeError(
            f"datagen: expected {len(shape.segment_mix)} segments, 3 account permissions and a default journey "
            f"template (seed 000), found {segments}, {perms} and {template}"
        )
    steps = [s for s in STEPS if s.wanted(shape) and (not only or s.label in only or s.sql is PREPARE_SQL)]
    csms = users.get("csm", [])
    if not csms and any(s.sql is DECISIONS_SQL or (s.sql is ACCOUNTS_SQL and shape.books) for s in steps):
        raise RuntimeError("datagen: books and decisions need at least one CSM (Members.csms)")
    params = {
        "t": tenant.pk,
        "d": day,
        "segments": segments,
        "csms": csms,
        "template": template,
        "perms": perms,
        **_parameters(shape),
    }
    # One transaction of our own: SET LOCAL and the temporary defaults end with it.
    owner.commit()
    autocommit, owner.autocommit = owner.autocommit, False
    try:
        generated = _run(owner, steps, params, seed=seed, foreign_key_checks=foreign_key_checks)
    finally:
        owner.rollback()  # after a failure; nothing left to roll back after the commit
        owner.autocommit = autocommit
    if shape.audit_trail and (not only or "audit trail" in only):
        started = time.perf_counter()
        events = generated.rows["audit trail"] = audit_trail(tenant=tenant, admin_id=users["admin"][0])
        row("  audit events (audit_record_many, app role)", f"{events:,}", _since(started))
    return generated


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


def _run(owner, steps: list[Step], params: dict[str, Any], *, seed: int, foreign_key_checks: bool) -> Generated:
    written: dict[str, int] = {}
    with owner.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        if not foreign_key_checks:
            cursor.execute("SAVEPOINT replica")
            try:
                # Skip the per-row foreign-key triggers: the data is consistent by construction (superuser only).
                cursor.execute("SET LOCAL session_replication_role = replica")
            except Exception:  # not a superuser: keep the foreign-key checks, only slower
                cursor.execute("ROLLBACK TO SAVEPOINT replica")
        cursor.execute("SELECT setseed(%s)", [(seed % 1000) / 1000.0])
        filled = temporary_defaults(cursor, [(s.label, s.sql) for s in steps])
        if filled:
            row(
                "  new NOT NULL columns given empty values",
                str(len(filled)),
                ", ".join(f"{table}.{column}" for table, column in filled),
            )
        for step in steps:
            started = time.perf_counter()
            cursor.execute(step.sql, params)
            if step.counted:
                written[step.label] = max(cursor.rowcount, 0)
                row(f"  {step.label}", f"{written[step.label]:,}", _since(started))
            elif step.sql is PREPARE_SQL:
                row(f"  {step.label}", "", _since(started))
        cursor.execute("DROP TABLE bench_acc, bench_kpi, bench_segreq")
        if filled:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE waits for no foreign-key check
            drop_temporary_defaults(cursor, filled)
    owner.commit()
    return Generated(rows=written, defaulted=filled)


def audit_trail(*, tenant, admin_id: int, batch: int = 5000) -> int:
    """What the services would have recorded for the generated data: per account its creation (and the
    CSM grant when it has an owner), per decision its creation. Through audit_record_many (the real hash
    chain), as the app role, in batches."""
    from django.contrib.auth import get_user_model

    from accounts.models import Account
    from cs_platform.audit.services import audit_record_many
    from cs_platform.tenancy import context
    from journeys.models import Decision

    actor = get_user_model().objects.get(pk=admin_id)
    written = 0
    with context.tenant_context(tenant):
        events: list[dict[str, Any]] = []
        for pk, name, segment_id, owner_id in Account.objects.order_by("pk").values_list(
            "pk", "name", "segment_id", "owner_csm_id"
        ):
            events.append(
                {
                    "action": "account.create",
                    "object_type": "accounts.account",
                    "object_id": pk,
                    "after": {"name": name, "segment": segment_id, "owner_csm": owner_id},
                }
            )
            if owner_id is not None:
                events.append(
                    {
                        "action": "account.grant_csm",
                        "object_type": "accounts.account",
                        "object_id": pk,
                        "after": {
                            "user": owner_id,
                            "permissions": ["view_account", "change_account", "manage_account"],
                        },
                    }
                )
        for pk, account_id, title, due in Decision.objects.order_by("pk").values_list(
            "pk", "account_id", "title", "due_date"
        ):
            events.append(
                {
                    "action": "decision.create",
                    "object_type": "journeys.decision",
                    "object_id": pk,
                    "after": {"account": account_id, "title": title, "due_date": due},
                }
            )
        for start in range(0, len(events), batch):
            written += audit_record_many(tenant=tenant, actor=actor, events=events[start : start + batch])
    return written


# --- What the real jobs derive from the rows ------------------------------------------------------------------
def nightly(*, tenant, day: datetime.date) -> tuple[float, dict]:
    """The real nightly job for the day, as the app role: the day's snapshots, compliance and journey
    status, escalations. (seconds, its summary)"""
    from nightly.pipeline import run_tenant

    started = time.perf_counter()
    summary = run_tenant(tenant=tenant, day=day)
    return time.perf_counter() - started, summary


def segment_history(*, tenant, day: datetime.date) -> tuple[float, int]:
    """The per-segment snapshots of `day` and of the 12 earlier weekly nightly runs (the band trend reads
    13 weekly dates), computed from the generated year of health snapshots by the real service, as
    those runs' last step would have; dates already stored are skipped, so a reused dataset pays once."""
    from cs_platform.tenancy import context
    from dashboards.models import SegmentSnapshot
    from dashboards.services import segment_snapshots_compute

    started = time.perf_counter()
    dates = [day - datetime.timedelta(days=7 * week) for week in range(13)]
    with context.tenant_context(tenant):
        done = set(SegmentSnapshot.objects.filter(snapshot_date__in=dates).values_list("snapshot_date", flat=True))
    todo = [d for d in dates if d not in done]
    for past in todo:
        segment_snapshots_compute(tenant=tenant, day=past)
    return time.perf_counter() - started, len(todo)


def build_tenant(owner, *, name: str, slug: str, shape: Shape, day: datetime.date, seed: int) -> dict[str, Any]:
    """A tenant as the dashboards see it: created with its members, the shape's rows, the audit trail,
    VACUUM ANALYZE, then the real nightly run for the day. Its description for bench_meta."""
    heading(f"Dataset: {name} ({shape.accounts:,} accounts, a year up to {day})")
    started = time.perf_counter()
    tenant, users = create_tenant(name=name, slug=slug, members=shape.members)
    members = sum(len(ids) for ids in users.values())
    row(f"tenant + {members} members (tenant_create, membership_create)", f"{time.perf_counter() - started:.1f} s")
    step = time.perf_counter()
    generate(owner, tenant=tenant, users=users, shape=shape, day=day, seed=seed)
    row("set-based SQL as the owner" + (", audit trail" if shape.audit_trail else ""), _since(step))
    step = time.perf_counter()
    tables = shape.tables() + NIGHTLY_TABLES
    vacuum_analyze(owner, dict.fromkeys(tables))
    row("VACUUM ANALYZE", f"{time.perf_counter() - step:.1f} s")
    seconds, summary = nightly(tenant=tenant, day=day)
    health = summary.get("health", {})
    row(
        f"nightly run_tenant for {day} (app role)",
        f"{seconds:.1f} s",
        f"{health.get('accounts', 0):,} snapshots, bands {health.get('bands', {})}",
    )
    vacuum_analyze(owner, dict.fromkeys(tables))
    elapsed = time.perf_counter() - started
    row("generation in all", f"{elapsed:.1f} s")
    return {
        "tenant_id": tenant.pk,
        "slug": slug,
        "accounts": shape.accounts,
        "users": users,
        "day": day.isoformat(),
        "generation_seconds": round(elapsed, 1),
        "nightly_days": [day.isoformat()],
    }


def table_counts(owner, tenant_id: int, tables: Sequence[str]) -> dict[str, int]:
    counts = {}
    with owner.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant_id])  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    owner.commit()
    return counts


# --- Columns added to the models since --------------------------------------------------------------------------
_EMPTY_BY_TYPE = {
    "character varying": "''",
    "text": "''",
    "integer": "0",
    "bigint": "0",
    "smallint": "0",
    "numeric": "0",
    "double precision": "0",
    "boolean": "false",
    "jsonb": "'{}'",
    "date": "current_date",
    "timestamp with time zone": "now()",
}


def temporary_defaults(cursor, statements) -> list[tuple[str, str]]:
    """Columns added to the models since the generator was written (NOT NULL, no database default, not
    in its INSERTs, the (label, SQL) pairs `statements`: Django's blank CharFields, for instance) get an
    empty default, so the benchmarks keep working while the schema grows. The caller drops them again
    (drop_temporary_defaults) before committing."""
    written: dict[str, set[str]] = {}
    for _, statement in statements:
        for table, columns in re.findall(r"INSERT INTO (\w+)\s*\(([^)]*)\)", statement):
            written.setdefault(table, set()).update(c.strip() for c in columns.split(","))
    cursor.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = ANY(%s) AND is_nullable = 'NO' AND column_default IS NULL "
        "AND is_identity = 'NO'",
        [list(written)],
    )
    filled = []
    for table, column, data_type in cursor.fetchall():
        if column not in written[table] and data_type in _EMPTY_BY_TYPE:
            cursor.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET DEFAULT {_EMPTY_BY_TYPE[data_type]}')
            filled.append((table, column))
    return filled


def drop_temporary_defaults(cursor, filled: list[tuple[str, str]]) -> None:
    for table, column in filled:
        cursor.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" DROP DEFAULT')
