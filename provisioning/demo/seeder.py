"""Demo data: two customer-success tenants serving financial institutions, with a year of history.

`seed_demo()` is what `python manage.py seed_demo` runs; the words it draws from are in
`provisioning.demo.vocabulary` (the command only parses options and prints).

* Deterministic: every random choice comes from one `random.Random` per tenant, seeded with
  ``f"{seed}:{slug}"``, so the same `seed` and `today` give identical data, and a tenant's data does
  not depend on whether the other tenant was seeded in the same run.
* Idempotent: a tenant whose slug exists is skipped; users are get-or-create by username.
* Low-volume writes (tenants, users, memberships, accounts, CSM assignments) go through the services,
  which validate and audit each one. The high-volume rows are written with `bulk_create`, one bulk
  write per model and tenant, each accompanied by exactly one audit event ``demo.bulk_create`` whose
  `after` holds the row count and a SHA-256 over the rows' key fields (see `rows_digest`), so the
  audit trail pins down what was loaded and the digest can be recomputed from the database.
* No health snapshots and no compliance status snapshots: the nightly engines compute those.
"""

from __future__ import annotations

import base64
import calendar
import functools
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import models, transaction
from django.utils.text import slugify

from accounts.models import Account, Contact, LifecycleStage, Tier, Touchpoint, TouchpointKind
from accounts.services import account_assign_csm, account_create
from compliance.models import AuditOutcome, AuditResult, Evidence, Obligation, ObligationStatus, Requirement
from cs_platform.audit.models import AuditEvent
from cs_platform.audit.services import audit_record
from cs_platform.identity.services import membership_create, mfa_fixed_credentials_install
from cs_platform.tenancy.context import tenant_context
from cs_platform.tenancy.models import Membership, Role, Tenant
from journeys.models import (
    AccountJourney,
    ActivityStatus,
    Decision,
    DecisionKind,
    DecisionStatus,
    JourneyActivity,
    JourneyStatus,
    JourneyTemplate,
    Phase,
    PhaseActivity,
)
from metrics.models import Incident, KpiMeasurement, Severity, SurveyResponse, SurveyType
from provisioning.demo.vocabulary import (
    ACTIVITY_DONE,
    AUDITORS,
    BANK_SUFFIXES,
    BIG_TIERS,
    BLOCKERS,
    COMPLIANCE_TOPICS,
    CONTACT_TITLES,
    CUSTOMER_IMPACTS,
    DATA_STANDARD_ODDS,
    DECISION_DESCRIPTIONS,
    DECISION_STATES,
    DECISIONS,
    EU_FINTECH_REGULATORS,
    FINDINGS,
    FINTECH_PREFIXES,
    FINTECH_STEMS,
    FINTECH_SUFFIXES,
    FIRST_NAMES,
    INCIDENT_TITLES,
    INSURER_SUFFIXES,
    INSURER_WORDS,
    JOURNEY_DAYS,
    JOURNEY_MIX,
    LAST_NAMES,
    NAME_QUALIFIERS,
    OBLIGATION_STATUS_WEIGHTS,
    OBLIGATION_STATUSES,
    PLACES,
    PROFILE_LEVELS,
    PROFILE_MIX,
    RESOLUTIONS,
    SEGMENT_ARR_FACTOR,
    SEGMENT_MIX,
    SEVERITY_ESCALATION,
    SEVERITY_HOURS,
    SEVERITY_MIX,
    SPONSOR_TITLES,
    SURVEY_COMMENTS,
    TIER_ARR,
    TIER_MIX,
    TOUCHPOINT_NOTES,
    TOUCHPOINT_SUBJECTS,
    UNFINISHED_JOURNEY_DAYS,
    US_STATES,
    WEALTH_NAMES,
    WEALTH_SUFFIXES,
)
from provisioning.services import tenant_create
from segments import reference
from segments.models import KpiDefinition, Segment

# The key fields hashed into each bulk write's audit event.
DIGEST_FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    Contact: ("id", "account_id", "name", "email", "is_executive_sponsor"),
    Incident: ("id", "account_id", "severity", "opened_at", "resolved_at", "escalated", "external_ref"),
    Touchpoint: ("id", "account_id", "kind", "occurred_at", "subject"),
    KpiMeasurement: ("id", "account_id", "kpi_id", "measured_on", "value"),
    SurveyResponse: ("id", "account_id", "survey_type", "score", "responded_on"),
    AccountJourney: ("id", "account_id", "template_id", "started_on", "status", "current_phase_id"),
    JourneyActivity: ("id", "journey_id", "activity_id", "status", "due_on", "completed_on"),
    Decision: ("id", "account_id", "kind", "owner_id", "due_date", "status"),
    Obligation: ("id", "account_id", "requirement_id", "due_date", "status"),
    Evidence: ("id", "obligation_id", "filename", "checksum_sha256", "valid_from", "valid_until"),
    AuditResult: ("id", "obligation_id", "audited_on", "outcome", "open_findings"),
}

T = TypeVar("T")

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - published on purpose: every demo login uses it
DEFAULT_SEED = 2026
DEFAULT_ACCOUNTS = 220
MAX_ACCOUNTS = 50_000
BATCH_SIZE = 2000
BULK_ACTION = "demo.bulk_create"


# --------------------------------------------------------------------------------------------------
# Who exists: tenants and their users
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    email: str
    first_name: str
    last_name: str
    role: str
    reports_to: str | None = None  # email of this user's manager in the same tenant

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class DemoTenant:
    name: str
    slug: str
    time_zone: str
    users: tuple[DemoUser, ...]
    regions: tuple[tuple[str, int], ...]  # where its clients are: ("US" | "UK" | "EU", weight)


CONSULTANT = ("consultant@example.com", "Nadia", "Rahman")
PLATFORM_ADMIN = ("platform@example.com", "Alex", "Morgan")
# The platform superuser must pass MFA to reach /admin/. Published on purpose, like DEMO_PASSWORD: add
# this key to an authenticator app (or use a recovery code; re-running seed_demo restores used ones).
DEMO_TOTP_SECRET = "CSPLATFORMDEMOTOTPSECRETKEY23456"  # noqa: S105 - base32, 20 bytes
DEMO_RECOVERY_CODES = tuple(f"democode{n:02d}" for n in range(1, 11))

TENANTS: tuple[DemoTenant, ...] = (
    DemoTenant(
        name="Northwind Regulatory Services",
        slug="northwind",
        time_zone="America/New_York",
        users=(
            DemoUser("admin@northwind.example", "Dana", "Whitaker", Role.ADMIN),
            DemoUser("exec@northwind.example", "Marcus", "Bellamy", Role.EXECUTIVE),
            DemoUser("manager@northwind.example", "Elena", "Petrova", Role.MANAGER),
            DemoUser("manager2@northwind.example", "Robert", "Chen", Role.MANAGER),
            DemoUser("csm1@northwind.example", "Jordan", "Reyes", Role.CSM, "manager@northwind.example"),
            DemoUser("csm2@northwind.example", "Aisha", "Thompson", Role.CSM, "manager@northwind.example"),
            DemoUser("csm3@northwind.example", "Liam", "O'Connor", Role.CSM, "manager2@northwind.example"),
            DemoUser("compliance@northwind.example", "Grace", "Nakamura", Role.COMPLIANCE),
            DemoUser("viewer@northwind.example", "Samir", "Patel", Role.VIEWER),
            DemoUser(CONSULTANT[0], CONSULTANT[1], CONSULTANT[2], Role.EXECUTIVE),
        ),
        regions=(("US", 86), ("EU", 9), ("UK", 5)),
    ),
    DemoTenant(
        name="Harborview Fintech Success",
        slug="harborview",
        time_zone="Europe/London",
        users=(
            DemoUser("admin@harborview.example", "Oliver", "Hughes", Role.ADMIN),
            DemoUser("exec@harborview.example", "Charlotte", "Davies", Role.EXECUTIVE),
            DemoUser("manager@harborview.example", "James", "Whitmore", Role.MANAGER),
            DemoUser("csm1@harborview.example", "Amelia", "Clarke", Role.CSM, "manager@harborview.example"),
            DemoUser("csm2@harborview.example", "Kwame", "Osei", Role.CSM, "manager@harborview.example"),
            # csm3 reports to nobody: escalations for their decisions have no manager to go to.
            DemoUser("csm3@harborview.example", "Isla", "Fraser", Role.CSM),
            DemoUser("compliance@harborview.example", "Fiona", "MacLeod", Role.COMPLIANCE),
            DemoUser("viewer@harborview.example", "Tom", "Ellison", Role.VIEWER),
            DemoUser(CONSULTANT[0], CONSULTANT[1], CONSULTANT[2], Role.VIEWER),
        ),
        regions=(("UK", 46), ("EU", 28), ("US", 26)),
    ),
)


@dataclass(frozen=True)
class Login:
    email: str
    name: str
    access: str


def demo_logins(tenants: Sequence[DemoTenant] = TENANTS) -> list[Login]:
    """The documented demo logins (all with DEMO_PASSWORD), in a stable order."""
    access: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for spec in tenants:
        for user in spec.users:
            access.setdefault(user.email, []).append(f"{spec.slug}: {user.role}")
            names[user.email] = user.full_name
    logins = [Login(email, names[email], ", ".join(roles)) for email, roles in access.items()]
    logins.append(
        Login(PLATFORM_ADMIN[0], f"{PLATFORM_ADMIN[1]} {PLATFORM_ADMIN[2]}", "platform superuser (no tenant)")
    )
    return logins


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def parse_today(value: str | None) -> date:
    """The date anchor: ``YYYY-MM-DD`` or None for today. Raises ValueError with a readable message."""
    if value is None:
        return date.today()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise ValueError(f"--today must be a date as YYYY-MM-DD, got {value!r}.")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"--today {value!r} is not a valid date ({exc}).") from None


def _canonical(value: Any) -> Any:
    """A value as it reads back from any database, so digests can be recomputed from stored rows."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def rows_digest(rows: Sequence[models.Model], fields: Sequence[str]) -> str:
    """SHA-256 over one canonical JSON line per row (in the given order) of the named attributes."""
    digest = hashlib.sha256()
    for row in rows:
        line = json.dumps([_canonical(getattr(row, name)) for name in fields], separators=(",", ":"))
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def _spread(rng: random.Random, n: int, weighted: Sequence[tuple[T, float]]) -> list[T]:
    """n items in the given proportions (largest remainder), each option at least once when n allows,
    shuffled. Unlike n independent draws this guarantees coverage (every phase, every segment)."""
    total = sum(weight for _, weight in weighted)
    quotas = [n * weight / total for _, weight in weighted]
    counts = [int(q) for q in quotas]
    by_remainder = sorted(range(len(weighted)), key=lambda i: quotas[i] - counts[i], reverse=True)
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    if n >= len(weighted):
        for i, count in enumerate(counts):
            if count == 0:
                donor = max(range(len(counts)), key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] = 1
    items = [value for (value, _), count in zip(weighted, counts, strict=True) for _ in range(count)]
    rng.shuffle(items)
    return items


def _pick(rng: random.Random, weighted: Sequence[tuple[T, float]]) -> T:
    return rng.choices([value for value, _ in weighted], weights=[weight for _, weight in weighted])[0]


def _months_back(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def _email_local(first: str, last: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", f"{first}.{last}".lower())


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; fine for the small means used here."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@functools.cache
def _demo_password_hash() -> str:
    # Hashing costs ~0.3 s (PBKDF2); all demo users share one published password, so hash it once.
    return make_password(DEMO_PASSWORD)


def user_get_or_create(email: str, first_name: str, last_name: str, *, superuser: bool = False) -> tuple[Any, bool]:
    """Get a demo user by username (= email) or create it with Django's create_user/create_superuser."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=email).first()
    if user is not None:
        return user, False
    create = user_model.objects.create_superuser if superuser else user_model.objects.create_user
    user = create(username=email, email=email, password=None, first_name=first_name, last_name=last_name)
    user.password = _demo_password_hash()
    user.save(update_fields=["password"])
    return user, True


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------


@dataclass
class SeedReport:
    slug: str
    name: str
    created: bool
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def seed_demo(
    *,
    today: date,
    seed: int = DEFAULT_SEED,
    accounts: int = DEFAULT_ACCOUNTS,
    tenants: Sequence[DemoTenant] = TENANTS,
) -> list[SeedReport]:
    """Seed every demo tenant that does not exist yet; return one report per tenant."""
    if not 1 <= accounts <= MAX_ACCOUNTS:
        raise ValueError(f"--accounts must be between 1 and {MAX_ACCOUNTS}, got {accounts}.")
    with transaction.atomic():
        platform_admin, _ = user_get_or_create(*PLATFORM_ADMIN, superuser=True)
        mfa_fixed_credentials_install(
            user=platform_admin,
            totp_key_hex=base64.b32decode(DEMO_TOTP_SECRET).hex(),
            recovery_codes=list(DEMO_RECOVERY_CODES),
        )
    return [
        seed_tenant(spec, today=today, seed=seed, accounts=accounts, platform_admin=platform_admin) for spec in tenants
    ]


def seed_tenant(spec: DemoTenant, *, today: date, seed: int, accounts: int, platform_admin: Any) -> SeedReport:
    """Create one demo tenant with its users and data in one transaction, unless its slug exists."""
    started = time.perf_counter()
    if Tenant.objects.filter(slug=spec.slug).exists():
        return SeedReport(slug=spec.slug, name=spec.name, created=False)
    with transaction.atomic():
        tenant = tenant_create(name=spec.name, slug=spec.slug, time_zone=spec.time_zone, actor=platform_admin)
        with tenant_context(tenant):
            seeder = TenantSeeder(
                tenant=tenant,
                spec=spec,
                today=today,
                seed=seed,
                rng=random.Random(f"{seed}:{spec.slug}"),
                platform_admin=platform_admin,
            )
            seeder.run(accounts)
            seeder.counts["audit_events"] = AuditEvent.objects.count()
    return SeedReport(
        slug=spec.slug, name=spec.name, created=True, seconds=time.perf_counter() - started, counts=seeder.counts
    )


def format_summary(reports: Sequence[SeedReport], seconds: float) -> list[str]:
    lines: list[str] = []
    created = [report for report in reports if report.created]
    for report in reports:
        if not report.created:
            lines.append(f"{report.slug}: already seeded, skipped.")
    if created:
        labels = list(created[0].counts)
        width = max(len(label) for label in labels)
        lines.append(" " * width + "".join(f"{report.slug:>12}" for report in created))
        for label in labels:
            lines.append(f"{label:<{width}}" + "".join(f"{report.counts.get(label, 0):>12,}" for report in created))
        lines.append(f"{'seconds':<{width}}" + "".join(f"{report.seconds:>12.1f}" for report in created))
    lines.append(f"Done in {seconds:.1f} s.")
    return lines


def format_logins(logins: Sequence[Login]) -> list[str]:
    email_w = max(len(login.email) for login in logins)
    name_w = max(len(login.name) for login in logins)
    lines = [f"Demo logins (password for all: {DEMO_PASSWORD})", f"{'email':<{email_w}}  {'name':<{name_w}}  access"]
    lines += [f"{login.email:<{email_w}}  {login.name:<{name_w}}  {login.access}" for login in logins]
    secret = " ".join(DEMO_TOTP_SECRET[i : i + 4] for i in range(0, len(DEMO_TOTP_SECRET), 4))
    lines.append(
        f"{PLATFORM_ADMIN[0]} also needs an MFA code: add the key {secret} to an authenticator app, "
        f"or use a recovery code ({', '.join(code[:4] + '-' + code[4:] for code in DEMO_RECOVERY_CODES[:3])}, ...)."
    )
    return lines


# --------------------------------------------------------------------------------------------------
# One tenant
# --------------------------------------------------------------------------------------------------


@dataclass
class Level:
    """An account's performance over the year: level(t) = base + slope * t, t in [0, 1] (a year ago to
    today). 0 means exactly at target."""

    profile: str
    base: float
    slope: float

    def at(self, t: float) -> float:
        return self.base + self.slope * t


@dataclass
class AccountPlan:
    name: str
    segment: str
    region: str
    tier: str
    arr: Decimal
    contract_start: date
    renewal_date: date
    lifecycle_stage: str
    owner: DemoUser
    second_csm: DemoUser | None
    sponsor: tuple[str, str]
    sponsor_title: str
    jurisdictions: list[str]
    regulators: list[str]
    data_standards: list[str]
    level: Level
    journey_start: date
    journey_complete: bool  # intent; the journey is complete only if every activity ends up done
    account: Account | None = None
    contacts: list[Contact] = field(default_factory=list)

    @property
    def troubled(self) -> bool:
        return self.level.profile in ("struggling", "declining")

    @property
    def domain(self) -> str:
        return f"{slugify(self.name)}.example"


class TenantSeeder:
    """Generates and writes one tenant's demo data. Call run() inside tenant_context and a transaction."""

    def __init__(
        self, *, tenant: Tenant, spec: DemoTenant, today: date, seed: int, rng: random.Random, platform_admin: Any
    ) -> None:
        self.tenant = tenant
        self.spec = spec
        self.today = today
        self.seed = seed
        self.rng = rng
        self.platform_admin = platform_admin
        self.tz = ZoneInfo(spec.time_zone)
        self.year_ago = today - timedelta(days=365)
        self.counts: dict[str, int] = {}
        self.users: dict[str, Any] = {}  # email -> User
        self.managers: dict[int, Any] = {}  # user id -> the manager's User
        self.plans: list[AccountPlan] = []
        self.segments = {segment.code: segment for segment in Segment.objects.order_by("sort_order", "code")}
        self.kpis: dict[int, list[KpiDefinition]] = {}
        for kpi in KpiDefinition.objects.order_by("segment__sort_order", "sort_order", "code"):
            self.kpis.setdefault(kpi.segment_id, []).append(kpi)
        self.template = JourneyTemplate.objects.get(name=reference.JOURNEY_NAME)
        self.phases = list(Phase.objects.filter(template=self.template).order_by("order"))
        self.phase_activities: dict[int, list[PhaseActivity]] = {}
        for activity in PhaseActivity.objects.filter(phase__template=self.template).order_by("phase__order", "order"):
            self.phase_activities.setdefault(activity.phase_id, []).append(activity)
        self.requirements = {r.code: r for r in Requirement.objects.select_related("framework").order_by("code")}
        self.journeys: dict[int, AccountJourney] = {}  # account id -> journey

    # -- plumbing ------------------------------------------------------------------------------------

    @property
    def admin(self) -> Any:
        return self.users[self._email_for(Role.ADMIN)]

    def _email_for(self, role: str) -> str:
        return next(user.email for user in self.spec.users if user.role == role)

    def _specs_with_role(self, role: str) -> list[DemoUser]:
        return [user for user in self.spec.users if user.role == role]

    def _at(
        self, day: date, earliest: int = 8 * 60 + 30, latest: int = 17 * 60 + 30, weekdays: bool = True
    ) -> datetime:
        """A moment on `day` between the given minutes of the day (default business hours, weekends
        moved back to Friday) in the tenant's time zone."""
        if weekdays and day.weekday() >= 5:
            day -= timedelta(days=day.weekday() - 4)
        minutes = self.rng.randint(earliest, latest)
        return datetime.combine(day, clock(minutes // 60, minutes % 60), tzinfo=self.tz)

    def _day_between(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randint(0, max((end - start).days, 0)))

    def _history(self, plan: AccountPlan) -> tuple[date, date] | None:
        """The part of the last year during which the account was a client (up to yesterday)."""
        start, end = max(plan.contract_start, self.year_ago), self.today - timedelta(days=1)
        return (start, end) if start <= end else None

    def _t(self, day: date) -> float:
        return min(max((day - self.year_ago).days / 365, 0.0), 1.0)

    def _bulk(self, model: type[models.Model], rows: list[models.Model], label: str) -> list[models.Model]:
        """bulk_create the rows and record ONE audit event with their count and key-field digest."""
        self.counts[label] = len(rows)
        if not rows:
            return rows
        for row in rows:
            row.tenant = self.tenant  # bulk_create does not call TenantOwned.save()
        created = model.objects.bulk_create(rows, batch_size=BATCH_SIZE)
        fields = DIGEST_FIELDS[model]
        audit_record(
            tenant=self.tenant,
            actor=self.admin,
            action=BULK_ACTION,
            object_type=model._meta.label_lower,
            after={"rows": len(created), "sha256": rows_digest(created, fields), "key_fields": list(fields)},
        )
        return created

    # -- the run -------------------------------------------------------------------------------------

    def run(self, n_accounts: int) -> None:
        self.create_members()
        self.plan_accounts(n_accounts)
        self.create_accounts()
        self.create_contacts()
        incident_touchpoints = self.create_incidents()
        self.create_touchpoints(incident_touchpoints)
        self.create_measurements()
        self.create_surveys()
        self.create_journeys()
        self.create_decisions()
        self.create_compliance()

    def create_members(self) -> None:
        memberships: dict[str, Membership] = {}
        for spec in self.spec.users:
            user, _ = user_get_or_create(spec.email, spec.first_name, spec.last_name)
            self.users[spec.email] = user
        # Managers first, so reports can point at their membership.
        ordered = sorted(self.spec.users, key=lambda spec: spec.reports_to is not None)
        for spec in ordered:
            manager = memberships[spec.reports_to] if spec.reports_to else None
            memberships[spec.email] = membership_create(
                tenant=self.tenant,
                user=self.users[spec.email],
                role=spec.role,
                manager=manager,
                actor=self.platform_admin,
            )
            if spec.reports_to:
                self.managers[self.users[spec.email].pk] = self.users[spec.reports_to]
        self.counts["memberships"] = len(memberships)

    # -- accounts ------------------------------------------------------------------------------------

    def _unique_name(self, make: Callable[[], str], used: set[str]) -> str:
        for _ in range(60):
            name = make()
            if name not in used:
                break
        else:  # the word lists are exhausted for this segment: qualify, then number
            name = f"{self.rng.choice(NAME_QUALIFIERS)} {make()}"
            number = 2
            while name in used:
                name, number = f"{name.rsplit(' No. ', 1)[0]} No. {number}", number + 1
        used.add(name)
        return name

    def _name(self, segment: str, region: str) -> str:
        rng = self.rng
        if segment == "bank":
            return f"{rng.choice(PLACES[region])} {_pick(rng, BANK_SUFFIXES[region])}"
        if segment == "insurer":
            word = rng.choice(INSURER_WORDS) if rng.random() < 0.6 else rng.choice(PLACES[region])
            return f"{word} {rng.choice(INSURER_SUFFIXES)}"
        if segment == "wealth":
            if rng.random() < 0.25:
                first, second = rng.sample(WEALTH_NAMES, 2)
                return f"{first} & {second} {rng.choice(WEALTH_SUFFIXES)}"
            return f"{rng.choice(WEALTH_NAMES)} {rng.choice(WEALTH_SUFFIXES)}"
        return f"{rng.choice(FINTECH_PREFIXES)}{rng.choice(FINTECH_STEMS)} {rng.choice(FINTECH_SUFFIXES)}"

    def _states(self, count: int) -> list[str]:
        weighted = [(code, spec[3]) for code, spec in US_STATES.items()]
        chosen: list[str] = []
        while len(chosen) < count:
            code = _pick(self.rng, weighted)
            if code not in chosen:
                chosen.append(code)
        return chosen

    def _jurisdictions(self, region: str, tier: str) -> list[str]:
        rng = self.rng
        big = tier in BIG_TIERS
        if region == "US":
            count = {Tier.STRATEGIC: rng.randint(2, 4), Tier.ENTERPRISE: rng.randint(1, 3)}.get(tier, 1)
            if tier == Tier.MID_MARKET and rng.random() < 0.3:
                count = 2
            places = self._states(count)
            if tier == Tier.STRATEGIC and rng.random() < 0.35:
                places.append(rng.choice(("EU", "UK")))
            return places
        other = "EU" if region == "UK" else "UK"
        places = [region]
        if big and rng.random() < 0.35:
            places.append(other)
        if tier == Tier.STRATEGIC and rng.random() < 0.3:
            places += self._states(1)
        return places

    def _regulators(self, segment: str, name: str, tier: str, jurisdictions: list[str]) -> list[str]:
        rng = self.rng
        states = [j for j in jurisdictions if j.startswith("US-")]
        regs: list[str] = []
        if segment == "bank":
            if states:
                if "Credit Union" in name:
                    regs.append("NCUA")
                    if "Federal" not in name:
                        regs.append(US_STATES[states[0]][1])
                elif "National Bank" in name:
                    regs.append("OCC")
                elif "Bancorp" in name:
                    regs += ["Federal Reserve", "OCC"]
                else:
                    regs += [rng.choice(("FDIC", "Federal Reserve")), US_STATES[states[0]][1]]
                if tier in BIG_TIERS:
                    regs.append("CFPB")
            if "UK" in jurisdictions:
                regs += ["PRA", "FCA"]
            if "EU" in jurisdictions:
                regs.append("ECB")
        elif segment == "insurer":
            regs += [US_STATES[state][2] for state in states]
            if states:
                regs.append("NAIC")
            if "UK" in jurisdictions:
                regs += ["PRA", "FCA"]
            if "EU" in jurisdictions:
                regs.append("EIOPA")
        elif segment == "wealth":
            if states:
                regs += ["SEC", "FINRA"]
            if "UK" in jurisdictions:
                regs.append("FCA")
            if "EU" in jurisdictions:
                regs.append("ESMA")
        else:
            if states:
                regs += ["CFPB", *(US_STATES[state][1] for state in states)]
            if "UK" in jurisdictions:
                regs.append("FCA")
            if "EU" in jurisdictions:
                regs.append(rng.choice(EU_FINTECH_REGULATORS))
        return list(dict.fromkeys(regs))

    def _data_standards(self, segment: str) -> list[str]:
        odds = DATA_STANDARD_ODDS[segment]
        chosen = [standard for standard, p in odds if self.rng.random() < p]
        return chosen or [max(odds, key=lambda item: item[1])[0]]

    def _level(self, profile: str) -> Level:
        (base_lo, base_hi), (slope_lo, slope_hi) = PROFILE_LEVELS[profile]
        return Level(profile, self.rng.uniform(base_lo, base_hi), self.rng.uniform(slope_lo, slope_hi))

    def _renewal(self, contract_start: date) -> date:
        rng = self.rng
        roll = rng.random()
        if roll < 0.07:
            offset = -rng.randint(1, 45)  # past due: in negotiation
        elif roll < 0.18:
            offset = rng.randint(0, 30)
        else:
            offset = rng.randint(31, 545)
        renewal = self.today + timedelta(days=offset)
        earliest = contract_start + timedelta(days=180)  # no contract renews within six months of signature
        if renewal < earliest:
            renewal = earliest + timedelta(days=rng.randint(0, 180))
        return renewal

    def _lifecycle(self, level: Level, tier: str, renewal: date, journey_days: int, completed: bool) -> str:
        rng = self.rng
        to_renewal = (renewal - self.today).days
        # Churned: gave notice (the contract ends on the renewal date) or let the renewal lapse.
        if level.profile == "struggling" and (to_renewal < 0 or rng.random() < 0.1) and rng.random() < 0.6:
            return LifecycleStage.CHURNED
        if (level.profile == "struggling" and rng.random() < 0.8) or (
            level.profile == "declining" and rng.random() < 0.6
        ):
            return LifecycleStage.AT_RISK
        if to_renewal <= 90:
            return LifecycleStage.RENEWAL
        if journey_days < 45:
            return LifecycleStage.ONBOARDING
        if journey_days < 120:
            return LifecycleStage.IMPLEMENTATION
        if completed and level.profile == "healthy" and (tier in BIG_TIERS or rng.random() < 0.2):
            return LifecycleStage.EXPANSION
        return LifecycleStage.ADOPTION

    def plan_accounts(self, n: int) -> None:
        rng = self.rng
        csms = self._specs_with_role(Role.CSM)
        segments = _spread(rng, n, SEGMENT_MIX)
        tiers = _spread(rng, n, TIER_MIX)
        profiles = _spread(rng, n, PROFILE_MIX)
        buckets = _spread(rng, n, JOURNEY_MIX)
        used: set[str] = set()
        for i in range(n):
            segment, tier, profile, bucket = segments[i], tiers[i], profiles[i], buckets[i]
            region = _pick(rng, self.spec.regions)
            name = self._unique_name(lambda segment=segment, region=region: self._name(segment, region), used)
            low, high = TIER_ARR[tier]
            arr = max(40_000, round(rng.uniform(low, high) * SEGMENT_ARR_FACTOR[segment] / 500) * 500)
            level = self._level(profile)
            # Whether a journey past its last phase was finished, decided here so lifecycle and journey agree.
            completed = bucket == "beyond" and not (level.profile != "healthy" and rng.random() < 0.45)
            days_range = UNFINISHED_JOURNEY_DAYS if bucket == "beyond" and not completed else JOURNEY_DAYS[bucket]
            journey_days = rng.randint(*days_range)
            journey_start = self.today - timedelta(days=journey_days)
            contract_start = journey_start - timedelta(days=rng.randint(0, 14))
            renewal = self._renewal(contract_start)
            owner = csms[i % len(csms)] if rng.random() < 0.8 else rng.choice(csms)
            second = None
            if rng.random() < 0.12:
                candidates = [c for c in csms if c.email != owner.email]
                if owner.reports_to:
                    candidates.append(next(u for u in self.spec.users if u.email == owner.reports_to))
                second = rng.choice(candidates) if candidates else None
            jurisdictions = self._jurisdictions(region, tier)
            self.plans.append(
                AccountPlan(
                    name=name,
                    segment=segment,
                    region=region,
                    tier=tier,
                    arr=Decimal(arr),
                    contract_start=contract_start,
                    renewal_date=renewal,
                    lifecycle_stage=self._lifecycle(level, tier, renewal, journey_days, completed),
                    owner=owner,
                    second_csm=second,
                    sponsor=_person(rng),
                    sponsor_title=rng.choice(SPONSOR_TITLES[segment]),
                    jurisdictions=jurisdictions,
                    regulators=self._regulators(segment, name, tier, jurisdictions),
                    data_standards=self._data_standards(segment),
                    level=level,
                    journey_start=journey_start,
                    journey_complete=completed,
                )
            )

    def create_accounts(self) -> None:
        assignments = 0
        for plan in self.plans:
            plan.account = account_create(
                tenant=self.tenant,
                actor=self.admin,
                name=plan.name,
                segment=self.segments[plan.segment],
                tier=plan.tier,
                arr=plan.arr,
                contract_start=plan.contract_start,
                renewal_date=plan.renewal_date,
                lifecycle_stage=plan.lifecycle_stage,
                owner_csm=self.users[plan.owner.email],
                executive_sponsor=" ".join(plan.sponsor),
                jurisdictions=plan.jurisdictions,
                regulators=plan.regulators,
                data_standards=plan.data_standards,
            )
            if plan.second_csm is not None:
                account_assign_csm(
                    tenant=self.tenant, account=plan.account, user=self.users[plan.second_csm.email], actor=self.admin
                )
                assignments += 1
        self.counts["accounts"] = len(self.plans)
        self.counts["extra_csm_assignments"] = assignments

    # -- contacts and timeline -----------------------------------------------------------------------

    def _phone(self, region: str) -> str:
        if region == "US":  # 555-0100..0199 are reserved for fiction
            return f"+1 {self.rng.choice((212, 312, 415, 617, 704, 214, 303, 206))} 555 01{self.rng.randint(0, 99):02d}"
        if region == "UK":  # Ofcom's drama range
            return f"+44 20 7946 0{self.rng.randint(0, 999):03d}"
        return ""

    def create_contacts(self) -> None:
        rows: list[Contact] = []
        for plan in self.plans:
            count = self.rng.randint(3, 4) if plan.tier in BIG_TIERS else self.rng.randint(2, 4)
            people = [plan.sponsor]
            while len(people) < count:
                person = _person(self.rng)
                if person not in people:
                    people.append(person)
            titles = self.rng.sample(CONTACT_TITLES[plan.segment], count - 1)
            primary = self.rng.randint(1, count - 1)
            for index, (first, last) in enumerate(people):
                contact = Contact(
                    account=plan.account,
                    name=f"{first} {last}",
                    email=f"{_email_local(first, last)}@{plan.domain}",
                    phone=self._phone(plan.region),
                    title=plan.sponsor_title if index == 0 else titles[index - 1],
                    is_executive_sponsor=index == 0,
                    is_primary=index == primary,
                )
                plan.contacts.append(contact)
                rows.append(contact)
        self._bulk(Contact, rows, "contacts")

    def create_incidents(self) -> list[Touchpoint]:
        """Incidents (MTTR computable from opened/resolved; some escalated, some open). Returns the
        timeline entries for the serious ones, written with the other touchpoints."""
        rng = self.rng
        cutoff = datetime.combine(self.today, clock(0, 0), tzinfo=self.tz)
        mean = {"healthy": 1.2, "watch": 2.5, "struggling": 4.5, "declining": 3.5, "recovering": 3.0}
        rows: list[Incident] = []
        timeline: list[Touchpoint] = []
        sequence = 0
        for plan in self.plans:
            window = self._history(plan)
            if window is None:
                continue
            start, end = window
            span = (end - start).days
            slow = 1.8 if plan.troubled or plan.level.profile == "recovering" else 1.0
            for _ in range(_poisson(rng, mean[plan.level.profile] * (span + 1) / 365)):
                u = rng.random()
                if plan.level.profile == "declining":
                    u = u**0.5  # late in the year
                elif plan.level.profile == "recovering":
                    u = 1 - u**0.5  # early in the year
                day = start + timedelta(days=round(u * span))
                opened = self._at(day, 0, 23 * 60 + 59, weekdays=False)
                severity = _pick(rng, SEVERITY_MIX)
                low, high = SEVERITY_HOURS[severity]
                resolved: datetime | None = opened + timedelta(hours=rng.uniform(low, high) * slow)
                if resolved >= cutoff or (severity in (Severity.SEV3, Severity.SEV4) and rng.random() < 0.04):
                    resolved = None  # still open (recent, or a stale low-severity ticket)
                escalation = SEVERITY_ESCALATION[severity] * (1.6 if plan.troubled else 1.0)
                sequence += 1
                incident = Incident(
                    account=plan.account,
                    title=rng.choice(INCIDENT_TITLES[plan.segment]),
                    severity=severity,
                    opened_at=opened,
                    resolved_at=resolved,
                    escalated=rng.random() < escalation,
                    external_ref=f"INC-{opened.year}-{sequence:05d}",
                )
                rows.append(incident)
                if severity in (Severity.SEV1, Severity.SEV2):
                    outcome = (
                        f"Resolved after {(resolved - opened).total_seconds() / 3600:.1f} h."
                        if resolved
                        else "Still open."
                    )
                    timeline.append(
                        Touchpoint(
                            account=plan.account,
                            kind=TouchpointKind.INCIDENT,
                            occurred_at=opened,
                            subject=f"Incident {incident.external_ref}: {incident.title}"[:200],
                            notes=f"{incident.get_severity_display()}. {outcome}"
                            + (" Escalated to the vendor's incident manager." if incident.escalated else ""),
                            author=self.users[plan.owner.email],
                        )
                    )
        self._bulk(Incident, rows, "incidents")
        return timeline

    def _subject(self, kind: str, plan: AccountPlan, day: date) -> str:
        rng = self.rng
        if kind == TouchpointKind.QBR:
            quarter = (day.month - 1) // 3 + 1
            return f"QBR Q{quarter} {day.year}: value review and roadmap"
        kpis = self.kpis.get(self.segments[plan.segment].pk) or []
        days_in = (day - plan.journey_start).days
        phase = next((p.name for p in self.phases if p.start_day <= days_in < p.end_day), "value review")
        return rng.choice(TOUCHPOINT_SUBJECTS[kind]).format(
            standard=rng.choice(plan.data_standards),
            topic=rng.choice(COMPLIANCE_TOPICS[plan.segment]),
            kpi=(rng.choice(kpis).name.lower() if kpis else "adoption"),
            title=rng.choice(CONTACT_TITLES[plan.segment]),
            phase=phase,
        )

    def create_touchpoints(self, incident_touchpoints: list[Touchpoint]) -> None:
        rng = self.rng
        rows: list[Touchpoint] = []
        per_kind = {
            TouchpointKind.MEETING: (2, 8),
            TouchpointKind.CALL: (3, 10),
            TouchpointKind.EMAIL: (4, 12),
            TouchpointKind.NOTE: (1, 5),
        }
        for plan in self.plans:
            window = self._history(plan)
            if window is None:
                continue
            start, end = window
            share = ((end - start).days + 1) / 365
            authors = [self.users[plan.owner.email]]
            if plan.second_csm:
                authors.append(self.users[plan.second_csm.email])
            days: list[tuple[str, date]] = []
            every = 91 if plan.tier in BIG_TIERS else 182
            qbr = plan.contract_start + timedelta(days=90)
            while qbr <= end:
                if qbr >= start:
                    days.append((TouchpointKind.QBR, qbr))
                qbr += timedelta(days=every + rng.randint(-7, 7))
            for kind, (low, high) in per_kind.items():
                extra = 1.3 if plan.troubled and kind == TouchpointKind.CALL else 1.0
                for _ in range(round(rng.randint(low, high) * share * extra)):
                    days.append((kind, self._day_between(start, end)))
            for kind, day in days:
                contact = rng.choice(plan.contacts) if kind != TouchpointKind.NOTE and rng.random() < 0.8 else None
                rows.append(
                    Touchpoint(
                        account=plan.account,
                        kind=kind,
                        occurred_at=self._at(day),
                        subject=self._subject(kind, plan, day),
                        notes=rng.choice(TOUCHPOINT_NOTES),
                        contact=contact,
                        author=rng.choice(authors),
                    )
                )
        self._bulk(Touchpoint, rows + incident_touchpoints, "touchpoints")

    # -- metrics -------------------------------------------------------------------------------------

    @staticmethod
    def _kpi_scale(kpi: KpiDefinition) -> tuple[float, float | None]:
        unit = kpi.unit.lower()
        reference_value = float(kpi.target_low if kpi.target_low is not None else kpi.target_high or 0)
        if "percentile" in unit:
            return 1.0, 99.0
        if "%" in unit or "percent" in unit:
            return 0.0, 100.0
        if "score" in unit:
            return 0.0, 5.0 if reference_value <= 5 else 10.0
        if "day" in unit:
            return 1.0, 365.0
        return 0.0, None

    def kpi_value(self, kpi: KpiDefinition, level: float) -> Decimal:
        """A plausible measurement for a performance level (0 = exactly at the target threshold)."""
        floor, cap = self._kpi_scale(kpi)
        low = float(kpi.target_low) if kpi.target_low is not None else None
        high = float(kpi.target_high) if kpi.target_high is not None else None
        comparator = kpi.comparator
        if comparator == "eq" and low is not None:
            # e.g. 100% audit pass rate: exactly on target unless things slip.
            value = low if level > 0.15 else low - (0.15 - level) * max(abs(low) * 0.08, 1.0)
        elif comparator == "between" and low is not None and high is not None:
            width = high - low
            # Saturates inside the band (no pile-up at the top), falls away below it.
            value = low + width * 0.97 * math.tanh(level) if level >= 0 else low + level * width * 0.6
        elif comparator == "lt" and high is not None:
            value = high - level * high * 0.2 if level >= 0 else high - level * high * 0.3
        elif low is not None:  # gte, top_quartile, and anything else with a minimum
            headroom = (cap - low) * 0.45 if cap is not None and cap > low else abs(low) * 0.1
            drop = low * (0.2 if comparator == "top_quartile" else 0.08)
            value = low + level * headroom if level >= 0 else low + level * drop
        else:
            value = (high or 0.0) * (1 - 0.1 * level)
        value = max(value, floor)
        if cap is not None:
            value = min(value, cap)
        return Decimal(f"{value:.2f}")

    def create_measurements(self) -> None:
        rng = self.rng
        rows: list[KpiMeasurement] = []
        months = [(_months_back(self.today, back), (11 - back) / 11) for back in range(11, -1, -1)]
        for plan in self.plans:
            for kpi in self.kpis.get(self.segments[plan.segment].pk, []):
                offset = rng.gauss(0, 0.25)
                for day, t in months:
                    level = plan.level.at(t) + offset + rng.gauss(0, 0.3)
                    rows.append(
                        KpiMeasurement(
                            account=plan.account,
                            kpi=kpi,
                            measured_on=day,
                            value=self.kpi_value(kpi, level),
                            source="demo",
                        )
                    )
        self._bulk(KpiMeasurement, rows, "kpi_measurements")

    def create_surveys(self) -> None:
        rng = self.rng
        rows: list[SurveyResponse] = []
        plan_counts = {SurveyType.NPS: (2, 4), SurveyType.CSAT: (2, 6), SurveyType.CES: (1, 3)}
        for plan in self.plans:
            window = self._history(plan)
            if window is None:
                continue
            start, end = window
            share = ((end - start).days + 1) / 365
            for survey_type, (low, high) in plan_counts.items():
                for _ in range(max(0, round(rng.randint(low, high) * share))):
                    day = self._day_between(start, end)
                    level = plan.level.at(self._t(day)) + rng.gauss(0, 0.3)
                    if survey_type == SurveyType.NPS:
                        score = min(10, max(0, round(7.5 + 1.6 * level + rng.gauss(0, 1.2))))
                        mood = "good" if score >= 9 else "mid" if score >= 7 else "bad"
                    elif survey_type == SurveyType.CSAT:
                        score = min(5, max(1, round(3.9 + 0.6 * level + rng.gauss(0, 0.6))))
                        mood = "good" if score >= 5 else "mid" if score >= 3 else "bad"
                    else:  # CES 1-7, higher = easier ("the vendor made it easy")
                        score = min(7, max(1, round(5.2 + 0.9 * level + rng.gauss(0, 0.9))))
                        mood = "good" if score >= 6 else "mid" if score >= 4 else "bad"
                    rows.append(
                        SurveyResponse(
                            account=plan.account,
                            contact=rng.choice(plan.contacts),
                            survey_type=survey_type,
                            score=score,
                            responded_on=day,
                            comment=rng.choice(SURVEY_COMMENTS[mood]) if rng.random() < 0.4 else "",
                        )
                    )
        self._bulk(SurveyResponse, rows, "survey_responses")

    # -- journeys and decisions ----------------------------------------------------------------------

    def _journey_for(self, plan: AccountPlan) -> tuple[AccountJourney, list[JourneyActivity]]:
        rng = self.rng
        today, start = self.today, plan.journey_start
        yesterday = today - timedelta(days=1)
        days_in = (today - start).days
        complete_all = plan.journey_complete
        activities: list[JourneyActivity] = []
        for phase in self.phases:
            phase_start = start + timedelta(days=phase.start_day)
            items = self.phase_activities.get(phase.pk, [])
            for number, activity in enumerate(items, start=1):
                due = start + timedelta(
                    days=phase.start_day + math.ceil((phase.end_day - phase.start_day) * number / len(items))
                )
                status, completed = ActivityStatus.NOT_STARTED, None
                if complete_all or (due < today and rng.random() < ACTIVITY_DONE[plan.level.profile]):
                    status = ActivityStatus.DONE
                    if rng.random() < 0.15:
                        completed = due + timedelta(days=rng.randint(1, 10))  # done, a little late
                    else:
                        completed = due - timedelta(days=rng.randint(0, 10))
                    completed = min(max(completed, phase_start), yesterday)
                elif due < today:
                    status = rng.choice(
                        (ActivityStatus.IN_PROGRESS, ActivityStatus.IN_PROGRESS, ActivityStatus.NOT_STARTED)
                    )
                elif phase.start_day <= days_in < phase.end_day:  # current phase, not yet due
                    roll = rng.random()
                    if roll < 0.25 and phase_start <= yesterday:
                        status, completed = ActivityStatus.DONE, self._day_between(phase_start, yesterday)
                    elif roll < 0.65:
                        status = ActivityStatus.IN_PROGRESS
                activities.append(JourneyActivity(activity=activity, status=status, due_on=due, completed_on=completed))
        current = next((p for p in self.phases if p.start_day <= days_in < p.end_day), self.phases[-1])
        open_items = [a for a in activities if a.status != ActivityStatus.DONE]
        overdue = sorted((a for a in open_items if a.due_on < today), key=lambda a: a.due_on)
        due_soon = [
            a for a in open_items if a.status == ActivityStatus.NOT_STARTED and 0 <= (a.due_on - today).days <= 7
        ]
        completed_on = None
        if not open_items:
            status, reason = JourneyStatus.COMPLETED, "All activities completed."
            completed_on = max(a.completed_on for a in activities)
        elif overdue and (today - overdue[0].due_on).days > 14:
            status = JourneyStatus.LATE
            late_by = (today - overdue[0].due_on).days
            reason = f"{len(overdue)} overdue; oldest {late_by} days late: {overdue[0].activity.text}"
        elif overdue:
            status = JourneyStatus.AT_RISK
            reason = (
                f"{len(overdue)} overdue (up to {(today - overdue[0].due_on).days} days): {overdue[0].activity.text}"
            )
        elif due_soon:
            status = JourneyStatus.AT_RISK
            reason = f"Due within 7 days and not started: {due_soon[0].activity.text}"
        else:
            status, reason = JourneyStatus.ON_TRACK, f"{current.name}: on schedule."
        journey = AccountJourney(
            account=plan.account,
            template=self.template,
            started_on=start,
            current_phase=current,
            status=status,
            status_reason=reason[:255],
            completed_on=completed_on,
        )
        for activity in activities:
            activity.journey = journey
        return journey, activities

    def create_journeys(self) -> None:
        journeys: list[AccountJourney] = []
        activities: list[JourneyActivity] = []
        for plan in self.plans:
            journey, items = self._journey_for(plan)
            journeys.append(journey)
            activities += items
        self._bulk(AccountJourney, journeys, "journeys")
        for plan, journey in zip(self.plans, journeys, strict=True):
            self.journeys[plan.account.pk] = journey
        # bulk_create fills journey_id from the (now saved) journey each activity points at.
        self._bulk(JourneyActivity, activities, "journey_activities")

    def _decision_state(self, plan: AccountPlan, forced: list[str]) -> str:
        if forced:
            return forced.pop(0)
        column = 1 if plan.troubled else 0
        return _pick(self.rng, [(state, weights[column]) for state, weights in DECISION_STATES.items()])

    def create_decisions(self) -> None:
        rng = self.rng
        today = self.today
        rows: list[Decision] = []
        forced = ["overdue_stale", "escalated", "resolved", "fallback", "open_future", "overdue_fresh"]
        compliance_user = self.users[self._email_for(Role.COMPLIANCE)]
        for plan in self.plans:
            journey = self.journeys[plan.account.pk]
            active = journey.status != JourneyStatus.COMPLETED
            count = rng.randint(1, 4) if active else rng.randint(0, 2)
            if plan.troubled:
                count += 1
            history = (today - plan.contract_start).days
            for _ in range(count):
                state = self._decision_state(plan, forced)
                if state != "open_future" and history < 10:
                    state = "open_future"  # a brand-new client has nothing overdue yet
                owner = self.users[plan.owner.email]
                roll = rng.random()
                if roll < 0.1 and owner.pk in self.managers:
                    owner = self.managers[owner.pk]
                elif roll < 0.2:
                    owner = compliance_user
                if state == "escalated" and owner.pk not in self.managers:
                    owner = self.users[plan.owner.email]
                    if owner.pk not in self.managers:
                        state = "overdue_stale"  # the owner reports to nobody: nobody to escalate to
                is_blocker = rng.random() < 0.35
                title, fallback = rng.choice(BLOCKERS if is_blocker else DECISIONS)
                back = min(history - 1, 200)
                decision = Decision(
                    account=plan.account,
                    journey=journey if active and rng.random() < 0.8 else None,
                    kind=DecisionKind.BLOCKER if is_blocker else DecisionKind.DECISION,
                    title=title,
                    description=rng.choice(DECISION_DESCRIPTIONS),
                    owner=owner,
                    fallback=fallback,
                    customer_impact=CUSTOMER_IMPACTS[len(title) % len(CUSTOMER_IMPACTS)],
                    status=DecisionStatus.OPEN,
                )
                if state == "resolved":
                    decision.due_date = today + timedelta(days=rng.randint(-back, 20))
                    done = min(decision.due_date - timedelta(days=rng.randint(0, 6)), today - timedelta(days=1))
                    decision.status = DecisionStatus.RESOLVED
                    decision.resolved_at = self._at(max(done, plan.contract_start))
                    decision.resolution = rng.choice(RESOLUTIONS)
                elif state == "fallback" and back >= 5:
                    decision.due_date = today - timedelta(days=rng.randint(5, back))
                    decision.status = DecisionStatus.FALLBACK_APPLIED
                    decision.resolved_at = self._at(decision.due_date + timedelta(days=2))
                    decision.resolution = f"Fallback applied: {fallback}."
                elif state == "overdue_fresh":
                    decision.due_date = today - timedelta(days=1)
                elif state in ("overdue_stale", "escalated") and back >= 3:
                    decision.due_date = today - timedelta(days=rng.randint(3, min(back, 60)))
                    if state == "escalated":
                        decision.status = DecisionStatus.ESCALATED
                        escalated_on = decision.due_date + timedelta(days=2)  # 48 hours past due
                        decision.escalated_at = datetime.combine(escalated_on, clock(6, 0), tzinfo=self.tz)
                        decision.escalated_to = self.managers[owner.pk]
                else:
                    decision.due_date = today + timedelta(days=rng.randint(1, 30))
                rows.append(decision)
        self._bulk(Decision, rows, "decisions")

    # -- compliance ----------------------------------------------------------------------------------

    def _requirement_codes(self, plan: AccountPlan) -> list[str]:
        rng = self.rng
        states = [j for j in plan.jurisdictions if j.startswith("US-")]
        european = "EU" in plan.jurisdictions or "UK" in plan.jurisdictions
        codes = ["SOC2-T2"]
        if plan.segment == "bank":
            if states:
                codes += ["GLBA", "BSA-AML", "NIST-CSF-PROFILE"]
                if not any(r in plan.regulators for r in ("OCC", "Federal Reserve")) or rng.random() < 0.3:
                    codes.append("STATE-LIC")
            codes.append("SOC1-T2")
            if rng.random() < 0.6:
                codes.append("PCI-AOC")
        elif plan.segment == "insurer":
            codes.append("SOC1-T2")
            if states:
                codes += ["GLBA", "STATE-LIC", "NIST-CSF-PROFILE"]
        elif plan.segment == "wealth":
            if states:
                codes += ["SEC-17a-4", "SEC-S-P", "FINRA-3110", "FINRA-4370"]
            if rng.random() < 0.5:
                codes.append("SOC1-T2")
        else:
            codes.append("PCI-AOC")
            if states:
                codes += ["STATE-LIC", "BSA-AML"]
            if rng.random() < 0.4:
                codes.append("NIST-CSF-PROFILE")
        if "US-NY" in states and plan.segment != "wealth":
            codes.append("NYDFS-500")
        if "US-CA" in states:
            codes.append("CCPA-NOTICE")
        if european:
            codes += ["GDPR-DPA", "ISO27001-CERT"]
        elif rng.random() < 0.3:
            codes.append("ISO27001-CERT")
        return [code for code in dict.fromkeys(codes) if code in self.requirements]

    def _evidence(
        self, obligation: Obligation, plan: AccountPlan, requirement: Requirement, valid_from: date, uploader: Any
    ) -> Evidence:
        valid_until = valid_from + timedelta(days=max(requirement.evidence_validity_days, 1) - 1)
        filename = f"{slugify(plan.name)}_{slugify(requirement.code)}_{valid_from.isoformat()}.pdf"
        text = (
            f"Demo evidence (seed_demo, seed {self.seed})\ntenant: {self.tenant.slug}\naccount: {plan.name}\n"
            f"requirement: {requirement.framework.name} {requirement.code} {requirement.title}\n"
            f"valid: {valid_from.isoformat()} to {valid_until.isoformat()}\nfile: {filename}\n"
        )
        return Evidence(
            obligation=obligation,
            filename=filename,
            checksum_sha256=hashlib.sha256(text.encode()).hexdigest(),
            valid_from=valid_from,
            valid_until=valid_until,
            uploaded_by=uploader,
        )

    def create_compliance(self) -> None:
        rng, today = self.rng, self.today
        computed_at = datetime.combine(today, clock(0, 0), tzinfo=self.tz)
        compliance_user = self.users[self._email_for(Role.COMPLIANCE)]
        obligations: list[Obligation] = []
        evidence: list[Evidence] = []
        audits: list[AuditResult] = []
        forced = list(OBLIGATION_STATUSES)
        for plan in self.plans:
            onboarding = (today - plan.journey_start).days < 45
            weights = OBLIGATION_STATUS_WEIGHTS[plan.level.profile]
            for code in self._requirement_codes(plan):
                requirement = self.requirements[code]
                validity = max(requirement.evidence_validity_days, 1)
                if forced:
                    status = forced.pop(0)
                elif onboarding and rng.random() < 0.6:
                    status = ObligationStatus.NOT_STARTED  # still in the compliance assessment phase
                else:
                    status = _pick(rng, list(zip(OBLIGATION_STATUSES, weights, strict=True)))
                owner = compliance_user if rng.random() < 0.6 else self.users[plan.owner.email]
                obligation = Obligation(
                    account=plan.account,
                    requirement=requirement,
                    status=status,
                    status_computed_at=computed_at,
                    owner=owner,
                )
                current: Evidence | None = None
                if status == ObligationStatus.COMPLIANT:
                    # Valid for more than 30 more days.
                    current = self._evidence(
                        obligation,
                        plan,
                        requirement,
                        today - timedelta(days=rng.randint(10, max(validity - 35, 10))),
                        owner,
                    )
                    if rng.random() < 0.6:
                        audits.append(
                            self._audit(obligation, self._day_between(current.valid_from, today), passed=True)
                        )
                elif status == ObligationStatus.EXPIRING:
                    valid_until = today + timedelta(days=rng.randint(0, 30))
                    current = self._evidence(
                        obligation, plan, requirement, valid_until - timedelta(days=validity - 1), owner
                    )
                    if rng.random() < 0.4:
                        audits.append(self._audit(obligation, current.valid_from + timedelta(days=20), passed=True))
                elif status == ObligationStatus.OVERDUE:
                    obligation.due_date = today - timedelta(days=rng.randint(1, 120))
                    if rng.random() < 0.75:  # the old evidence lapsed on the due date
                        evidence.append(
                            self._evidence(
                                obligation,
                                plan,
                                requirement,
                                obligation.due_date - timedelta(days=validity - 1),
                                owner,
                            )
                        )
                elif status == ObligationStatus.FAILED:
                    audited_on = today - timedelta(days=rng.randint(3, 90))
                    if rng.random() < 0.6:
                        current = self._evidence(
                            obligation, plan, requirement, audited_on - timedelta(days=rng.randint(20, 120)), owner
                        )
                    if rng.random() < 0.3:
                        audits.append(self._audit(obligation, audited_on - timedelta(days=365), passed=True))
                    audits.append(self._audit(obligation, audited_on, passed=False))
                    obligation.due_date = audited_on + timedelta(days=rng.choice((30, 60, 90)))  # remediation due
                else:  # not started
                    phase_end = plan.journey_start + timedelta(days=self.phases[0].end_day)
                    obligation.due_date = (
                        phase_end if onboarding and phase_end > today else today + timedelta(days=rng.randint(14, 180))
                    )
                if current is not None:
                    if status in (ObligationStatus.COMPLIANT, ObligationStatus.EXPIRING):
                        obligation.due_date = current.valid_until
                        if rng.random() < 0.45:  # last cycle's evidence, now superseded
                            evidence.append(
                                self._evidence(
                                    obligation, plan, requirement, current.valid_from - timedelta(days=validity), owner
                                )
                            )
                    evidence.append(current)
                obligations.append(obligation)
        self._bulk(Obligation, obligations, "obligations")
        self._bulk(Evidence, evidence, "evidence")
        self._bulk(AuditResult, audits, "audit_results")

    def _audit(self, obligation: Obligation, audited_on: date, *, passed: bool) -> AuditResult:
        rng = self.rng
        if passed:
            return AuditResult(
                obligation=obligation,
                audited_on=audited_on,
                outcome=AuditOutcome.PASSED,
                open_findings=0,
                auditor=rng.choice(AUDITORS),
                notes="No exceptions noted.",
            )
        findings = rng.sample(FINDINGS, rng.randint(1, 4))
        return AuditResult(
            obligation=obligation,
            audited_on=audited_on,
            outcome=AuditOutcome.FAILED,
            open_findings=len(findings) + rng.randint(0, 2),
            auditor=rng.choice(AUDITORS),
            notes=" ".join(findings),
        )
