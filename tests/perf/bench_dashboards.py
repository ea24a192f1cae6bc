#!/usr/bin/env python
"""Benchmark of the dashboards (DESIGN.md "Performance targets", issue #4).

Target: for a tenant with 10,000 accounts and a year of data, the median server time of home (CSM
and executive), segment scorecard and account 360 over 50 requests each is under 150 ms, and each
page's query count does not grow with the number of accounts.

    make bench                                                        # every tests/perf/bench_*.py
    .venv/bin/python tests/perf/bench_dashboards.py --accounts 1000   # quick mode
    .venv/bin/python tests/perf/bench_dashboards.py --only account-csm --explain account-csm
    .venv/bin/python tests/perf/bench_dashboards.py --rebuild         # regenerate the dataset

It uses its own database (cs_platform_bench_dash, created if missing, migrated as the owner) with two
tenants built by the same generator: the measured one (--accounts, default 10,000) and a small one
(--small-accounts, default 100) whose query counts are printed beside the large one's. Data is
written with set-based SQL as the owner; every request is served as the app role (NOBYPASSRLS), so
Row-Level Security is in force as in production. Benchmarks print figures; they do not assert.
See tests/perf/README.md ("Dashboards") for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf.benchlib import (  # noqa: E402 - needs ROOT on sys.path
    bench_database,
    drop_temporary_defaults,
    heading,
    open_database,
    p95,
    read_dataset,
    row,
    say,
    setup_django,
    start,
    temporary_defaults,
    vacuum_analyze,
    write_dataset,
)

BENCH_DB = bench_database("cs_platform_bench_dash")
TARGET_MS = 150.0
# Pages the target names (DESIGN.md); the others are measured too but only reported.
TARGET_PAGES = ("home-csm", "home-exec", "segment", "account-exec", "account-csm")


@dataclass(frozen=True)
class PageSpec:
    key: str
    label: str
    role: str  # which generated user requests it: csm, executive, compliance
    path: str  # with {account_id} / {segment_id} placeholders


PAGES = {
    spec.key: spec
    for spec in (
        PageSpec("home-csm", "home, CSM (their book)", "csm", "/"),
        PageSpec("home-exec", "home, executive (portfolio)", "executive", "/"),
        PageSpec("segment", "segment scorecard, executive", "executive", "/portfolio/segments/{segment_id}/"),
        PageSpec("account-exec", "account 360, executive", "executive", "/accounts/{account_id}/"),
        PageSpec("account-csm", "account 360, owning CSM", "csm", "/accounts/{account_id}/"),
        PageSpec("portfolio", "portfolio, executive", "executive", "/portfolio/"),
        PageSpec("accounts", "account list, executive", "executive", "/accounts/"),
        PageSpec("compliance", "compliance, compliance officer", "compliance", "/compliance/"),
        # The default view (open), every decision of the tenant counted per view: ~16,000 at 10,000 accounts.
        PageSpec("decisions", "decisions, executive", "executive", "/decisions/"),
        PageSpec("decisions-csm", "decisions, CSM (their book)", "csm", "/decisions/?status=overdue"),
    )
}


# --- Command line and environment ---------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts of the measured tenant (10000)")
    parser.add_argument("--small-accounts", type=int, default=100, help="accounts of the small tenant (100)")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page (50)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first (3)")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds per page: a slower page stops after 5 timed requests or more (60)",
    )
    parser.add_argument("--rebuild", action="store_true", help="drop the benchmark database and regenerate")
    parser.add_argument("--only", choices=sorted(PAGES), help="time this page only")
    parser.add_argument("--explain", choices=sorted(PAGES), help="EXPLAIN ANALYZE this page's slowest queries")
    parser.add_argument("--explain-top", type=int, default=3, help="queries explained with --explain (3)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.accounts < 100 or args.small_accounts < 50:
        parser.error("--accounts must be at least 100 and --small-accounts at least 50")
    if args.small_accounts >= args.accounts:
        parser.error("--small-accounts must be smaller than --accounts")
    args.requests = max(1, args.requests)
    return args


# --- Output ---------------------------------------------------------------------------------------------
# --- Dataset: users -------------------------------------------------------------------------------------
N_EXECUTIVES, N_MANAGERS, N_CSMS = 2, 4, 40


def create_tenant_and_users(*, name: str, slug: str) -> tuple[Any, dict[str, list[int]]]:
    """The tenant through the real service (seed 000 segments, KPI targets, scorecards, journey template,
    frameworks and requirements) and its members: 1 admin, 2 executives, 4 managers, 40 CSMs split
    across the managers, 1 compliance officer, 1 viewer. Returns the tenant and {role: [user ids]}."""
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

    member(Role.ADMIN, 1)
    for n in range(1, N_EXECUTIVES + 1):
        member(Role.EXECUTIVE, n)
    managers = [member(Role.MANAGER, n) for n in range(1, N_MANAGERS + 1)]
    for n in range(1, N_CSMS + 1):
        member(Role.CSM, n, manager=managers[(n - 1) % N_MANAGERS])
    member(Role.COMPLIANCE, 1)
    member(Role.VIEWER, 1)
    return tenant, ids


# --- Dataset: set-based SQL -------------------------------------------------------------------------------
# Parameters: t tenant, d the benchmark day ("today"), n accounts, segments (ids, seed order), csms (user
# ids), template (default journey template), perms (view/change/manage_account permission ids).
# `(a.g * p + q) % m` patterns spread the data deterministically; random() (seeded) adds noise.
GENERATE_SQL: list[tuple[str, str]] = [
    (
        "accounts",
        # Segments unevenly (40 / 25 / 20 / 15 %), so one segment is large; CSMs in blocks of 20
        # accounts, so every book (~250 accounts at 10,000) holds every segment.
        """
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
            (%(csms)s::int[])[1 + (g / 20) %% array_length(%(csms)s::int[], 1)],
            'Sponsor ' || g,
            (ARRAY['["US-NY"]', '["US-NY", "US-CA"]', '["EU"]', '["US-TX", "EU"]'])[1 + g %% 4]::jsonb,
            (ARRAY['["SEC"]', '["SEC", "FINRA"]', '["OCC"]', '["NAIC"]'])[s]::jsonb,
            (ARRAY['["ISO 20022"]', '["FIX", "ISO 20022"]', '["OFX"]', '["XBRL"]'])[1 + (g / 7) %% 4]::jsonb,
            now(), now()
        FROM (
            SELECT g, CASE WHEN g %% 20 < 8 THEN 1 WHEN g %% 20 < 13 THEN 2 WHEN g %% 20 < 17 THEN 3 ELSE 4 END AS s
            FROM generate_series(1, %(n)s) AS g
        ) AS x
        """,
    ),
    (
        "index tables",
        """
        CREATE TEMP TABLE bench_acc AS
            SELECT id, (row_number() OVER (ORDER BY id))::int AS g, segment_id, owner_csm_id,
                   NULL::bigint AS contact_id, NULL::bigint AS journey_id
            FROM accounts_account WHERE tenant_id = %(t)s;
        ALTER TABLE bench_acc ADD PRIMARY KEY (id);
        CREATE TEMP TABLE bench_kpi AS
            SELECT id, segment_id, code, comparator, target_low::float8 AS lo, target_high::float8 AS hi
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
        """,
    ),
    (
        "CSM object permissions",
        # What accounts.services._grant_csm assigns the owner: view/change/manage_account.
        """
        INSERT INTO accounts_accountuserobjectpermission (tenant_id, permission_id, user_id, content_object_id)
        SELECT %(t)s, p, a.owner_csm_id, a.id FROM bench_acc a CROSS JOIN unnest(%(perms)s::int[]) AS p
        """,
    ),
    (
        "contacts",
        """
        INSERT INTO accounts_contact (tenant_id, account_id, name, email, phone, title, is_executive_sponsor,
                                      is_primary)
        SELECT %(t)s, a.id, (ARRAY['Alex', 'Sam', 'Jordan'])[c] || ' Contact ' || a.g,
            'contact' || c || '.' || a.g || '@client.example', '+1 555 0' || lpad((a.g %% 1000)::text, 3, '0'),
            (ARRAY['Chief Financial Officer', 'Head of Operations', 'IT Director'])[c], c = 1, c = 2
        FROM bench_acc a CROSS JOIN generate_series(1, 3) AS c
        WHERE c < 3 OR a.g %% 2 = 0;
        UPDATE bench_acc a SET contact_id = c.id
        FROM (SELECT account_id, min(id) AS id FROM accounts_contact WHERE tenant_id = %(t)s GROUP BY account_id) c
        WHERE c.account_id = a.id
        """,
    ),
    (
        "touchpoints",
        # ~2 a month for a year; QBRs every quarter; the owner CSM writes them.
        """
        INSERT INTO accounts_touchpoint (tenant_id, account_id, kind, occurred_at, subject, notes, contact_id,
                                         author_id)
        SELECT %(t)s, a.id,
            CASE WHEN i %% 6 = 0 THEN 'qbr'
                 ELSE (ARRAY['meeting', 'email', 'call', 'note', 'email'])[1 + (a.g + i) %% 5] END,
            %(d)s::date + time '10:00' - (1 + i * 15 + (a.g * 7 + i * 3) %% 12) * interval '1 day'
                - random() * interval '8 hours',
            (ARRAY['Weekly sync', 'Integration status', 'Renewal discussion', 'Support follow-up', 'Roadmap'])
                [1 + (a.g + i * 3) %% 5],
            'Generated by the dashboard benchmark.', CASE WHEN i %% 2 = 0 THEN a.contact_id END, a.owner_csm_id
        FROM bench_acc a CROSS JOIN generate_series(0, 23) AS i
        """,
    ),
    (
        "health history (365 days)",
        # A year of daily snapshots before the benchmark day (the nightly run writes the day itself):
        # each account drifts around its own level (slow wave + trend + deterministic daily noise), so
        # change_7d / change_30d are computed from the same formula. Components in the stored format
        # (metrics.models.HealthSnapshot): two present measures adding up to the total, one missing.
        """
        CREATE OR REPLACE FUNCTION pg_temp.bench_total(g int, back int) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
            SELECT round(greatest(3.0, least(99.0,
                45.0 + (g * 37 %% 50)
                + 12.0 * sin(back / (15.0 + g %% 45) + g)
                + ((g %% 9) - 4) * back / 90.0
                + 4.0 * sin(g * 12.9898 + back * 78.233)
            ))::numeric, 2)
        $$;
        -- Account by account, oldest day first: the rows reach the (tenant, account, day) index in order.
        -- The components are written as text and cast once: jsonb_build_object per row is 3x slower.
        INSERT INTO metrics_healthsnapshot (tenant_id, account_id, snapshot_date, total, band, components, change_7d,
                                            change_30d, computed_at)
        SELECT %(t)s, id, %(d)s::date - back, total,
            CASE WHEN total >= 70 THEN 'green' WHEN total < 50 THEN 'red' ELSE 'yellow' END,
            ('[{"measure": "kpi_attainment", "weight": 60, "raw": ' || total || ', "score": ' || total
             || ', "effective_weight": 66.6667, "contribution": ' || round(total * 0.666667, 4) || ', "band": "' || b
             || '", "missing": false, "facts": {"met": ' || (1 + g %% 3) || ', "of": 3, "kpis": []}}, '
             || '{"measure": "nps", "weight": 30, "raw": ' || (total * 2 - 100) || ', "score": ' || total
             || ', "effective_weight": 33.3333, "contribution": ' || round(total * 0.333333, 4) || ', "band": "' || b
             || '", "missing": false, "facts": {"n": ' || (1 + g %% 4) || '}}, '
             || '{"measure": "csat", "weight": 10, "raw": null, "score": null, "effective_weight": 0, '
             || '"contribution": 0, "band": "missing", "missing": true, "facts": {}}]')::jsonb,
            CASE WHEN back <= 358 THEN total - total_7 END,
            CASE WHEN back <= 335 THEN total - total_30 END,
            %(d)s::date - back + time '02:30'
        FROM (
            SELECT id, g, back, total, total_7, total_30,
                CASE WHEN total >= 75 THEN 'green' WHEN total < 50 THEN 'red' ELSE 'yellow' END AS b
            FROM (  -- OFFSET 0: computed once per row, not inlined at every use above
                SELECT a.id, a.g, back, pg_temp.bench_total(a.g, back) AS total,
                    pg_temp.bench_total(a.g, back + 7) AS total_7, pg_temp.bench_total(a.g, back + 30) AS total_30
                FROM (SELECT * FROM bench_acc ORDER BY id) AS a CROSS JOIN LATERAL generate_series(365, 1, -1) AS back
                OFFSET 0
            ) AS totals
        ) AS x
        """,
    ),
    (
        "KPI measurements (monthly)",
        # Every KPI of the account's segment, monthly for a year; 2 % of the accounts report none.
        """
        INSERT INTO metrics_kpimeasurement (tenant_id, account_id, kpi_id, measured_on, value, source, recorded_at)
        SELECT %(t)s, a.id, k.id, %(d)s::date - (m * 30 + a.g %% 28),
            round((CASE
                WHEN k.code IN ('customer_trust', 'client_satisfaction') THEN 3.0 + random() * 2.0
                WHEN k.comparator = 'lt' THEN k.hi * (0.55 + random() * 0.9)
                WHEN k.comparator = 'eq' THEN CASE WHEN random() < 0.6 THEN 100 ELSE 85 + random() * 15 END
                WHEN k.code = 'api_adoption' THEN 50 + random() * 50
                ELSE coalesce(k.lo, 50) * (0.75 + random() * 0.5)
            END)::numeric, 4),
            'bench', now()
        FROM bench_acc a
        JOIN bench_kpi k ON k.segment_id = a.segment_id
        CROSS JOIN generate_series(0, 11) AS m
        WHERE a.g %% 50 <> 0
        """,
    ),
    (
        "survey responses",
        # Per quarter 2 NPS and 1 CSAT, a few skipped; 5 % of the accounts never answer. Mostly
        # satisfied clients, some accounts (g %% 8 high) with more detractors.
        """
        INSERT INTO metrics_surveyresponse (tenant_id, account_id, contact_id, survey_type, score, responded_on,
                                            comment)
        SELECT %(t)s, a.id, a.contact_id, CASE WHEN s < 2 THEN 'nps' ELSE 'csat' END,
            CASE WHEN s < 2 THEN CASE WHEN random() < 0.1 + (a.g %% 8) * 0.04 THEN floor(random() * 7)
                                      ELSE 7 + floor(random() * 4) END
                 ELSE CASE WHEN random() < 0.15 THEN 1 + floor(random() * 3) ELSE 4 + floor(random() * 2) END END,
            %(d)s::date - (q * 91 + (a.g * 13 + s * 29) %% 90), ''
        FROM bench_acc a CROSS JOIN generate_series(0, 3) AS q CROSS JOIN generate_series(0, 2) AS s
        WHERE (a.g + q + s) %% 9 <> 0 AND a.g %% 20 <> 11
        """,
    ),
    (
        "incidents",
        # ~2 a year per account; 85 % resolved, mostly within 2 days, 20 % escalated.
        """
        INSERT INTO metrics_incident (tenant_id, account_id, title, severity, opened_at, resolved_at, escalated,
                                      external_ref)
        SELECT %(t)s, id, 'Incident ' || g || '-' || i,
            (ARRAY['sev1', 'sev2', 'sev3', 'sev3', 'sev4'])[1 + (g + i) %% 5], opened,
            CASE WHEN random() < 0.85
                 THEN least(now(), opened + (1 + random() * random() * 90) * interval '1 hour') END,
            random() < 0.2, 'INC-' || g || '-' || i
        FROM (
            SELECT a.id, a.g, i, %(d)s::date + time '12:00' - (1 + (a.g * 17 + i * 73) %% 365) * interval '1 day'
                   - random() * interval '10 hours' AS opened
            FROM bench_acc a CROSS JOIN generate_series(0, 4) AS i
            WHERE (a.g * 3 + i) %% 7 < 3
        ) AS x
        """,
    ),
    (
        "journeys",
        # One per account, started 5-334 days ago (the nightly run sets phase and status).
        """
        INSERT INTO journeys_accountjourney (tenant_id, account_id, template_id, started_on, status, status_reason)
        SELECT %(t)s, a.id, %(template)s, %(d)s::date - 5 - ((a.g * 11) %% 330), 'on_track', ''
        FROM bench_acc a;
        UPDATE bench_acc a SET journey_id = j.id
        FROM journeys_accountjourney j WHERE j.tenant_id = %(t)s AND j.account_id = a.id
        """,
    ),
    (
        "journey activities",
        # Every activity of the template, due at its phase's end; past-due ones done, except in one
        # account in eight (g %% 8 = 3), which struggles and runs late.
        """
        INSERT INTO journeys_journeyactivity (tenant_id, journey_id, activity_id, status, due_on, completed_on)
        SELECT %(t)s, id, activity_id,
            CASE WHEN done THEN 'done' WHEN r < 0.5 THEN 'in_progress' ELSE 'not_started' END,
            due, CASE WHEN done THEN least(%(d)s::date, greatest(started_on, due - floor(r * 30)::int)) END
        FROM (
            SELECT j.id, pa.id AS activity_id, j.started_on, j.started_on + ph.end_day AS due, random() AS r,
                   random() < CASE WHEN j.started_on + ph.end_day < %(d)s::date - 3 THEN
                                        CASE WHEN a.g %% 8 = 3 THEN 0.7 ELSE 0.997 END
                                   WHEN j.started_on + ph.start_day < %(d)s::date THEN 0.3 ELSE 0.0 END AS done
            FROM journeys_accountjourney j
            JOIN bench_acc a ON a.id = j.account_id
            JOIN journeys_phase ph ON ph.template_id = j.template_id
            JOIN journeys_phaseactivity pa ON pa.phase_id = ph.id
            WHERE j.tenant_id = %(t)s
        ) AS x
        """,
    ),
    (
        "decisions and blockers",
        # ~1.6 per account, due from 120 days ago to 30 days ahead, owned by the account's CSM. Past due:
        # 75 % resolved, 10 % fallback, the rest open (overdue; the nightly run escalates them).
        """
        INSERT INTO journeys_decision (tenant_id, account_id, journey_id, kind, title, description, owner_id, due_date,
                                       fallback, status, resolution, resolved_at, created_at)
        SELECT %(t)s, id, journey_id, CASE WHEN (g + i) %% 4 = 0 THEN 'blocker' ELSE 'decision' END,
            (ARRAY['Approve data mapping', 'Choose SSO provider', 'Sign off test plan', 'Confirm go-live date'])
                [1 + (g + i) %% 4],
            '', owner_csm_id, due, 'Proceed with the default', status,
            CASE WHEN status <> 'open' THEN 'Agreed with the client.' ELSE '' END,
            CASE WHEN status <> 'open'
                 THEN least(now(), due + time '09:00' + (random() * 10 - 7) * interval '1 day') END,
            due - 30 + time '09:00'
        FROM (
            SELECT a.id, a.g, i, a.journey_id, a.owner_csm_id, %(d)s::date + 30 - ((a.g * 19 + i * 41) %% 150) AS due,
                   random() AS r
            FROM bench_acc a CROSS JOIN generate_series(0, 3) AS i
            WHERE (a.g + i * 3) %% 5 < 2
        ) AS x
        CROSS JOIN LATERAL (
            SELECT CASE WHEN due < %(d)s::date - 3 THEN
                        CASE WHEN r < 0.75 THEN 'resolved' WHEN r < 0.85 THEN 'fallback' ELSE 'open' END
                   ELSE CASE WHEN r < 0.2 THEN 'resolved' ELSE 'open' END END AS status
        ) AS s
        """,
    ),
    (
        "obligations",
        # 3-5 of the requirements applying to the account's segment (its own or all segments).
        """
        INSERT INTO compliance_obligation (tenant_id, account_id, requirement_id, due_date, status, owner_id)
        SELECT %(t)s, a.id, sr.requirement_id, %(d)s::date - 120 + ((a.g * 23 + sr.r * 53) %% 300), 'not_started',
            a.owner_csm_id
        FROM bench_acc a JOIN bench_segreq sr ON sr.segment_id = a.segment_id
        WHERE (sr.r - a.g %% sr.n + sr.n) %% sr.n < least(sr.n, 3 + a.g %% 3)
        """,
    ),
    (
        "evidence",
        # 90 % of obligations have evidence valid for a year from 0-380 days ago (a few lapsed, some
        # expiring); ~2 % only valid in the future. No file: the checksum stands for it.
        """
        INSERT INTO compliance_evidence (tenant_id, obligation_id, file, filename, checksum_sha256, valid_from,
                                         valid_until, uploaded_at)
        SELECT %(t)s, id, '', 'evidence-' || id || '.pdf', md5(id::text) || md5(id::text), valid_from,
            valid_from + 365, least(now(), valid_from + time '09:00')
        FROM (
            SELECT id,
                CASE WHEN id %% 50 = 0 THEN %(d)s::date + 5 ELSE %(d)s::date - (id * 7 %% 380)::int END AS valid_from
            FROM compliance_obligation WHERE tenant_id = %(t)s AND id %% 10 <> 0
        ) AS x
        """,
    ),
    (
        "audit results",
        # 30 % of obligations audited once or twice; one audit in ten failed with findings.
        """
        INSERT INTO compliance_auditresult (tenant_id, obligation_id, audited_on, outcome, open_findings, auditor,
                                            notes)
        SELECT %(t)s, id, %(d)s::date - ((id * 13 + n * 61) %% 300)::int,
            CASE WHEN failed THEN 'failed' ELSE 'passed' END,
            CASE WHEN failed THEN 1 + (id %% 3)::int ELSE 0 END, 'Bench Audit LLP', ''
        FROM (
            SELECT o.id, n, random() < 0.1 AS failed
            FROM compliance_obligation o CROSS JOIN generate_series(0, 1) AS n
            WHERE o.tenant_id = %(t)s AND o.id %% 10 < 3 AND (n = 0 OR o.id %% 3 = 0)
        ) AS x
        """,
    ),
]

# What the nightly run writes.
NIGHTLY_TABLES = (
    "metrics_healthsnapshot",
    "compliance_compliancestatussnapshot",
    "compliance_obligation",
    "journeys_accountjourney",
    "journeys_decision",
    "audit_auditevent",
)
DATA_TABLES = (
    "accounts_account",
    "accounts_accountuserobjectpermission",
    "accounts_contact",
    "accounts_touchpoint",
    "metrics_healthsnapshot",
    "metrics_kpimeasurement",
    "metrics_surveyresponse",
    "metrics_incident",
    "journeys_accountjourney",
    "journeys_journeyactivity",
    "journeys_decision",
    "compliance_obligation",
    "compliance_evidence",
    "compliance_auditresult",
    "compliance_compliancestatussnapshot",
    "audit_auditevent",
)


def generate(owner, *, tenant, users: dict[str, list[int]], accounts: int, day: datetime.date, seed: int) -> None:
    """Write the tenant's accounts and a year of data with set-based SQL as the owner (a superuser:
    RLS does not apply, and the per-row foreign-key triggers are skipped; the data is consistent by
    construction)."""
    from cs_platform.tenancy import context
    from journeys.models import JourneyTemplate
    from segments.models import Segment

    with context.tenant_context(tenant):
        segments = list(Segment.objects.order_by("sort_order", "pk").values_list("pk", flat=True))
        template = JourneyTemplate.objects.get(is_default=True).pk
    with owner.cursor() as cursor:
        cursor.execute(
            "SELECT p.id FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id "
            "WHERE ct.app_label = 'accounts' AND ct.model = 'account' "
            "AND p.codename IN ('view_account', 'change_account', 'manage_account') ORDER BY p.id"
        )
        perms = [r[0] for r in cursor.fetchall()]
    if len(segments) != 4 or len(perms) != 3:
        sys.exit(f"bench_dashboards: expected 4 segments and 3 account permissions, found {segments} and {perms}")
    params = {
        "t": tenant.pk,
        "d": day,
        "n": accounts,
        "segments": segments,
        "csms": users["csm"],
        "template": template,
        "perms": perms,
    }
    with owner.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        cursor.execute("SELECT setseed(%s)", [(seed % 1000) / 1000.0])
        cursor.execute("SET LOCAL session_replication_role = replica")
        filled = temporary_defaults(cursor, GENERATE_SQL)
        if filled:
            row(
                "  new NOT NULL columns given empty values",
                str(len(filled)),
                ", ".join(f"{table}.{column}" for table, column in filled),
            )
        for label, statement in GENERATE_SQL:
            step = time.perf_counter()
            cursor.execute(statement, params)
            # (a step of several statements reports the last one's count: leave it out)
            count = cursor.rowcount if cursor.rowcount and cursor.rowcount > 0 and ";" not in statement else 0
            row(f"  {label}", f"{count:,}" if count else "", f"{time.perf_counter() - step:.1f} s")
        cursor.execute("DROP TABLE bench_acc, bench_kpi, bench_segreq")
        drop_temporary_defaults(cursor, filled)
    owner.commit()


def audit_trail(*, tenant, admin_id: int, batch: int = 5000) -> int:
    """What the services would have recorded for the generated data: per account its creation and the
    CSM grant, per decision its creation. Through audit_record_many (the real hash chain), as the app
    role, in batches."""
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
            events.append(
                {
                    "action": "account.grant_csm",
                    "object_type": "accounts.account",
                    "object_id": pk,
                    "after": {"user": owner_id, "permissions": ["view_account", "change_account", "manage_account"]},
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


def nightly(*, tenant, day: datetime.date) -> tuple[float, dict]:
    """The real nightly job for the day, as the app role: today's snapshots, compliance and journey
    status, escalations."""
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


def build_tenant(owner, *, name: str, slug: str, accounts: int, day: datetime.date, seed: int) -> dict[str, Any]:
    heading(f"Dataset: {name} ({accounts:,} accounts, a year up to {day})")
    started = time.perf_counter()
    tenant, users = create_tenant_and_users(name=name, slug=slug)
    row("tenant + 49 members (tenant_create, membership_create)", f"{time.perf_counter() - started:.1f} s")
    step = time.perf_counter()
    generate(owner, tenant=tenant, users=users, accounts=accounts, day=day, seed=seed)
    row("set-based SQL as the owner", f"{time.perf_counter() - step:.1f} s")
    step = time.perf_counter()
    written = audit_trail(tenant=tenant, admin_id=users["admin"][0])
    row("audit events (audit_record_many, app role)", f"{written:,}", f"{time.perf_counter() - step:.1f} s")
    step = time.perf_counter()
    vacuum_analyze(owner, DATA_TABLES)
    row("VACUUM ANALYZE", f"{time.perf_counter() - step:.1f} s")
    seconds, summary = nightly(tenant=tenant, day=day)
    health = summary.get("health", {})
    row(
        f"nightly run_tenant for {day} (app role)",
        f"{seconds:.1f} s",
        f"{health.get('accounts', 0):,} snapshots, bands {health.get('bands', {})}",
    )
    vacuum_analyze(owner, DATA_TABLES)
    elapsed = time.perf_counter() - started
    row("generation in all", f"{elapsed:.1f} s")
    return {
        "tenant_id": tenant.pk,
        "slug": slug,
        "accounts": accounts,
        "users": users,
        "day": day.isoformat(),
        "generation_seconds": round(elapsed, 1),
        "nightly_days": [day.isoformat()],
    }


def dataset_counts(owner, tenant_id: int) -> dict[str, int]:
    counts = {}
    with owner.cursor() as cursor:
        for table in DATA_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant_id])  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    owner.commit()
    return counts


# --- The pages' arguments ------------------------------------------------------------------------------
@dataclass
class Target:
    """One tenant's users and the URLs each page is requested at."""

    name: str
    tenant_id: int
    users: dict[str, int]  # role -> user id
    urls: dict[str, list[str]] = field(default_factory=dict)


def page_targets(owner, info: dict[str, Any], *, label: str, spread: int = 50) -> Target:
    """The requesting users (the first CSM, executive and compliance officer) and the URLs: the
    largest segment; for account 360, `spread` accounts of the CSM's book (the executive sees
    `spread` accounts spread over the whole tenant)."""
    tenant_id = info["tenant_id"]
    csm = info["users"]["csm"][0]
    with owner.cursor() as cursor:
        cursor.execute(
            "SELECT segment_id FROM accounts_account WHERE tenant_id = %s GROUP BY segment_id "
            "ORDER BY count(*) DESC, segment_id LIMIT 1",
            [tenant_id],
        )
        segment_id = cursor.fetchone()[0]
        cursor.execute(
            "SELECT id FROM accounts_account WHERE tenant_id = %s AND owner_csm_id = %s ORDER BY id", [tenant_id, csm]
        )
        book = [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT id FROM accounts_account WHERE tenant_id = %s ORDER BY id", [tenant_id])
        every = [r[0] for r in cursor.fetchall()]
    owner.commit()

    def spread_over(ids: list[int]) -> list[int]:
        step = max(1, len(ids) // spread)
        return ids[::step][:spread]

    target = Target(
        name=label,
        tenant_id=tenant_id,
        users={"csm": csm, "executive": info["users"]["executive"][0], "compliance": info["users"]["compliance"][0]},
    )
    for key, spec in PAGES.items():
        if "{account_id}" in spec.path:
            ids = spread_over(book if spec.role == "csm" else every)
            target.urls[key] = [spec.path.format(account_id=pk) for pk in ids]
        else:
            target.urls[key] = [spec.path.format(segment_id=segment_id)]
    return target


# --- Requests -------------------------------------------------------------------------------------------------
@dataclass
class PageResult:
    key: str
    times_ms: list[float] = field(default_factory=list)
    queries: int | None = None
    small_queries: int | None = None
    error: str = ""
    slowest: list[tuple[float, str]] = field(default_factory=list)  # (ms, sql) of the counted request
    bytes: int = 0

    def stat(self, name: str) -> float:
        values = sorted(self.times_ms)
        if name == "median":
            return statistics.median(values)
        if name == "p95":
            return p95(values)
        return values[0] if name == "min" else values[-1]


class PageError(Exception):
    pass


def client_for(user_id: int):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return client


def fetch(client, url: str):
    """One request; a status other than 200 or an exception raises PageError with what to show."""
    try:
        response = client.get(url)
    except Exception as exc:  # the page is being built: report it and carry on
        frames = traceback.format_exception(exc)
        raise PageError(f"exception {type(exc).__name__}: {exc}\n" + "".join(frames[-4:]).rstrip()) from exc
    if response.status_code != 200:
        body = response.content.decode("utf-8", "replace").strip().splitlines()
        location = f" -> {response.get('Location')}" if response.get("Location") else ""
        raise PageError(f"status {response.status_code}{location}\n" + "\n".join(line[:160] for line in body[:8]))
    return response


_SET_PREFIX = re.compile(r"^SELECT set_config\('app\.tenant_id'.*?; ", re.S)


def count_queries(client, url: str) -> tuple[int, list[tuple[float, str]], int]:
    """Query count of one request (CaptureQueriesContext), with each query's time and SQL."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = fetch(client, url)
    timed = [(float(q["time"]) * 1000.0, _SET_PREFIX.sub("", q["sql"])) for q in captured.captured_queries]
    return len(captured.captured_queries), sorted(timed, key=lambda item: -item[0]), len(response.content)


def measure_page(key: str, big: Target, small: Target, *, requests: int, warmup: int, budget: float) -> PageResult:
    result = PageResult(key)
    spec = PAGES[key]
    urls = big.urls[key]
    try:
        client = client_for(big.users[spec.role])
        warmed = time.perf_counter()
        for i in range(warmup):
            fetch(client, urls[i % len(urls)])
            if time.perf_counter() - warmed > budget / 4:
                break  # a page taking seconds is warm after one request
        for i in range(requests):
            url = urls[(i + warmup) % len(urls)]
            started = time.perf_counter()
            fetch(client, url)
            result.times_ms.append((time.perf_counter() - started) * 1000.0)
            if len(result.times_ms) >= 5 and sum(result.times_ms) > budget * 1000.0:
                break  # a page taking seconds says enough in 5 requests; the count is printed
        result.queries, result.slowest, result.bytes = count_queries(client, urls[0])
        small_client = client_for(small.users[spec.role])
        fetch(small_client, small.urls[key][0])  # warm, like the large tenant's
        result.small_queries, _, _ = count_queries(small_client, small.urls[key][0])
    except PageError as exc:
        result.error = str(exc)
    return result


def explain(result: PageResult, *, tenant_id: int, top: int) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the page's slowest queries, as the app role under RLS, in a
    transaction that is rolled back."""
    from django.db import connection, transaction

    from cs_platform.tenancy import context

    heading(f"EXPLAIN ANALYZE: {PAGES[result.key].label}, the {top} slowest queries of one request")
    for ms, sql in result.slowest[:top]:
        say(f"-- {ms:.1f} ms: {sql[:600]}{' ...' if len(sql) > 600 else ''}")
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            say("   (not a SELECT: not explained)")
            continue
        try:
            with context.tenant_context(tenant_id), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                for (line,) in cursor.fetchall():
                    say(f"   {line}")
                transaction.set_rollback(True)
        except Exception as exc:  # a statement psycopg2 would not take back as text: say so and go on
            say(f"   (could not explain: {type(exc).__name__}: {str(exc).strip()[:200]})")
        say()


# --- Main ----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, owner_url = start(
        script="bench_dashboards",
        database=BENCH_DB,
        title=f"Dashboard benchmark: {args.accounts:,} accounts (and {args.small_accounts}), database {BENCH_DB}",
    )
    wanted = {"big": args.accounts, "small": args.small_accounts, "seed": args.seed}

    def unfit(meta: dict) -> str | None:
        if meta and {k: meta.get(k) for k in wanted} == wanted and "tenants" in meta:
            return None
        return f"the dataset is {({k: meta.get(k) for k in wanted}) if meta else 'missing'}, {wanted} asked for"

    owner, meta = open_database(
        owner_url,
        database=BENCH_DB,
        script="bench_dashboards",
        rebuild=args.rebuild,
        read_meta=read_dataset,
        unfit=unfit,
    )
    reuse = bool(meta)

    seconds = setup_django(test_client=True)
    read_dataset(owner)  # creates bench_meta in a database just created
    row("migrate + create_app_role", f"{seconds:.1f} s")
    from cs_platform.tenancy.models import Tenant

    today = datetime.date.today()
    if reuse:
        heading("Dataset")
        for info in meta["tenants"].values():
            row(
                f"reused: {info['slug']} (--rebuild to regenerate)",
                f"{info['accounts']:,}",
                f"generated in {info['generation_seconds']} s for {info['day']}",
            )
            if today.isoformat() not in info["nightly_days"]:
                # Pages read "today": give them today's snapshots and statuses, as the real job would.
                seconds, _ = nightly(tenant=Tenant.objects.get(pk=info["tenant_id"]), day=today)
                info["nightly_days"].append(today.isoformat())
                row(
                    f"  nightly run_tenant for {today}", f"{seconds:.1f} s", "(the dataset was built on an earlier day)"
                )
                vacuum_analyze(owner, NIGHTLY_TABLES)
        write_dataset(owner, meta)
    else:
        started = time.perf_counter()
        meta = dict(wanted, tenants={})
        meta["tenants"]["big"] = build_tenant(
            owner, name="Dashboard Bench", slug="dash-bench", accounts=args.accounts, day=today, seed=args.seed
        )
        meta["tenants"]["small"] = build_tenant(
            owner,
            name="Dashboard Bench Small",
            slug="dash-small",
            accounts=args.small_accounts,
            day=today,
            seed=args.seed,
        )
        meta["generation_seconds"] = round(time.perf_counter() - started, 1)
        write_dataset(owner, meta)
        heading("Dataset")
        row("generated, both tenants", f"{meta['generation_seconds']:.1f} s")
    for info in meta["tenants"].values():
        seconds, added = segment_history(tenant=Tenant.objects.get(pk=info["tenant_id"]), day=today)
        if added:
            row(f"  segment snapshots of {added} weekly dates ({info['slug']})", f"{seconds:.1f} s")
    counts = dataset_counts(owner, meta["tenants"]["big"]["tenant_id"])
    for table, count in counts.items():
        row(f"  {table}", f"{count:,}")
    with owner.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        row("  database size (both tenants)", f"{cursor.fetchone()[0] / 2**20:,.0f} MiB")
    owner.commit()

    big = page_targets(owner, meta["tenants"]["big"], label="big")
    small = page_targets(owner, meta["tenants"]["small"], label="small")
    keys = [args.only] if args.only else list(PAGES)
    if args.explain and args.explain not in keys:
        keys.append(args.explain)

    heading(
        f"Server time of {args.requests} requests per page after {args.warmup} warm-up (django.test.Client, app role)"
    )
    results: list[PageResult] = []
    for key in keys:
        result = measure_page(key, big, small, requests=args.requests, warmup=args.warmup, budget=args.budget)
        results.append(result)
        spec = PAGES[key]
        if result.error:
            say(f"  {spec.label:<34} {spec.path:<34} FAILED: {result.error.splitlines()[0]}")
            for line in result.error.splitlines()[1:]:
                say(f"      {line}")
            continue
        say(
            f"  {spec.label:<34} {spec.path:<34} median {result.stat('median'):6.1f} ms, "
            f"{result.queries} queries (small tenant: {result.small_queries}), "
            f"{result.bytes / 1024:.0f} KiB"
        )

    heading(
        f"Summary ({args.accounts:,} accounts; query counts at {args.accounts:,} and {args.small_accounts} accounts)"
    )
    say(f"  {'page':<34} {'median':>8} {'p95':>8} {'min':>8} {'max':>8} {'n':>4} {'queries':>8} {'(small)':>8}  target")
    for result in results:
        spec = PAGES[result.key]
        if result.error:
            say(f"  {spec.label:<34} {'error: ' + result.error.splitlines()[0]}")
            continue
        median = result.stat("median")
        verdict = ("met" if median < TARGET_MS else "MISSED") if result.key in TARGET_PAGES else "(not a target)"
        grows = "" if result.queries == result.small_queries else "  QUERY COUNT DIFFERS"
        say(
            f"  {spec.label:<34} {median:8.1f} {result.stat('p95'):8.1f} {result.stat('min'):8.1f} "
            f"{result.stat('max'):8.1f} {len(result.times_ms):>4} {result.queries:>8} {result.small_queries:>8}  "
            f"median < {TARGET_MS:.0f} ms {verdict}{grows}"
        )
    say("  (times in ms, wall clock around client.get: the whole Django stack, middleware and template included;")
    say(f"   n = timed requests: fewer than {args.requests} when a page used up its --budget of {args.budget:.0f} s)")

    slow = [r for r in results if not r.error and r.stat("median") >= TARGET_MS]
    for result in slow:
        heading(f"Slowest queries of one request: {PAGES[result.key].label}")
        total = sum(ms for ms, _ in result.slowest)
        say(f"  {len(result.slowest)} queries, {total:.1f} ms in SQL of {result.stat('median'):.1f} ms median")
        for ms, sql in result.slowest[:5]:
            say(f"  {ms:7.1f} ms  {' '.join(sql.split())[:220]}")
    if args.explain:
        found = next((r for r in results if r.key == args.explain and not r.error), None)
        if found is None:
            say(f"\n  --explain {args.explain}: the page did not answer 200, nothing to explain")
        else:
            explain(found, tenant_id=big.tenant_id, top=args.explain_top)
    owner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
