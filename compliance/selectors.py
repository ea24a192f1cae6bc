"""Reads of compliance data, within the user's visible accounts.

The dashboard's selectors take the user's book (`compliance_book`) rather than the user, so a page
resolves a manager's team once and every section reuses it inside its own single query."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from accounts.models import Account
from accounts.selectors import visible_accounts
from compliance.models import (
    STATUS_SEVERITY,
    AuditOutcome,
    AuditResult,
    ComplianceStatusSnapshot,
    Evidence,
    Framework,
    Obligation,
    ObligationStatus,
)
from compliance.status import EXPIRING_WITHIN_DAYS
from cs_platform.listing import first_with_total
from segments.models import Segment

AUDIT_WINDOW_DAYS = 365
# Matrix sort keys -> columns (list_params whitelists them). `worst_order` is annotated by
# compliance_matrix: the severity rank of the account's worst obligation, accounts without any last.
MATRIX_SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "pk"),
    "segment": ("segment__sort_order", "segment__name", "name", "pk"),
    "worst": ("worst_order", "name", "pk"),
}


def compliance_book(user, membership=None) -> QuerySet[Account]:
    """The accounts whose compliance data `user` sees: visible_accounts(). Whatever it reads to
    find the book (a manager's team) is read here, once per page, not once per section."""
    return visible_accounts(user, membership)


def _severity_rank() -> Case:
    """An obligation's status as its index in STATUS_SEVERITY (0 = worst), so MIN() is the worst."""
    return Case(
        *[When(status=status, then=Value(rank)) for rank, status in enumerate(STATUS_SEVERITY)],
        output_field=IntegerField(),
    )


@dataclass
class MatrixOptions:
    segments: list[Segment]
    frameworks: list[Framework]
    owners: list = field(default_factory=list)


def matrix_filter_options(book: QuerySet[Account]) -> MatrixOptions:
    """What the matrix can be filtered by, in three queries: the tenant's segments; the frameworks
    that have obligations in the tenant (also the matrix columns); the owner CSMs of the book."""
    segments = list(Segment.objects.order_by("sort_order", "name"))
    frameworks = list(
        Framework.objects.filter(Exists(Obligation.objects.filter(requirement__framework=OuterRef("pk")))).order_by(
            "name"
        )
    )
    owners = list(
        get_user_model()
        .objects.filter(pk__in=book.filter(owner_csm__isnull=False).order_by().values("owner_csm_id"))
        .order_by("first_name", "last_name", "username")
    )
    return MatrixOptions(segments=segments, frameworks=frameworks, owners=owners)


def compliance_matrix(book: QuerySet[Account], *, filters: dict[str, str], order_by: list[str]) -> QuerySet[Account]:
    """The matrix rows: accounts of the book, segment and owner joined. Filters: segment (id),
    framework (id: accounts with obligations in it), status (accounts with at least one obligation
    in that status, within the framework filter), owner (user id), q (name). One query for a page
    of rows (plus the paginator's count).

    Sorting by `worst_order` (severity rank of the account's worst obligation, within the framework
    filter; accounts without any last) needs every filtered account's rank before the LIMIT: a
    correlated MIN over the account's obligations (an index range each), measured faster here than
    a GROUP BY over the wide joined rows, and left out of the paginator's COUNT. Other sorts skip
    it; a row's worst status then comes from its cells (compliance_matrix_rows)."""
    obligations = Obligation.objects.filter(account=OuterRef("pk"))
    framework = filters.get("framework")
    if framework:
        obligations = obligations.filter(requirement__framework_id=framework)
    accounts = book.select_related("segment", "owner_csm")
    if filters.get("segment"):
        accounts = accounts.filter(segment_id=filters["segment"])
    if filters.get("owner"):
        accounts = accounts.filter(owner_csm_id=filters["owner"])
    if filters.get("q"):
        accounts = accounts.filter(name__icontains=filters["q"])
    if framework:
        accounts = accounts.filter(Exists(obligations))
    if filters.get("status"):
        accounts = accounts.filter(Exists(obligations.filter(status=filters["status"])))
    if any(column.lstrip("-") == "worst_order" for column in order_by):
        worst = obligations.order_by().values("account").annotate(rank=Min(_severity_rank())).values("rank")
        accounts = accounts.annotate(
            worst_order=Coalesce(Subquery(worst), Value(len(STATUS_SEVERITY)), output_field=IntegerField())
        )
    return accounts.order_by(*order_by)


@dataclass
class Cell:
    status: str
    label: str
    css: str


@dataclass
class MatrixRow:
    account: Account
    worst: Cell | None
    # One (framework, its worst status or None) per matrix column, in column order.
    cells: list[tuple[Framework, Cell | None]]

    @property
    def statuses(self) -> list[str | None]:
        return [cell.status if cell else None for _, cell in self.cells]


# Badge colours (app.css); the label always names the status too.
STATUS_CSS = {"compliant": "green", "expiring": "yellow", "overdue": "red", "failed": "red", "not_started": "grey"}
_CELLS = [Cell(status=s, label=ObligationStatus(s).label, css=f"{STATUS_CSS[s]} status-{s}") for s in STATUS_SEVERITY]


def status_cell(status: str) -> Cell | None:
    """A status as the badge the templates draw (label and css classes)."""
    return _cell(STATUS_SEVERITY.index(status)) if status in STATUS_SEVERITY else None


def _cell(rank: int | None) -> Cell | None:
    return _CELLS[rank] if rank is not None and 0 <= rank < len(_CELLS) else None


def compliance_matrix_rows(accounts: list[Account], frameworks: list[Framework]) -> list[MatrixRow]:
    """Each account's worst status per framework column, from one grouped query over just these
    accounts' obligations (none if the page is empty). The row's worst status is the worst of its
    cells: the columns are every framework with obligations (or the one filtered on)."""
    worst_by_cell: dict[tuple[int, int], int] = {}
    if accounts and frameworks:
        rows = (
            Obligation.objects.filter(
                account_id__in=[a.pk for a in accounts], requirement__framework_id__in=[f.pk for f in frameworks]
            )
            .order_by()
            .values_list("account_id", "requirement__framework_id")
            .annotate(rank=Min(_severity_rank()))
        )
        worst_by_cell = {(account_id, framework_id): rank for account_id, framework_id, rank in rows}
    result = []
    for account in accounts:
        ranks = [worst_by_cell.get((account.pk, framework.pk)) for framework in frameworks]
        present = [rank for rank in ranks if rank is not None]
        result.append(
            MatrixRow(
                account=account,
                worst=_cell(min(present)) if present else None,
                cells=[(framework, _cell(rank)) for framework, rank in zip(frameworks, ranks, strict=True)],
            )
        )
    return result


def status_counts(book: QuerySet[Account]) -> dict[str, int]:
    """{status: obligations} over the book, every status present (0 if none), one grouped query."""
    rows = Obligation.objects.filter(account__in=book).order_by().values_list("status").annotate(n=Count("id"))
    counts = dict.fromkeys(STATUS_SEVERITY, 0)
    counts.update(dict(rows))
    return counts


def expiring_obligations(
    book: QuerySet[Account], *, day: datetime.date, limit: int = 50
) -> tuple[list[Obligation], int]:
    """Obligations of the book whose status is expiring, with `evidence_valid_until` (the latest
    validity of evidence in force on `day`), soonest first: (first `limit`, total). Two queries
    (listing.first_with_total): the first ids and the total, read from the obligation and evidence
    tables alone, then those rows with account, owners and requirement joined."""
    latest = (
        Evidence.objects.filter(obligation=OuterRef("pk"), valid_from__lte=day)
        .order_by("-valid_until")
        .values("valid_until")[:1]
    )
    expiring = (
        Obligation.objects.filter(account__in=book, status=ObligationStatus.EXPIRING)
        .annotate(evidence_valid_until=Subquery(latest))
        .select_related("account", "account__owner_csm", "owner", "requirement__framework")
    )
    return first_with_total(expiring, (F("evidence_valid_until").asc(nulls_last=True), "pk"), limit=limit)


def obligations_on(book: QuerySet[Account], *, day: datetime.date) -> QuerySet[Obligation]:
    """The book's obligations with `status_on`, the status compliance.status.obligation_status gives
    them on `day` from the audits and evidence on record (the nightly run's inputs for that day, as
    compliance.services reads them), and `valid_until_on`, the latest validity of their evidence in force
    by then. Obligation.status keeps the latest nightly run's day only; this answers for an earlier day
    (a past week's scorecard). The CASE follows obligation_status rule by rule, in its order, and
    tests/compliance/test_status_on.py holds the two to each other."""
    audits = AuditResult.objects.filter(obligation=OuterRef("pk"), audited_on__lte=day).order_by("-audited_on", "-pk")
    evidence = Evidence.objects.filter(obligation=OuterRef("pk"), valid_from__lte=day).order_by("-valid_until")
    horizon = day + datetime.timedelta(days=EXPIRING_WITHIN_DAYS)
    return (
        Obligation.objects.filter(account__in=book)
        .annotate(
            audit_outcome_on=Subquery(audits.values("outcome")[:1]),
            audit_findings_on=Subquery(audits.values("open_findings")[:1]),
            valid_until_on=Subquery(evidence.values("valid_until")[:1]),
        )
        .annotate(
            status_on=Case(
                When(audit_outcome_on=AuditOutcome.FAILED, audit_findings_on__gt=0, then=Value("failed")),
                When(valid_until_on__gte=day, valid_until_on__lte=horizon, then=Value("expiring")),
                When(valid_until_on__gt=horizon, then=Value("compliant")),
                # Evidence that has lapsed by `day` (so ever evidenced), or a due date passed without any.
                When(valid_until_on__isnull=False, then=Value("overdue")),
                When(due_date__lt=day, then=Value("overdue")),
                default=Value("not_started"),
                output_field=CharField(),
            )
        )
    )


def failed_audits(
    book: QuerySet[Account], *, day: datetime.date, window_days: int = AUDIT_WINDOW_DAYS, limit: int = 50
) -> tuple[list[AuditResult], int]:
    """The latest failed audit of each obligation of the book in the trailing window, newest first:
    (first `limit`, total). "Latest" is "no later failed audit of the same obligation in the
    window", portable SQL (no DISTINCT ON) so the SQLite demo runs it too. Two queries
    (listing.first_with_total): the first ids and the total, then those rows with obligation, account
    and requirement joined."""
    since = day - datetime.timedelta(days=window_days)
    failed = AuditResult.objects.filter(outcome=AuditOutcome.FAILED, audited_on__gt=since, audited_on__lte=day)
    later = failed.filter(obligation=OuterRef("obligation")).filter(
        Q(audited_on__gt=OuterRef("audited_on")) | Q(audited_on=OuterRef("audited_on"), pk__gt=OuterRef("pk"))
    )
    latest_failed = (
        failed.filter(obligation__account__in=book)
        .filter(~Exists(later))
        .select_related("obligation__account", "obligation__requirement__framework")
    )
    rows, total = first_with_total(latest_failed, ("-audited_on", "-pk"), limit=limit)
    for row in rows:
        row.obligation.status_cell = status_cell(row.obligation.status)
    return rows, total


def audit_pass_rate_chart(
    book: QuerySet[Account], *, segments: list[Segment], day: datetime.date, window_days: int = AUDIT_WINDOW_DAYS
) -> dict[str, list]:
    """Audit pass rate per segment over the book in the trailing window, as parallel plain lists
    for the chart (json_script) and its table: segments (names, in `segments` order), audits,
    passed, pass_rates (%, one decimal); segments without audits are left out. One query, grouped
    by the account's segment id (names come from `segments`, which the page has already read)."""
    since = day - datetime.timedelta(days=window_days)
    rows = (
        AuditResult.objects.filter(audited_on__gt=since, audited_on__lte=day, obligation__account__in=book)
        .order_by()
        .values_list("obligation__account__segment_id")
        .annotate(audits=Count("id"), passed=Count("id", filter=Q(outcome=AuditOutcome.PASSED)))
    )
    figures = {segment_id: (audits, passed) for segment_id, audits, passed in rows}
    chart: dict[str, list] = {"segments": [], "audits": [], "passed": [], "pass_rates": []}
    for segment in segments:
        if segment.pk not in figures:
            continue
        audits, passed = figures[segment.pk]
        chart["segments"].append(segment.name)
        chart["audits"].append(audits)
        chart["passed"].append(passed)
        chart["pass_rates"].append(round(passed * 100.0 / audits, 1))
    return chart


# --- One obligation and its evidence --------------------------------------------------------------


def obligation_in_book(book: QuerySet[Account], obligation_id: int) -> Obligation | None:
    """An obligation of the book, account (segment, owner), requirement (framework) and owner
    joined; None for another tenant's or another book's. One query."""
    return (
        Obligation.objects.filter(account__in=book, pk=obligation_id)
        .select_related("account__segment", "account__owner_csm", "requirement__framework", "owner")
        .first()
    )


def obligation_evidence(obligation: Obligation) -> list[Evidence]:
    """The obligation's evidence, latest validity first, uploader joined. One query."""
    return list(
        Evidence.objects.filter(obligation=obligation)
        .select_related("uploaded_by")
        .order_by("-valid_until", "-uploaded_at", "-pk")
    )


def obligation_audits(obligation: Obligation) -> list[AuditResult]:
    """The obligation's audit history, newest first. One query."""
    return list(AuditResult.objects.filter(obligation=obligation).order_by("-audited_on", "-pk"))


def evidence_in_book(book: QuerySet[Account], evidence_id: int) -> Evidence | None:
    """One evidence row of the book (None for another tenant's or another book's). One query."""
    return Evidence.objects.filter(obligation__account__in=book, pk=evidence_id).first()


def evidence_files() -> QuerySet[Evidence]:
    """The current tenant's evidence rows that have a stored file, with what a restore check needs (the
    path under MEDIA_ROOT and the SHA-256 recorded at upload), in id order. Iterate it: one query."""
    return Evidence.objects.exclude(file="").order_by("pk").only("pk", "file", "filename", "checksum_sha256")


# --- REST API (compliance/api.py) -------------------------------------------------------------------------


def obligation_list(user, membership=None) -> QuerySet[Obligation]:
    """The obligations of the user's book, account, requirement (framework) and owner joined, each
    annotated with its latest audit (latest_audit_id, _on, _outcome, _findings: correlated LIMIT 1 on the
    (tenant, obligation, audited_on) index) and its evidence (evidence_count, evidence_valid_until: the
    latest validity end of any of its evidence). One query for any page of rows."""
    audits = AuditResult.objects.filter(obligation_id=OuterRef("pk")).order_by("-audited_on", "-pk")
    evidence = Evidence.objects.filter(obligation_id=OuterRef("pk")).order_by().values("obligation_id")
    return (
        Obligation.objects.filter(account__in=visible_accounts(user, membership))
        .select_related("account", "requirement__framework", "owner")
        .annotate(
            latest_audit_id=Subquery(audits.values("pk")[:1]),
            latest_audit_on=Subquery(audits.values("audited_on")[:1]),
            latest_audit_outcome=Subquery(audits.values("outcome")[:1]),
            latest_audit_findings=Subquery(audits.values("open_findings")[:1]),
            evidence_count=Coalesce(Subquery(evidence.annotate(n=Count("pk")).values("n")), Value(0)),
            evidence_valid_until=Subquery(evidence.annotate(last=Max("valid_until")).values("last")),
        )
    )


def evidence_list(user, membership=None) -> QuerySet[Evidence]:
    """Evidence metadata of the user's book (never the file), its obligation and uploader joined. One
    query for any page of rows."""
    return Evidence.objects.filter(obligation__account__in=visible_accounts(user, membership)).select_related(
        "obligation", "uploaded_by"
    )


def audit_result_list(user, membership=None) -> QuerySet[AuditResult]:
    """Compliance audit results of the user's book, obligation joined. One query for any page of rows."""
    return AuditResult.objects.filter(obligation__account__in=visible_accounts(user, membership)).select_related(
        "obligation"
    )


def compliance_status_list(user, membership=None) -> QuerySet[ComplianceStatusSnapshot]:
    """Accounts' daily compliance snapshots (worst obligation status and counts per status) of the
    user's book, account joined. One query for any page of rows."""
    return ComplianceStatusSnapshot.objects.filter(account__in=visible_accounts(user, membership)).select_related(
        "account"
    )


def latest_snapshot_day() -> Subquery:
    """The tenant's latest snapshot day, as a subquery (the nightly writes every account's snapshot of a
    day at once, so that day holds the current status of every account that has obligations)."""
    return Subquery(ComplianceStatusSnapshot.objects.order_by("-snapshot_date").values("snapshot_date")[:1])
