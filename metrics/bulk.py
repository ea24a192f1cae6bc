"""Bulk ingest from the API (issue #5): all-or-nothing writes of up to API_BULK_MAX_ROWS KPI measurements,
survey responses or incidents, validated set-based.

Raw JSON rows are validated here: a fixed number of queries for the whole request (accounts of the
caller's book, KPI definitions, contacts, existing values), then per-row checks in memory. Any bad row
and nothing is written: BulkRowsInvalid lists every bad row. The audit trail gets ONE audit_record_many
call per request: a summary event naming every stored id, the row count and a SHA-256 of the stored
values (so the event can be checked against the table), plus, for measurements that replace an earlier
value of the same day, one kpi_measurement.update event each with before and after, exactly as the
single-row service records corrections: a correction must never vanish into a digest."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Contact
from cs_platform import bounds
from cs_platform.audit.services import audit_record_many
from cs_platform.tenancy import context
from cs_platform.tenancy.clock import tenant_today
from metrics import rules
from metrics.models import Incident, KpiMeasurement, Severity, SurveyResponse, SurveyType
from segments.models import KpiDefinition

BULK_ERRORS_LISTED = 1000
_MAX_VALUE = Decimal(10) ** 10  # KpiMeasurement.value: 14 digits, 4 after the point
_QUANTUM = Decimal("0.0001")
_MAX_ID = bounds.MAX_ID  # bigint: a larger "id" is a bad row, not a database error


class BulkRowsInvalid(Exception):
    """Some rows of a bulk request are bad. errors: [{"row", "field", "code", "message"}] by row, every one."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(f"{len({e['row'] for e in errors})} bad row(s)")
        self.errors = errors

    @property
    def bad_rows(self) -> int:
        return len({error["row"] for error in self.errors})


class _Checker:
    """Collects row errors; each parser returns _BAD after recording why."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.bad: set[int] = set()

    def fail(self, row: int, field: str | None, code: str, message: str):
        self.errors.append({"row": row, "field": field, "code": code, "message": message})
        self.bad.add(row)
        return _BAD

    def rows(self, rows: list[Any]) -> list[tuple[int, dict[str, Any]]]:
        good = []
        for index, row in enumerate(rows):
            if isinstance(row, dict):
                good.append((index, row))
            else:
                self.fail(index, None, "invalid", f"A row must be a JSON object, not {type(row).__name__}.")
        return good

    def id(self, index: int, row: dict, field: str, *, required: bool = True):
        value = row.get(field)
        if value is None:
            return self.fail(index, field, "required", "This field is required.") if required else None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_ID:
            return self.fail(index, field, "invalid", "An object id (a positive whole number) is required.")
        return value

    def refuse(self, index: int, field: str, refusal: rules.Refusal):
        """A rule of metrics.rules broken: the same code and message as the one-row service gives."""
        return self.fail(index, field, refusal.code, refusal.message)

    def date(self, index: int, row: dict, field: str):
        value = row.get(field)
        if value is None:
            return self.fail(index, field, "required", "This field is required.")
        try:
            day = datetime.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
        except ValueError:
            day = None
        if day is None:
            return self.fail(index, field, "invalid", "A date as YYYY-MM-DD is required.")
        if message := bounds.date_error(day):
            return self.fail(index, field, "date_out_of_range", message)
        return day

    def moment(self, index: int, row: dict, field: str, *, now: datetime.datetime, required: bool):
        """An ISO 8601 moment within the platform's range and not in the future (see rules.moment_not_future)."""
        value = row.get(field)
        if value is None:
            return self.fail(index, field, "required", "This field is required.") if required else None
        try:
            moment = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None:
            return self.fail(index, field, "invalid", "A date and time in ISO 8601 is required.")
        # Before any shift to another zone: year 1 at +14:00 is year 0 in UTC, which PostgreSQL stores
        # (as 1 BC) and Python cannot read back, so every later read of the row failed.
        if message := bounds.moment_error(moment):
            return self.fail(index, field, "date_out_of_range", message)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        if refusal := rules.moment_not_future(moment, now=now):
            return self.refuse(index, field, refusal)
        return moment

    def text(self, index: int, row: dict, field: str, *, max_length: int | None, required: bool, default: str = ""):
        value = row.get(field)
        if value is None:
            return self.fail(index, field, "required", "This field is required.") if required else default
        if not isinstance(value, str):
            return self.fail(index, field, "invalid", "A string is required.")
        if "\x00" in value:
            return self.fail(index, field, "null_characters_not_allowed", bounds.NUL_MESSAGE)
        if required and not value.strip():
            return self.fail(index, field, "blank", "This field may not be blank.")
        if max_length is not None and len(value) > max_length:
            return self.fail(index, field, "max_length", f"At most {max_length} characters.")
        return value

    def choice(self, index: int, row: dict, field: str, choices: list[str]):
        value = row.get(field)
        if value is None:
            return self.fail(index, field, "required", "This field is required.")
        if value not in choices:
            return self.fail(index, field, "invalid_choice", f"{value!r} is not one of {', '.join(choices)}.")
        return value

    def raise_if_bad(self) -> None:
        if self.errors:
            raise BulkRowsInvalid(sorted(self.errors, key=lambda e: e["row"]))


class _Bad:
    def __repr__(self) -> str:
        return "<bad>"


_BAD = _Bad()


_Key = tuple[int, int, datetime.date]


def _pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal ('{1,2,3}') for numbers and ISO dates, cast in the SQL: psycopg2 sends a
    Python list as ARRAY[1, 2, ...], one expression per element for the server to parse (a quarter of a
    10,000-row request's time); array_in reads the literal at a fraction of that cost."""
    return "{" + ",".join(str(value) for value in values) + "}"


def _visible_segments(accounts, rows: list[tuple[int, dict]]) -> dict[int, int]:
    """{account id: segment id} of the rows' accounts that are in `accounts` (the caller's book): one query."""
    wanted = sorted(
        {row["account"] for _, row in rows if type(row.get("account")) is int and 1 <= row["account"] <= _MAX_ID}
    )
    if not wanted:
        return {}
    if connection.vendor == "postgresql":
        # One array parameter instead of 10,000 literals: Django compiles a long IN list slowly.
        ids = RawSQL("SELECT unnest(%s::bigint[])", [_pg_array(wanted)])
        return dict(accounts.filter(pk__in=ids).values_list("pk", "segment_id"))
    return dict(accounts.filter(pk__in=wanted).values_list("pk", "segment_id"))


def _account(check: _Checker, index: int, row: dict, segments: dict[int, int]):
    account = check.id(index, row, "account")
    if account is not _BAD and account not in segments:
        return check.fail(index, "account", "does_not_exist", f"No account {account} in your book.")
    return account


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _existing_measurements(tenant, keys: list[_Key]) -> dict[_Key, tuple[int, Decimal, str]]:
    """{(account, kpi, day): (id, value, source)} of the rows an upsert will replace (the SQLite demo's
    path; PostgreSQL locks and reads them in _measurements_upsert_pg)."""
    if not keys:
        return {}
    found = KpiMeasurement.objects.filter(
        account_id__in={k[0] for k in keys}, kpi_id__in={k[1] for k in keys}, measured_on__in={k[2] for k in keys}
    ).values_list("account_id", "kpi_id", "measured_on", "id", "value", "source")
    wanted = set(keys)
    return {(a, k, d): (pk, v, s) for a, k, d, pk, v, s in found if (a, k, d) in wanted}


def kpi_measurements_bulk_ingest(
    *, tenant, rows: list[Any], accounts, actor=None, source: str = "api", note: dict[str, Any] | None = None
) -> dict[str, Any]:
    """All-or-nothing ingest of raw API rows {"account": id, "kpi": id or "kpi_code": code,
    "measured_on": "YYYY-MM-DD", "value": number}. `accounts` is the caller's book (visible_accounts):
    an account outside it is a bad row. A value for an (account, KPI, day) that already has one replaces
    it, as kpi_measurement_record does, and each replaced value gets its own before/after audit event.
    A constant number of queries: the book's segments, KPIs, the upsert (on PostgreSQL one statement
    for new keys; plus lock-and-read and update when values are replaced), and the audit append
    (lock, head, insert). Concurrent requests writing the same keys queue on the rows, and each
    reports and audits exactly the values it replaced, including another request's just committed.
    Returns {"stored", "created", "updated", "sha256", "ids"}; raises BulkRowsInvalid."""

    check = _Checker()
    good = check.rows(rows)
    today = tenant_today(tenant)
    with transaction.atomic(), context.tenant_context(tenant):
        segments = _visible_segments(accounts, good)
        kpis = {
            pk: (segment, code) for pk, segment, code in KpiDefinition.objects.values_list("pk", "segment_id", "code")
        }
        by_code = {(segment, code): pk for pk, (segment, code) in kpis.items()}
        clean: dict[tuple[int, int, datetime.date], Decimal] = {}
        first_row: dict[tuple[int, int, datetime.date], int] = {}
        for index, row in good:
            account = _account(check, index, row, segments)
            if "kpi" in row or "kpi_code" not in row:
                kpi = check.id(index, row, "kpi")
                if kpi is not _BAD and kpi not in kpis:
                    kpi = check.fail(index, "kpi", "does_not_exist", f"No KPI {kpi} in this tenant.")
                kpi_field = "kpi"
            else:
                code = check.text(index, row, "kpi_code", max_length=None, required=True)
                kpi_field = "kpi_code"
                kpi = _BAD
                if code is not _BAD and account is not _BAD:
                    kpi = by_code.get((segments[account], code))
                    if kpi is None:
                        kpi = check.fail(
                            index, "kpi_code", "does_not_exist", f"No KPI {code!r} in account {account}'s segment."
                        )
            if kpi is not _BAD and account is not _BAD:
                refusal = rules.kpi_of_account_segment(
                    kpi_segment_id=kpis[kpi][0], account_segment_id=segments[account]
                )
                if refusal:
                    kpi = check.refuse(index, kpi_field, refusal)
            day = check.date(index, row, "measured_on")
            if day is not _BAD and (refusal := rules.measured_on_not_future(day, today=today)):
                day = check.refuse(index, "measured_on", refusal)
            value = row.get("value")
            if value is None:
                value = check.fail(index, "value", "required", "This field is required.")
            elif isinstance(value, bool) or not isinstance(value, int | float | str):
                value = check.fail(index, "value", "invalid", "A number is required.")
            else:
                try:
                    value = Decimal(str(value))
                    if not value.is_finite():
                        raise InvalidOperation
                except (InvalidOperation, ValueError):
                    value = check.fail(index, "value", "invalid", "A finite number is required.")
                else:
                    if abs(value) >= _MAX_VALUE:
                        value = check.fail(index, "value", "max_digits", "At most 10 digits before the point.")
                    elif value != value.quantize(_QUANTUM):
                        value = check.fail(index, "value", "max_decimal_places", "At most 4 digits after the point.")
            if index in check.bad:
                continue
            key = (account, kpi, day)
            if key in first_row:
                check.fail(
                    index,
                    "measured_on",
                    "duplicate",
                    f"Row {first_row[key]} already gives this account's KPI for {day.isoformat()}.",
                )
                continue
            first_row[key] = index
            clean[key] = value
        check.raise_if_bad()

        keys = list(clean)
        id_of, existing = _measurements_upsert(tenant, clean, source=source)
        digest = _digest([f"{a}|{k}|{d.isoformat()}|{v}" for (a, k, d), v in sorted(clean.items())])
        ids = [id_of[key] for key in keys]  # in row order
        events = [
            {
                "action": "kpi_measurement.bulk_record",
                "object_type": "metrics.kpimeasurement",
                "object_id": None,
                "after": {
                    "rows": len(keys),
                    "created": len(keys) - len(existing),
                    "updated": len(existing),
                    "source": source,
                    "sha256": digest,
                    "ids": ids,
                    **(note or {}),
                },
            }
        ]
        for key in keys:
            before = existing.get(key)
            if before is not None:
                events.append(
                    {
                        "action": "kpi_measurement.update",
                        "object_type": "metrics.kpimeasurement",
                        "object_id": id_of[key],
                        "before": {"value": str(before[1]), "source": before[2]},
                        "after": {"value": str(clean[key]), "source": source},
                    }
                )
        audit_record_many(tenant=tenant, actor=actor, events=events)
    return {
        "stored": len(keys),
        "created": len(keys) - len(existing),
        "updated": len(existing),
        "sha256": digest,
        "ids": ids,
    }


def _measurements_upsert(
    tenant, clean: dict[_Key, Decimal], *, source: str
) -> tuple[dict[_Key, int], dict[_Key, tuple[int, Decimal, str]]]:
    """Insert or replace the values. Returns ({key: id}, {key: (id, value, source) before} of the replaced
    rows): exactly what this transaction created and what it overwrote, also while other requests write
    the same keys (see _measurements_upsert_pg)."""
    keys = list(clean)
    if connection.vendor != "postgresql":
        # The SQLite demo runs one process: nothing can write between the read and the write.
        existing = _existing_measurements(tenant, keys)
        objects = [
            KpiMeasurement(tenant=tenant, account_id=a, kpi_id=k, measured_on=d, value=v, source=source)
            for (a, k, d), v in clean.items()
        ]
        KpiMeasurement.objects.bulk_create(
            objects,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["tenant", "account", "kpi", "measured_on"],
            update_fields=["value", "source", "recorded_at"],
        )
        return {(o.account_id, o.kpi_id, o.measured_on): o.pk for o in objects}, existing
    return _measurements_upsert_pg(tenant, clean, source=source)


# Rounds of insert-then-lock before giving up: a key needs another round only when its row is deleted
# between our insert attempt and our lock, so a second round is already rare.
_UPSERT_ROUNDS = 5


def _measurements_upsert_pg(
    tenant, clean: dict[_Key, Decimal], *, source: str
) -> tuple[dict[_Key, int], dict[_Key, tuple[int, Decimal, str]]]:
    """The PostgreSQL upsert, safe under concurrent writers of the same keys (READ COMMITTED):

    1. INSERT ... ON CONFLICT DO NOTHING RETURNING: the keys this transaction creates. A key another
       transaction has inserted but not committed makes the statement wait for that transaction, so
       after it every other key has a committed row.
    2. SELECT ... FOR UPDATE of those rows (a new statement, so a new snapshot that sees them): each
       row's current value, locked until we commit, so nobody can change it between this read and
       our write. FOR UPDATE returns the latest committed version after waiting for a writer.
    3. UPDATE of the locked rows to the new values.

    A single INSERT ... ON CONFLICT DO UPDATE with a CTE reading the old values (the previous design)
    reported a row committed by another request after the statement's snapshot as "created", with no
    before/after audit event, because the CTE does not see it while ON CONFLICT still overwrites it.
    Per-key advisory locks were the other option, but 10,000 keys need 10,000 entries in the shared
    lock table: two concurrent 10,000-row requests exhaust it ("out of shared memory") with the
    default max_locks_per_transaction; row locks live in the rows themselves.
    Deadlocks: inserts go in key order and row locks in id order, so two requests with overlapping keys
    queue rather than wait for each other. A fresh ingest is one statement (step 1), as before."""
    pending = sorted(clean)
    id_of: dict[_Key, int] = {}
    existing: dict[_Key, tuple[int, Decimal, str]] = {}
    with connection.cursor() as cursor:
        for _ in range(_UPSERT_ROUNDS):
            cursor.execute(
                "INSERT INTO metrics_kpimeasurement"
                " (tenant_id, account_id, kpi_id, measured_on, value, source, recorded_at)"
                " SELECT %(t)s, r.a, r.k, r.d, r.v, %(s)s, now()"
                " FROM unnest(%(a)s::bigint[], %(k)s::bigint[], %(d)s::date[], %(v)s::numeric[]) AS r(a, k, d, v)"
                " ORDER BY r.a, r.k, r.d"
                " ON CONFLICT (tenant_id, account_id, kpi_id, measured_on) DO NOTHING"
                " RETURNING id, account_id, kpi_id, measured_on",
                {"t": tenant.pk, "s": source, **_key_arrays(pending), "v": _pg_array(clean[key] for key in pending)},
            )
            for pk, a, k, d in cursor.fetchall():
                id_of[(a, k, d)] = pk
            taken = [key for key in pending if key not in id_of]
            if not taken:
                break
            cursor.execute(
                "SELECT m.id, m.account_id, m.kpi_id, m.measured_on, m.value, m.source FROM metrics_kpimeasurement m"
                " JOIN unnest(%(a)s::bigint[], %(k)s::bigint[], %(d)s::date[]) AS r(a, k, d)"
                "   ON m.account_id = r.a AND m.kpi_id = r.k AND m.measured_on = r.d"
                " WHERE m.tenant_id = %(t)s ORDER BY m.id FOR UPDATE OF m",
                {"t": tenant.pk, **_key_arrays(taken)},
            )
            for pk, a, k, d, value, before_source in cursor.fetchall():
                id_of[(a, k, d)] = pk
                existing[(a, k, d)] = (pk, value, before_source)
            # A row deleted after step 1 (its account deleted, say) is inserted in the next round.
            pending = [key for key in taken if key not in id_of]
            if not pending:
                break
        else:
            raise RuntimeError(f"{len(pending)} KPI measurements kept changing under the upsert; retry the request.")
        if existing:
            replaced = sorted((pk, key) for key, (pk, _, _) in existing.items())
            cursor.execute(
                "UPDATE metrics_kpimeasurement m SET value = r.v, source = %(s)s, recorded_at = now()"
                " FROM unnest(%(i)s::bigint[], %(v)s::numeric[]) AS r(i, v) WHERE m.id = r.i",
                {"s": source, "i": _pg_array(pk for pk, _ in replaced), "v": _pg_array(clean[k] for _, k in replaced)},
            )
    return id_of, existing


def _key_arrays(keys: list[_Key]) -> dict[str, str]:
    return {
        "a": _pg_array(key[0] for key in keys),
        "k": _pg_array(key[1] for key in keys),
        "d": _pg_array(key[2].isoformat() for key in keys),
    }


def survey_responses_bulk_ingest(
    *, tenant, rows: list[Any], accounts, actor=None, note: dict[str, Any] | None = None
) -> dict[str, Any]:
    """All-or-nothing ingest of raw API rows {"account": id, "survey_type": "nps"|"csat"|"ces", "score":
    whole number in the type's scale, "responded_on": "YYYY-MM-DD", "contact"?: id of the account's
    contact, "comment"?: text}. Five queries whatever the number of rows: book, contacts, insert
    (2,000 rows a statement), audit append. Returns {"stored", "sha256", "ids"}; raises BulkRowsInvalid."""
    check = _Checker()
    good = check.rows(rows)
    today = tenant_today(tenant)
    with transaction.atomic(), context.tenant_context(tenant):
        segments = _visible_segments(accounts, good)
        contact_ids = {
            row["contact"] for _, row in good if type(row.get("contact")) is int and 1 <= row["contact"] <= _MAX_ID
        }
        contacts = (
            dict(Contact.objects.filter(pk__in=contact_ids).values_list("pk", "account_id")) if contact_ids else {}
        )
        objects: list[SurveyResponse] = []
        for index, row in good:
            account = _account(check, index, row, segments)
            survey_type = check.choice(index, row, "survey_type", list(SurveyType.values))
            score = row.get("score")
            if score is None:
                check.fail(index, "score", "required", "This field is required.")
            elif isinstance(score, bool) or not isinstance(score, int):
                check.fail(index, "score", "invalid", "A whole number is required.")
            elif survey_type is not _BAD and (refusal := rules.survey_score_in_scale(survey_type, score)):
                check.refuse(index, "score", refusal)
            day = check.date(index, row, "responded_on")
            if day is not _BAD and (refusal := rules.responded_on_not_future(day, today=today)):
                day = check.refuse(index, "responded_on", refusal)
            contact = check.id(index, row, "contact", required=False)
            if contact not in (None, _BAD) and account is not _BAD and contacts.get(contact) != account:
                check.fail(index, "contact", "does_not_exist", f"No contact {contact} of account {account}.")
            comment = check.text(index, row, "comment", max_length=bounds.TEXT_MAX_LENGTH, required=False)
            if index in check.bad:
                continue
            objects.append(
                SurveyResponse(
                    tenant=tenant,
                    account_id=account,
                    contact_id=contact,
                    survey_type=survey_type,
                    score=score,
                    responded_on=day,
                    comment=comment,
                )
            )
        check.raise_if_bad()
        return _bulk_store(
            tenant=tenant,
            actor=actor,
            model=SurveyResponse,
            objects=objects,
            action="survey_response.bulk_create",
            note=note,
            line=lambda o: (
                f"{o.pk}|{o.account_id}|{o.contact_id or ''}|{o.survey_type}|{o.score}|{o.responded_on.isoformat()}|"
                f"{hashlib.sha256(o.comment.encode()).hexdigest()}"
            ),
        )


def _bulk_store(
    *, tenant, actor, model, objects: list, action: str, line: Callable[[Any], str], note: dict[str, Any] | None
) -> dict[str, Any]:
    """Insert validated rows and append ONE summary audit event naming every new id and a SHA-256 over
    one `line` per stored row, so a regulator can tie the event to exactly the rows it created."""
    model.objects.bulk_create(objects, batch_size=2000)
    digest = _digest([line(o) for o in objects])
    ids = [o.pk for o in objects]
    audit_record_many(
        tenant=tenant,
        actor=actor,
        events=[
            {
                "action": action,
                "object_type": model._meta.label_lower,
                "object_id": None,
                "after": {"rows": len(objects), "sha256": digest, "ids": ids, **(note or {})},
            }
        ],
    )
    return {"stored": len(objects), "sha256": digest, "ids": ids}


def incidents_bulk_ingest(
    *, tenant, rows: list[Any], accounts, actor=None, note: dict[str, Any] | None = None
) -> dict[str, Any]:
    """All-or-nothing ingest of raw API rows {"account": id, "title": text, "severity": "sev1".."sev4",
    "opened_at"?: ISO 8601 (default now), "resolved_at"?: ISO 8601 or null, "escalated"?: bool,
    "external_ref"?: text}. Four queries whatever the number of rows: book, insert, audit append.
    Returns {"stored", "sha256", "ids"}; raises BulkRowsInvalid."""
    check = _Checker()
    good = check.rows(rows)
    now = timezone.now()
    with transaction.atomic(), context.tenant_context(tenant):
        segments = _visible_segments(accounts, good)
        objects: list[Incident] = []
        for index, row in good:
            account = _account(check, index, row, segments)
            title = check.text(index, row, "title", max_length=200, required=True)
            severity = check.choice(index, row, "severity", list(Severity.values))
            opened_at = check.moment(index, row, "opened_at", now=now, required=False)
            resolved_at = check.moment(index, row, "resolved_at", now=now, required=False)
            if opened_at is None:
                opened_at = now
            if resolved_at not in (None, _BAD) and opened_at is not _BAD:
                if refusal := rules.resolved_after_opened(opened_at=opened_at, resolved_at=resolved_at):
                    check.refuse(index, "resolved_at", refusal)
            escalated = row.get("escalated", False)
            if not isinstance(escalated, bool):
                check.fail(index, "escalated", "invalid", "true or false is required.")
            external_ref = check.text(index, row, "external_ref", max_length=80, required=False)
            if index in check.bad:
                continue
            objects.append(
                Incident(
                    tenant=tenant,
                    account_id=account,
                    title=title,
                    severity=severity,
                    opened_at=opened_at,
                    resolved_at=resolved_at,
                    escalated=escalated,
                    external_ref=external_ref,
                )
            )
        check.raise_if_bad()
        return _bulk_store(
            tenant=tenant,
            actor=actor,
            model=Incident,
            objects=objects,
            action="incident.bulk_create",
            note=note,
            line=lambda o: (
                f"{o.pk}|{o.account_id}|{o.severity}|{o.opened_at.isoformat()}|"
                f"{o.resolved_at.isoformat() if o.resolved_at else ''}|{o.escalated}|{o.external_ref}|"
                f"{hashlib.sha256(o.title.encode()).hexdigest()}"
            ),
        )
