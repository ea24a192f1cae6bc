"""Reading the audit trail is itself audited (issue #15 item 5), and its signed checkpoints reach clients: the
JSON export carries them with their public keys, and the API lists them for CSV users."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from cs_platform.audit.models import AuditEvent, CheckpointReason
from cs_platform.audit.services import audit_checkpoint_create, audit_record_many, audit_trail_read_record
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from tests.api.helpers import bearer
from tests.helpers import event_count, last_event

LIST = "/api/v1/audit-events/"
EXPORT = "/api/v1/audit-events/export/"
CHECKPOINTS = "/api/v1/audit-checkpoints/"
PUBLIC_KEYS = "/api/v1/audit-checkpoints/public-keys/"
OTHER_PUBLIC = base64.b64encode(b"\x07" * 32).decode()


def _write(world, n: int) -> None:
    audit_record_many(
        tenant=world.tenant,
        actor=None,
        events=[{"action": "check", "object_type": "test", "object_id": i} for i in range(n)],
    )


def _token_id(world) -> int:
    from api.models import ApiToken

    with context.tenant_context(world.tenant):
        return ApiToken.objects.order_by("-pk").values_list("pk", flat=True)[0]


def _export(client, file_format: str, query: dict | None = None, **headers):
    response = client.get(f"{EXPORT}?{urlencode({'format': file_format, **(query or {})})}", **headers)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content).decode()


# --- reads and exports are recorded ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_list_read_is_recorded_after_the_page_with_its_filters(client, tenant_a):
    _write(tenant_a, 5)
    compliance = tenant_a.user(Role.COMPLIANCE)
    client.force_login(compliance)
    head = last_event(tenant_a.tenant).seq
    page = client.get(f"{LIST}?{urlencode({'seq_after': 2, 'action': 'check', 'page_size': 3})}").json()["results"]
    assert [item["seq"] for item in page] == [head - 4, head - 3, head - 2]
    read = last_event(tenant_a.tenant)
    assert read.seq == head + 1  # not in the page it records; the next read shows it
    assert (read.action, read.object_type, read.object_id) == ("audit.read", "audit.auditevent", "")
    assert (read.actor_id, read.actor_label) == (compliance.pk, compliance.username)
    assert read.after == {
        "via": "session",
        "filters": {"seq_after": "2", "action": "check", "page_size": "3"},
        "returned": 3,
        "first": head - 4,
        "last": head - 2,
    }
    assert client.get(f"{LIST}?seq_after={head}").json()["results"][0]["action"] == "audit.read"


@pytest.mark.django_db
def test_a_token_read_names_the_token_and_one_event_read_names_the_event(client, tenant_a):
    headers = bearer(tenant_a, "audit:read")
    token_id = _token_id(tenant_a)
    event = last_event(tenant_a.tenant)
    body = client.get(f"{LIST}{event.pk}/", **headers).json()
    assert body["seq"] == event.seq
    read = last_event(tenant_a.tenant)
    assert (read.action, read.object_type, read.object_id) == ("audit.read", "audit.auditevent", str(event.pk))
    assert read.actor_id == tenant_a.user(Role.ADMIN).pk  # a token acts for its creator
    assert read.after == {
        "via": "api_token",
        "token_id": token_id,
        "filters": {},
        "returned": 1,
        "first": event.seq,
        "last": event.seq,
    }


@pytest.mark.django_db
def test_refused_reads_record_nothing(client, tenant_a, tenant_b):
    theirs = last_event(tenant_b.tenant)
    counts = event_count(tenant_a.tenant), event_count(tenant_b.tenant)
    client.force_login(tenant_a.user(Role.VIEWER))
    assert client.get(LIST).status_code == 403
    assert client.get(f"{EXPORT}?format=json").status_code == 403
    client.force_login(tenant_a.user(Role.ADMIN))
    assert client.get(f"{LIST}{theirs.pk}/").status_code == 404
    assert client.get(f"{LIST}?seq_after=x").status_code == 400
    assert client.get(f"{EXPORT}?format=xml").status_code == 400
    assert client.get(f"{EXPORT}?format=csv&created_after=yesterday").status_code == 400
    assert (event_count(tenant_a.tenant), event_count(tenant_b.tenant)) == counts


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["json", "csv"])
def test_an_export_fixes_its_range_then_records_itself_outside_it(client, tenant_a, file_format):
    _write(tenant_a, 3)
    audit_checkpoint_create(tenant=tenant_a.tenant, reason=CheckpointReason.HOURLY)
    head = last_event(tenant_a.tenant).seq
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    text = _export(client, file_format, {"action": "check", "ordering": "-seq"})  # an export is in seq order
    export = last_event(tenant_a.tenant)
    assert export.seq == head + 1
    assert (export.action, export.object_type) == ("audit.export", "audit.auditevent")
    assert export.after == {
        "via": "session",
        "format": file_format,
        "filters": {"action": "check"},
        "through_seq": head,
        "through_checkpoint": 1,
    }
    assert "audit.export" not in text  # the file never holds its own export event ...
    everything = _export(client, file_format)
    assert export.hash in everything  # ... the next export does
    if file_format == "json":
        body = json.loads(everything)
        assert (body["through_seq"], body["through_checkpoint"]) == (head + 1, 1)
        assert body["events"][-1]["seq"] == head + 1


@pytest.mark.django_db
def test_filter_values_are_kept_bounded_and_without_nul(tenant_a):
    event = audit_trail_read_record(
        tenant=tenant_a.tenant,
        actor=None,
        object_type="audit.auditevent",
        filters={"object_id": "x" * 500, "action": "a\x00b"},
    )
    with context.tenant_context(tenant_a.tenant):
        stored = AuditEvent.objects.get(pk=event.pk).after["filters"]
    assert stored == {"object_id": "x" * 200 + "…[cut]", "action": "a\ufffdb"}


# --- the export carries the checkpoints and their keys --------------------------------------------------------


@pytest.mark.django_db
def test_the_json_export_carries_the_checkpoints_and_the_public_keys_after_the_events(client, tenant_a):
    for _ in range(3):
        _write(tenant_a, 2)
        audit_checkpoint_create(tenant=tenant_a.tenant, reason=CheckpointReason.HOURLY)
    client.force_login(tenant_a.user(Role.ADMIN))
    with override_settings(AUDIT_VERIFY_PUBLIC_KEYS=[OTHER_PUBLIC]):
        text = _export(client, "json")
    body = json.loads(text)
    assert list(body)[-4:] == ["events", "checkpoints", "public_keys", "count"]
    assert [c["number"] for c in body["checkpoints"]] == [1, 2, 3]
    signing_public = base64.b64decode(body["public_keys"][0]["public_key"])
    assert body["public_keys"] == [
        {
            "key_id": body["checkpoints"][0]["key_id"],
            "algorithm": "Ed25519",
            "public_key": body["public_keys"][0]["public_key"],
            "signing": True,
        },
        {
            "key_id": hashlib.sha256(b"\x07" * 32).hexdigest(),
            "algorithm": "Ed25519",
            "public_key": OTHER_PUBLIC,
            "signing": False,
        },
    ]
    by_seq = {event["seq"]: event for event in body["events"]}
    for checkpoint in body["checkpoints"]:
        payload = {key: value for key, value in checkpoint.items() if key != "signature"}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        Ed25519PublicKey.from_public_bytes(signing_public).verify(bytes.fromhex(checkpoint["signature"]), canonical)
        assert by_seq[checkpoint["seq"]]["hash"] == checkpoint["event_hash"]

    # A window from seq_after=N carries the checkpoints at or after N: those that vouch for its events or
    # for the hash its first event follows.
    second = body["checkpoints"][1]
    window = json.loads(_export(client, "json", {"seq_after": second["seq"]}))
    assert [c["number"] for c in window["checkpoints"]] == [2, 3]
    assert window["events"][0]["prev_hash"] == second["event_hash"]


# --- the checkpoint list and the public keys ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_checkpoint_list_gives_the_signed_payloads_in_number_order(client, tenant_a, tenant_b):
    made = []
    for _ in range(3):
        _write(tenant_a, 1)
        made.append(audit_checkpoint_create(tenant=tenant_a.tenant, reason=CheckpointReason.HOURLY))
    audit_checkpoint_create(tenant=tenant_b.tenant, reason=CheckpointReason.HOURLY)
    headers = bearer(tenant_a, "audit:read")
    body = client.get(f"{CHECKPOINTS}?page_size=2", **headers).json()
    rows = body["results"] + client.get(body["next"], **headers).json()["results"]
    assert [row["number"] for row in rows] == [1, 2, 3]  # and none of tenant B's
    assert list(rows[0]) == [
        "type",
        "tenant",
        "number",
        "seq",
        "event_hash",
        "created_at",
        "reason",
        "prev_digest",
        "key_id",
        "signature",
    ]
    latest = made[2]
    assert rows[2] == {
        "type": "cs-platform/audit-checkpoint/v1",
        "tenant": tenant_a.tenant.pk,
        "number": 3,
        "seq": latest.seq,
        "event_hash": latest.event_hash,
        "created_at": latest.created_at.isoformat(timespec="microseconds"),
        "reason": "hourly",
        "prev_digest": latest.prev_digest,
        "key_id": latest.key_id,
        "signature": latest.signature,
    }

    def numbers(query: str) -> list[int]:
        return [row["number"] for row in client.get(f"{CHECKPOINTS}?{query}", **headers).json()["results"]]

    assert numbers("number_after=1") == [2, 3]
    assert numbers(f"seq_from={made[1].seq}") == [2, 3]
    read = last_event(tenant_a.tenant)
    assert (read.action, read.object_type) == ("audit.read", "audit.auditcheckpoint")
    assert read.after == {
        "via": "api_token",
        "token_id": _token_id(tenant_a),
        "filters": {"seq_from": str(made[1].seq)},
        "returned": 2,
        "first": 2,
        "last": 3,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_who_may_read_checkpoints_and_keys(client, tenant_a, role):
    allowed = role in Capability.VIEW_AUDIT_TRAIL.roles  # as for the events
    client.force_login(tenant_a.user(role))
    for url in (CHECKPOINTS, PUBLIC_KEYS):
        assert client.get(url).status_code == (200 if allowed else 403), (role, url)
    client.logout()
    for url in (CHECKPOINTS, PUBLIC_KEYS):
        assert client.get(url, **bearer(tenant_a, "accounts:read")).status_code == 403
        assert client.get(url, **bearer(tenant_a, "audit:read")).status_code == 200


@pytest.mark.django_db
def test_the_public_keys_are_the_signing_key_and_the_rotated_ones(client, tenant_a):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    before = event_count(tenant_a.tenant)
    with override_settings(AUDIT_VERIFY_PUBLIC_KEYS=[OTHER_PUBLIC]):
        keys = client.get(PUBLIC_KEYS).json()["keys"]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    mine = Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.AUDIT_SIGNING_KEY)).public_key()
    assert [(k["public_key"], k["signing"]) for k in keys] == [
        (base64.b64encode(mine.public_bytes_raw()).decode(), True),
        (OTHER_PUBLIC, False),
    ]
    assert event_count(tenant_a.tenant) == before  # public: nothing to record


@pytest.mark.django_db
def test_the_checkpoint_list_query_count_does_not_grow_with_the_rows(client, tenant_a):
    headers = bearer(tenant_a, "audit:read")
    client.get(CHECKPOINTS, **headers)  # warm up: the token's last-used stamp

    def queries_for(rows: int) -> tuple[int, int]:
        for _ in range(rows):
            audit_checkpoint_create(tenant=tenant_a.tenant, reason=CheckpointReason.HOURLY)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"{CHECKPOINTS}?page_size=100", **headers)
        return len(captured), len(response.json()["results"])

    (few, shown_few), (many, shown_many) = queries_for(2), queries_for(12)
    # The token's tenant (SECURITY DEFINER lookup), api_apitoken, tenancy_membership, ONE SELECT of
    # audit_auditcheckpoint for the page; then the audit.read event: SAVEPOINT, pg_advisory_xact_lock, the
    # chain head's SELECT, the INSERT, RELEASE SAVEPOINT.
    assert shown_few < shown_many and few == many == 4 + 5
