"""scripts/verify_audit_export.py, the stand-alone check a client runs on an export: run as a separate Python
process in isolated mode (no project code on its path), on real exports from the API and on tampered copies."""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from cs_platform.audit.models import CheckpointReason
from cs_platform.audit.services import audit_checkpoint_create, audit_record_many
from cs_platform.tenancy.models import Role

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "verify_audit_export.py"
EXPORT = "/api/v1/audit-events/export/"


def _public_key() -> str:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.AUDIT_SIGNING_KEY))
    return base64.b64encode(key.public_key().public_bytes_raw()).decode()


def run(tmp_path: Path, export, *args: str, name: str = "export.json") -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(export if isinstance(export, str) else json.dumps(export), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _hash(event: dict) -> str:
    payload = {key: value for key, value in event.items() if key != "hash"}
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


@pytest.fixture
def trail(client, tenant_a):
    """A real tenant trail with three checkpoints along it and a few events after the last; the client is
    logged in as a compliance officer."""
    for batch in range(3):
        audit_record_many(
            tenant=tenant_a.tenant,
            actor=tenant_a.user(Role.ADMIN),
            events=[
                {
                    "action": "payment.approve",
                    "object_type": "test",
                    "object_id": f"{batch}-{i}",
                    "after": {"amount": "1250.00", "note": "Zürich, “quoted”"},
                }
                for i in range(4)
            ],
        )
        audit_checkpoint_create(tenant=tenant_a.tenant, reason=CheckpointReason.HOURLY)
    audit_record_many(tenant=tenant_a.tenant, actor=None, events=[{"action": "later", "object_type": "test"}])
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    return client


def _json_export(client, query: str = "") -> dict:
    response = client.get(f"{EXPORT}?format=json{query}")
    return json.loads(b"".join(response.streaming_content))


@pytest.mark.django_db
def test_a_real_export_verifies(trail, tmp_path):
    body = _json_export(trail)
    result = run(tmp_path, body, "--public-key", _public_key())
    assert result.returncode == 0, result.stdout + result.stderr
    last = body["events"][-1]["seq"]
    assert result.stdout.strip() == (
        f"OK: {last} events verified (#1-#{last}); 3 checkpoint signatures verified, 3 compared with the events"
    )
    assert result.stderr == ""
    # Without a pinned key it still checks, with the file's own keys, and says what that is worth.
    unpinned = run(tmp_path, body)
    assert unpinned.returncode == 0 and "no --public-key given" in unpinned.stderr


def _rewrite_and_rehash(body):
    """An owner's rewrite carried into the file: one event changed, every later hash and link recomputed."""
    events = body["events"]
    index = next(i for i, e in enumerate(events) if e["action"] == "payment.approve")
    events[index]["after"]["amount"] = "9250.00"
    prev = events[index]["prev_hash"]
    for event in events[index:]:
        event["prev_hash"] = prev
        event["hash"] = prev = _hash(event)


def _cut_tail(body):
    del body["events"][-5:]  # the last event and the four checkpoint 3 signed the last of
    body["count"] = len(body["events"])
    body["through_seq"] = body["events"][-1]["seq"]


def _alter_checkpoint(body):
    body["checkpoints"][2]["seq"] -= 1


def _drop_checkpoint(body):
    del body["checkpoints"][1]


def _alter_event(body):
    body["events"][3]["actor_label"] = "someone-else@alpha.test"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tamper", "first_problem"),
    [
        (_rewrite_and_rehash, "FAILED: rewritten: checkpoint 1 signed hash "),
        (_cut_tail, "FAILED: missing tail: checkpoint 3 says the chain reached #"),
        (_alter_checkpoint, "FAILED: checkpoint 3: the signature does not verify (altered or forged)"),
        (_drop_checkpoint, "FAILED: missing checkpoint: 2 (found 3 after 1)"),
        (_alter_event, "FAILED: event #4: its content does not match its hash (altered)"),
    ],
    ids=["rewritten_and_rehashed", "tail_cut", "checkpoint_altered", "checkpoint_removed", "event_altered"],
)
def test_a_tampered_export_fails_naming_the_first_problem(trail, tmp_path, tamper, first_problem):
    body = _json_export(trail)
    tampered = copy.deepcopy(body)
    tamper(tampered)
    result = run(tmp_path, tampered, "--public-key", _public_key())
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(first_problem), result.stdout


@pytest.mark.django_db
def test_a_key_other_than_the_pinned_one_is_refused(trail, tmp_path):
    body = _json_export(trail)
    stranger = base64.b64encode(b"\x05" * 32).decode()
    result = run(tmp_path, body, "--public-key", stranger)
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED: checkpoint 1: signed by an unknown key")


@pytest.mark.django_db
def test_a_window_export_is_checked_against_the_checkpoints_it_carries(trail, tmp_path):
    everything = _json_export(trail)
    second = everything["checkpoints"][1]
    window = _json_export(trail, f"&seq_after={second['seq']}")
    result = run(tmp_path, window, "--public-key", _public_key())
    assert result.returncode == 0, result.stdout
    # Checkpoint 2 vouches for the hash the window's first event follows, 3 for an event inside it.
    assert "2 checkpoint signatures verified, 2 compared with the events" in result.stdout
    # A window rewritten from its start, every hash recomputed: consistent in itself, not with checkpoint 2.
    prev = "f" * 64
    for event in window["events"]:
        event["prev_hash"] = prev
        event["hash"] = prev = _hash(event)
    assert run(tmp_path, window, "--public-key", _public_key()).stdout.startswith("FAILED: rewritten: checkpoint 2")


@pytest.mark.django_db
def test_a_csv_export_is_checked_with_the_checkpoint_list(trail, tmp_path):
    response = trail.get(f"{EXPORT}?format=csv")
    csv_text = b"".join(response.streaming_content).decode()
    page = trail.get("/api/v1/audit-checkpoints/?page_size=2").json()
    (tmp_path / "page1.json").write_text(json.dumps(page))
    (tmp_path / "page2.json").write_text(json.dumps(trail.get(page["next"]).json()))
    pages = ["--checkpoints", str(tmp_path / "page1.json"), "--checkpoints", str(tmp_path / "page2.json")]
    result = run(tmp_path, csv_text, *pages, "--public-key", _public_key(), name="export.csv")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 checkpoint signatures verified, 3 compared with the events" in result.stdout

    body = _json_export(trail)
    _rewrite_and_rehash(body)
    lines = csv_text.splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for event in body["events"][: len(lines) - 1]:
        writer.writerow(
            [
                json.dumps(event[f], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                if f in ("before", "after")
                else ("" if event[f] is None else event[f])
                for f in header
            ]
        )
    tampered = run(tmp_path, out.getvalue(), *pages, "--public-key", _public_key(), name="tampered.csv")
    assert tampered.returncode == 1 and tampered.stdout.startswith("FAILED: rewritten: checkpoint 1"), tampered.stdout


def test_the_documented_json_example_verifies_with_the_example_key(tmp_path):
    from api import audit_events as api

    (example,) = [e.value for e in api._EXPORT_EXAMPLES if e.media_type == "application/json"]
    result = run(tmp_path, example, "--public-key", api.EXAMPLE_PUBLIC_KEYS[0]["public_key"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 events verified (#1841-#1842); 2 checkpoint signatures verified, 2 compared" in result.stdout


@pytest.mark.django_db
def test_an_unusable_file_is_exit_status_2(trail, tmp_path):
    text = json.dumps(_json_export(trail))
    result = run(tmp_path, text[: len(text) // 2])  # a download cut short
    assert result.returncode == 2 and result.stderr.startswith("UNUSABLE: ")
