"""The audit trail through the REST API: list (filters, seq order, cursor pages, query count), one event,
who may read it, and the streamed CSV/JSON export, verified here from the documented rule alone."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import account_update, contact_create, touchpoint_log
from api import audit_events as audit_api
from cs_platform.audit.models import AuditEvent
from cs_platform.audit.services import audit_record, audit_record_many
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from tests.api.helpers import bearer
from tests.helpers import owned_account

LIST = "/api/v1/audit-events/"
EXPORT = "/api/v1/audit-events/export/"
GENESIS = "0" * 64
# The fields the documentation says the hash covers (the export's columns without `hash`).
HASHED_FIELDS = {
    "tenant",
    "seq",
    "actor",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "created_at",
    "prev_hash",
}


# --- an independent verifier, written from the documented rule (not the app's chain module) ------------


class ChainBroken(AssertionError):
    pass


def sha256_of_event(event: dict) -> str:
    payload = {key: value for key, value in event.items() if key != "hash"}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify_segment(events: list[dict], start_prev_hash: str) -> int:
    """Raise ChainBroken at the first event whose hash or link does not hold; return how many verified."""
    expected_prev, expected_seq = start_prev_hash, None
    for event in events:
        if sha256_of_event(event) != event["hash"]:
            raise ChainBroken(f"seq {event['seq']}: content does not match its hash")
        if event["prev_hash"] != expected_prev:
            raise ChainBroken(f"seq {event['seq']}: prev_hash is not the previous event's hash")
        if expected_seq is not None and event["seq"] != expected_seq:
            raise ChainBroken(f"seq {event['seq']}: expected seq {expected_seq}")
        expected_prev, expected_seq = event["hash"], event["seq"] + 1
    return len(events)


def events_from_csv(text: str) -> list[dict]:
    """CSV cells back to the payload's JSON types, as the documentation says: first drop the one ' the
    export puts in front of a cell a spreadsheet would read as a formula (or that starts with ')."""
    events = []
    for raw in csv.DictReader(io.StringIO(text, newline="")):
        row = {key: value[1:] if value.startswith("'") else value for key, value in raw.items()}
        row["tenant"], row["seq"] = int(row["tenant"]), int(row["seq"])
        row["actor"] = int(row["actor"]) if row["actor"] else None
        row["before"], row["after"] = json.loads(row["before"]), json.loads(row["after"])
        events.append(row)
    return events


# --- helpers ------------------------------------------------------------------------------------------


def _real_writes(world) -> dict:
    """A realistic trail from real services: accounts, an update, a contact and touchpoints with text that
    tests the canonical form (non-ASCII, quotes, commas, newlines), and a system event."""
    admin, csm = world.user(Role.ADMIN), world.user(Role.CSM)
    account = owned_account(world, "Zürich Cantonal Credit Union")
    other = owned_account(world, "Harbor Point Bank")
    account = account_update(tenant=world.tenant, account=account, actor=admin, arr=Decimal("125000.50"))
    contact = contact_create(
        tenant=world.tenant, account=account, actor=csm, name="Zoë Ångström", email="zoe@zurich.test"
    )
    for subject, notes in [
        ("QBR, Q3", 'Said "renewal looks good";\nwants ISO 20022 → 2027'),
        ("Call", "=SUM(A1:A9) is just text here"),
    ]:
        touchpoint_log(
            tenant=world.tenant,
            account=account,
            actor=csm,
            kind="meeting",
            subject=subject,
            notes=notes,
            occurred_at=timezone.now() - datetime.timedelta(hours=1),
        )
    audit_record_many(
        tenant=world.tenant,
        actor=None,
        events=[{"action": "health.recompute", "object_type": "metrics.run", "object_id": 1, "after": {"ok": True}}],
    )
    return {"account": account, "other": other, "contact": contact}


def _db_events(world) -> list[AuditEvent]:
    with context.tenant_context(world.tenant):
        return list(AuditEvent.objects.order_by("seq"))


def _get_all(client, url: str, **headers) -> list[dict]:
    """Follow `next` to the end."""
    items = []
    while url:
        response = client.get(url, **headers)
        assert response.status_code == 200, response.content
        body = response.json()
        items += body["results"]
        url = body["next"]
    return items


def _export(client, file_format: str, query: dict | None = None, **headers):
    params = {"format": file_format, **(query or {})}
    response = client.get(f"{EXPORT}?{urlencode(params)}", **headers)
    assert response.status_code == 200, response.content
    assert response.streaming
    return response, b"".join(response.streaming_content).decode("utf-8")


def _export_events(client, file_format: str, query: dict | None = None, **headers) -> list[dict]:
    _, text = _export(client, file_format, query, **headers)
    if file_format == "csv":
        return events_from_csv(text)
    body = json.loads(text)
    assert body["count"] == len(body["events"])
    return body["events"]


# --- list and retrieve -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_gives_every_field_in_seq_order_matching_the_database(client, tenant_a):
    _real_writes(tenant_a)
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    stored = _db_events(tenant_a)  # before the read: the list records its own audit.read after the page
    items = _get_all(client, LIST)
    assert [item["seq"] for item in items] == [event.seq for event in stored] == list(range(1, len(stored) + 1))
    first, event = items[0], stored[0]
    assert set(first) == {
        "id",
        "seq",
        "created_at",
        "actor",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "before",
        "after",
        "prev_hash",
        "hash",
    }
    assert first["id"] == event.pk and first["hash"] == event.hash and first["prev_hash"] == GENESIS
    # The canonical time the hash covers: UTC, microseconds, +00:00.
    assert first["created_at"] == event.created_at.astimezone(datetime.UTC).isoformat(timespec="microseconds")
    assert first["created_at"].endswith("+00:00")
    system = items[-1]
    assert (system["actor"], system["actor_label"], system["action"]) == (None, "system", "health.recompute")
    update = next(item for item in items if item["action"] == "account.update")
    assert update["actor"] == tenant_a.user(Role.ADMIN).pk and update["before"] and update["after"]


@pytest.mark.django_db
def test_cursor_pages_walk_forward_by_seq_and_ordering_can_reverse(client, tenant_a):
    _real_writes(tenant_a)
    client.force_login(tenant_a.user(Role.ADMIN))
    total = len(_db_events(tenant_a))
    paged = _get_all(client, f"{LIST}?page_size=2")
    # Each page's audit.read event is appended after that page, so the walk also meets the reads of the pages
    # before the last: no event is skipped or repeated, and it ends.
    assert [item["seq"] for item in paged] == list(range(1, len(paged) + 1))
    assert len(paged) > total and {item["action"] for item in paged[total:]} == {"audit.read"}
    head = len(_db_events(tenant_a))
    newest_first = client.get(f"{LIST}?ordering=-seq&page_size=3").json()["results"]
    assert [item["seq"] for item in newest_first] == [head, head - 1, head - 2]


@pytest.mark.django_db
def test_filters(client, tenant_a):
    world = _real_writes(tenant_a)
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    stored = _db_events(tenant_a)
    account = world["account"]
    csm = tenant_a.user(Role.CSM)

    def seqs(**query) -> list[int]:
        return [item["seq"] for item in _get_all(client, f"{LIST}?{urlencode(query)}")]

    def expected(predicate) -> list[int]:
        return [event.seq for event in stored if predicate(event)]

    assert seqs(object_type="accounts.account", object_id=account.pk) == expected(
        lambda e: e.object_type == "accounts.account" and e.object_id == str(account.pk)
    )
    assert len(seqs(object_type="accounts.account", object_id=account.pk)) == 3  # create, grant_csm, update
    assert seqs(action="touchpoint.log") == expected(lambda e: e.action == "touchpoint.log")
    assert len(seqs(action="touchpoint.log")) == 2
    assert seqs(actor=csm.pk) == expected(lambda e: e.actor_id == csm.pk) != []
    assert seqs(actor_label=csm.email.upper()) == seqs(actor=csm.pk)  # the email, case-insensitive
    assert seqs(seq_after=2, seq_before=5) == [3, 4]
    head = _db_events(tenant_a)[-1].seq  # the reads above were recorded after `stored`
    assert seqs(seq_after=head) == []  # nothing new since the last seq a client holds
    # created_after is inclusive, created_before exclusive: [third, sixth) holds the 3rd to 5th events.
    third, sixth = stored[2].created_at, stored[5].created_at
    assert stored[1].created_at < third < stored[3].created_at  # distinct times, so the window is exact
    window = {"created_after": third.isoformat(), "created_before": sixth.isoformat()}
    assert seqs(**window) == [3, 4, 5]
    assert seqs(created_after=(third + datetime.timedelta(microseconds=1)).isoformat())[0] == 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"seq_after": "abc"}, "seq_after"),
        ({"seq_before": "1.5"}, "seq_before"),
        ({"seq_after": "1e400"}, "seq_after"),
        ({"actor": "-1"}, "actor"),
        ({"created_after": "yesterday"}, "created_after"),
    ],
)
def test_bad_filters_are_400_in_the_error_format(client, tenant_a, query, field):
    client.force_login(tenant_a.user(Role.ADMIN))
    for url in (f"{LIST}?{urlencode(query)}", f"{EXPORT}?{urlencode({'format': 'json', **query})}"):
        response = client.get(url)
        assert response.status_code == 400, (url, response.content)
        body = response.json()
        assert body["code"] == "invalid" and [error["field"] for error in body["errors"]] == [field]


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_the_rows(client, tenant_a):
    token = bearer(tenant_a, "audit:read")
    client.force_login(tenant_a.user(Role.ADMIN))
    client.get(LIST)  # warm up: the session's tenant selection, the token's last-used stamp
    client.get(LIST, **token)

    def queries_for(rows: int, **headers) -> tuple[int, int]:
        audit_record_many(
            tenant=tenant_a.tenant,
            actor=None,
            events=[{"action": "check", "object_type": "check", "object_id": i} for i in range(rows)],
        )
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"{LIST}?page_size=100", **headers)
        assert response.status_code == 200
        return len(captured), len(response.json()["results"])

    # Session: django_session, auth_user, tenancy_membership (tenant middleware), then ONE SELECT of
    # audit_auditevent for the page. Nothing per row: actor is the FK id, before/after are columns.
    # Then the read's own audit.read event (audit_record): SAVEPOINT (the test's transaction; BEGIN in
    # production), the per-tenant pg_advisory_xact_lock, the chain head's SELECT, the INSERT, RELEASE.
    (few, shown_few), (many, shown_many) = queries_for(2), queries_for(18)
    assert shown_few < shown_many and few == many == 4 + 5
    client.logout()
    # Token: the token's tenant (SECURITY DEFINER lookup), api_apitoken, tenancy_membership, the page's
    # SELECT; then the same five for the audit.read event.
    (few, shown_few), (many, shown_many) = queries_for(2, **token), queries_for(18, **token)
    assert shown_few < shown_many and few == many == 4 + 5


@pytest.mark.django_db
def test_retrieve_one_event_and_other_tenants_event_is_404(client, tenant_a, tenant_b):
    _real_writes(tenant_a)
    _real_writes(tenant_b)
    mine, theirs = _db_events(tenant_a)[3], _db_events(tenant_b)[3]
    for headers in ({}, bearer(tenant_a, "audit:read")):
        client.force_login(tenant_a.user(Role.COMPLIANCE))
        body = client.get(f"{LIST}{mine.pk}/", **headers).json()
        assert (body["id"], body["seq"], body["hash"], body["prev_hash"]) == (mine.pk, 4, mine.hash, mine.prev_hash)
        response = client.get(f"{LIST}{theirs.pk}/", **headers)
        assert response.status_code == 404
        assert response.json()["status"] == 404 and theirs.hash not in response.content.decode()
        assert client.get(f"{LIST}999999999/", **headers).status_code == 404
    # Lists and exports never carry another tenant's events either.
    listed = _get_all(client, LIST)
    assert theirs.hash not in {item["hash"] for item in listed}
    assert {event["tenant"] for event in _export_events(client, "json")} == {tenant_a.tenant.pk}


# --- who may read -----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_session_roles(client, tenant_a, role):
    allowed = role in Capability.VIEW_AUDIT_TRAIL.roles
    event = audit_record(tenant=tenant_a.tenant, actor=None, action="check", object_type="check", object_id=1)
    client.force_login(tenant_a.user(role))
    for url in (LIST, f"{LIST}{event.pk}/", f"{EXPORT}?format=csv", f"{EXPORT}?format=json"):
        response = client.get(url)
        assert response.status_code == (200 if allowed else 403), (role, url, response.status_code)
        if not allowed:
            assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db
def test_tokens_need_audit_read(client, tenant_a):
    event = audit_record(tenant=tenant_a.tenant, actor=None, action="check", object_type="check", object_id=1)
    without = bearer(tenant_a, "accounts:read", "compliance:read")
    with_scope = bearer(tenant_a, "audit:read")
    for url in (LIST, f"{LIST}{event.pk}/", f"{EXPORT}?format=json"):
        refused = client.get(url, **without)
        assert refused.status_code == 403, url
        assert refused.json()["message"] == "This token lacks the scope for this request."
        assert client.get(url, **with_scope).status_code == 200, url


@pytest.mark.django_db
def test_the_trail_is_read_only(client, tenant_a):
    event = audit_record(tenant=tenant_a.tenant, actor=None, action="check", object_type="check", object_id=1)
    client.force_login(tenant_a.user(Role.ADMIN))
    assert client.post(LIST, {}, content_type="application/json").status_code == 405
    for method in (client.put, client.patch, client.delete):
        assert method(f"{LIST}{event.pk}/", {}, content_type="application/json").status_code == 405


# --- export ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["json", "csv"])
def test_export_verifies_from_the_documented_rule_alone(client, tenant_a, tenant_b, file_format):
    _real_writes(tenant_b)  # another tenant's chain interleaves in the table
    _real_writes(tenant_a)
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    stored = _db_events(tenant_a)  # the export holds the trail up to its request, not its own audit.export
    events = _export_events(client, file_format)

    assert [event["seq"] for event in events] == list(range(1, len(stored) + 1))
    assert all(set(event) == HASHED_FIELDS | {"hash"} for event in events)
    assert [event["hash"] for event in events] == [event.hash for event in stored]
    assert verify_segment(events, GENESIS) == len(stored) >= 7
    # Non-ASCII text survived as text, and the system event's actor is null.
    assert any("Zoë Ångström" in json.dumps(event["after"], ensure_ascii=False) for event in events)
    assert events[-1]["actor"] is None and events[-1]["actor_label"] == "system"


def _tamperings():
    def change_label(events):
        events[2]["actor_label"] = "someone-else@alpha.test"

    def change_after(events):
        touchpoint = next(event for event in events if event["action"] == "touchpoint.log")
        touchpoint["after"]["subject"] = "Nothing happened"

    def shift_time(events):
        when = datetime.datetime.fromisoformat(events[1]["created_at"]) + datetime.timedelta(microseconds=1)
        events[1]["created_at"] = when.isoformat(timespec="microseconds")

    def drop_one(events):
        del events[3]

    def swap_two(events):
        events[2], events[3] = events[3], events[2]

    def rehash_one(events):
        # A forger who recomputes the altered event's hash still breaks the next event's link.
        events[2]["object_id"] = "999"
        events[2]["hash"] = sha256_of_event(events[2])

    return [change_label, change_after, shift_time, drop_one, swap_two, rehash_one]


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["json", "csv"])
@pytest.mark.parametrize("tamper", _tamperings(), ids=lambda f: f.__name__)
def test_tampering_with_an_export_fails_verification(client, tenant_a, file_format, tamper):
    _real_writes(tenant_a)
    client.force_login(tenant_a.user(Role.ADMIN))
    events = _export_events(client, file_format)
    verify_segment(events, GENESIS)  # intact: passes
    tamper(events)
    with pytest.raises(ChainBroken):
        verify_segment(events, GENESIS)


# Texts a spreadsheet would run as formulas (OWASP, ASVS 5.0 1.2.10), and one starting with the mark itself.
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1+1)", "\tTAB", "\rCR", "'quoted", '=HYPERLINK("x")']


@pytest.mark.django_db
def test_csv_cells_a_spreadsheet_would_run_are_neutralised_and_still_verify(client, tenant_a):
    from django.contrib.auth import get_user_model

    # A username may start with - (and + or @): Django's validator allows [\w.@+-].
    lead = get_user_model().objects.create_user(username="-2+3@alpha.test", password="x" * 20)
    for text in FORMULAS:
        audit_record(
            tenant=tenant_a.tenant, actor=lead, action=text, object_type=text, object_id=text, after={"v": text}
        )
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    _, text = _export(client, "csv")
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    cells = [cell for row in rows for cell in row]
    # No cell starts with a formula trigger: each of those got one ' in front, and so did the ' cell.
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r", "\0")]
    for value in FORMULAS:
        assert cells.count("'" + value) == 3, value  # action, object_type and object_id of its event
    assert cells.count("'-2+3@alpha.test") == len(FORMULAS)  # the actor_label column
    # Cells nothing could run are untouched (JSON text, hashes, times).
    assert all(row[9].startswith("{") and len(row[11]) == 64 for row in rows)

    # The documented rule undoes the mark: the CSV verifies and equals the verbatim JSON export.
    from_csv, from_json = events_from_csv(text), _export_events(client, "json")
    # The JSON export came later: it also holds the CSV export's own audit.export event, after the rest.
    assert from_csv == from_json[:-1] and from_json[-1]["action"] == "audit.export"
    assert verify_segment(from_csv, GENESIS) == len(rows)
    assert [event["action"] for event in from_csv[-len(FORMULAS) :]] == FORMULAS


def test_spreadsheet_safe_marks_only_what_a_spreadsheet_would_run():
    from cs_platform.spreadsheet import spreadsheet_safe

    for value in FORMULAS:
        assert spreadsheet_safe(value) == "'" + value
    for value in ("plain", "", " =1+1", "1-2", "a=b", '{"k": 1}'):
        assert spreadsheet_safe(value) == value
    for value in (None, -5, 3.5):
        assert spreadsheet_safe(value) == value  # numbers are written as numbers


@pytest.mark.django_db
def test_tampering_with_the_csv_text_fails_verification(client, tenant_a):
    _real_writes(tenant_a)
    client.force_login(tenant_a.user(Role.ADMIN))
    _, text = _export(client, "csv")
    assert "125000.50" in text
    with pytest.raises(ChainBroken):
        verify_segment(events_from_csv(text.replace("125000.50", "925000.50")), GENESIS)


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["json", "csv"])
def test_a_window_export_verifies_as_a_segment_that_joins_the_previous_one(client, tenant_a, file_format):
    _real_writes(tenant_a)
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    stored = _db_events(tenant_a)
    everything = _export_events(client, file_format)

    by_seq = _export_events(client, file_format, {"seq_after": 2, "seq_before": 6})
    assert [event["seq"] for event in by_seq] == [3, 4, 5]
    assert verify_segment(by_seq, by_seq[0]["prev_hash"]) == 3
    assert by_seq[0]["prev_hash"] == everything[1]["hash"]  # joins the events a client already holds
    with pytest.raises(ChainBroken):
        verify_segment(by_seq, GENESIS)  # it is not the chain's start

    window = {"created_after": stored[3].created_at.isoformat(), "created_before": stored[6].created_at.isoformat()}
    by_time = _export_events(client, file_format, window)
    assert [event["seq"] for event in by_time] == [4, 5, 6]
    assert verify_segment(by_time, everything[2]["hash"]) == 3

    # Filtered by action: not contiguous, but each event's own hash still verifies.
    touchpoints = _export_events(client, file_format, {"action": "touchpoint.log"})
    assert len(touchpoints) == 2 and all(sha256_of_event(event) == event["hash"] for event in touchpoints)


@pytest.mark.django_db
def test_export_streams_in_batches_without_losing_or_repeating_events(client, tenant_a, monkeypatch):
    monkeypatch.setattr(audit_api, "EXPORT_BATCH_SIZE", 3)
    already = len(_db_events(tenant_a))  # creating the tenant records a few events
    audit_record_many(
        tenant=tenant_a.tenant,
        actor=None,
        events=[{"action": "check", "object_type": "check", "object_id": i} for i in range(9 - already)],
    )
    client.force_login(tenant_a.user(Role.ADMIN))
    # Each export fixes its range, then records its audit.export event after it: back to back, they hold 9
    # events (a multiple of the batch size), then 10 (one more: the first export's event), then 11.
    for total, file_format in ((9, "json"), (10, "csv"), (11, "json"), (12, "csv")):
        events = _export_events(client, file_format)
        assert [event["seq"] for event in events] == list(range(1, total + 1))
        verify_segment(events, GENESIS)
    with CaptureQueriesContext(connection) as captured:
        _export(client, "json")  # 13 events
    batches = [q for q in captured if 'FROM "audit_auditevent"' in q["sql"] and "LIMIT 3" in q["sql"]]
    assert len(batches) == 5  # 3 + 3 + 3 + 3 + 1 rows: one query per batch, not one per row


@pytest.mark.django_db
def test_export_headers_and_json_envelope(client, tenant_a):
    _real_writes(tenant_a)
    client.force_login(tenant_a.user(Role.ADMIN))
    today = timezone.now().astimezone(datetime.UTC).date().isoformat()
    for file_format, content_type in (("csv", "text/csv; charset=utf-8"), ("json", "application/json")):
        response, text = _export(client, file_format, {"action": "touchpoint.log"})
        assert response["Content-Type"] == content_type
        assert response["Content-Disposition"] == f'attachment; filename="audit-alpha-{today}.{file_format}"'
        assert response["Cache-Control"] == "no-store"
    body = json.loads(text)
    assert body["tenant_slug"] == "alpha" and body["filters"] == {"action": "touchpoint.log"}
    assert "SHA-256" in body["verification"] and body["count"] == 2
    header = _export(client, "csv")[1].splitlines()[0]
    assert header == "seq,created_at,tenant,actor,actor_label,action,object_type,object_id,before,after,prev_hash,hash"


@pytest.mark.django_db
def test_export_ignores_drf_format_override_and_accept_header(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    for accept in ("text/csv", "application/json", "*/*"):
        response = client.get(f"{EXPORT}?format=csv", HTTP_ACCEPT=accept)
        assert response.status_code == 200, accept
        assert response["Content-Type"] == "text/csv; charset=utf-8"
    # Errors still come back as the API's JSON, whatever was asked for.
    refused = client.get(f"{EXPORT}?format=csv&seq_after=x", HTTP_ACCEPT="text/csv")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "seq_after"


@pytest.mark.django_db
def test_an_empty_export_is_still_valid(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    body = json.loads(_export(client, "json", {"seq_after": 10**9})[1])
    assert (body["events"], body["count"]) == ([], 0)
    assert _export(client, "csv", {"seq_after": 10**9})[1].count("\n") == 1  # the header only


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "?format=xml", "?format=CSV"])
def test_export_needs_a_known_format(client, tenant_a, query):
    client.force_login(tenant_a.user(Role.ADMIN))
    response = client.get(f"{EXPORT}{query}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "format"


@pytest.mark.django_db
def test_the_schema_documents_how_to_verify_the_export(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    operation = response.json()["paths"]["/api/v1/audit-events/export/"]["get"]
    text = " ".join(operation["description"].replace("`", "").split())
    for needle in (
        'json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)',
        "hash must equal the lowercase hex SHA-256",
        "prev_hash must equal the previous event's hash",
        "prev_hash = 64 zeros",
        "contiguous segment of the chain: verify it from its first event's prev_hash",
    ):
        assert needle in text, needle
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert {"format", "created_after", "created_before", "seq_after", "seq_before", "actor", "action"} <= names
