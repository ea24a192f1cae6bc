#!/usr/bin/env python3
"""Verify an audit trail export of the customer-success platform, on its own: no platform code, no network.

    python3 verify_audit_export.py audit-northwind-2026-11-23.json --public-key <base64 published by the vendor>
    python3 verify_audit_export.py audit-northwind-2026-11-23.csv --checkpoints checkpoints.json --public-key ...

Needs Python 3.9+ and the `cryptography` package (pip install cryptography) for the Ed25519 signatures.

It checks, as the export's documentation says (GET /api/docs/, audit-events export):
  1. every event: its hash is the SHA-256 of the canonical JSON of its other fields;
  2. the links: each prev_hash is the previous event's hash and seq rises by 1 (from 64 zeros at seq 1,
     or from the first event's prev_hash for a window export);
  3. every checkpoint: its Ed25519 signature over the canonical JSON of its other fields, with the public key
     its key_id names; numbers rise by 1, each prev_digest is the previous checkpoint's digest, seq never
     goes down;
  4. the events against the checkpoints: the event at a checkpoint's seq has the hash it signed (a rewritten
     chain whose hashes were all recomputed fails here), and no checkpoint signed a seq beyond the export's
     last event when the export has no upper bound (the newest events were removed).

Trust: pass the public key your vendor published (--public-key, repeatable for rotated keys). Without it the
script uses the keys inside the file and says so: a file can only vouch for its own consistency.

--checkpoints takes a JSON file holding checkpoints: a JSON export, a page of GET /api/v1/audit-checkpoints/
(its "results"), or a plain list; repeat it for several pages. A CSV export carries no range, so a checkpoint
beyond its last event is reported as not covered rather than as a missing tail (use the JSON export for that).

Exit status: 0 verified, 1 a problem was found (the first is named, then the others), 2 the input is unusable.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import sys

GENESIS = "0" * 64
CHECKPOINT_TYPE = "cs-platform/audit-checkpoint/v1"
# Filters after which the export is not the whole chain up to its end: a checkpoint beyond its last event
# is then not evidence of a removed tail.
UPPER_BOUND_OR_SELECTION = (
    "seq_before",
    "created_before",
    "actor",
    "actor_label",
    "action",
    "object_type",
    "object_id",
)
# Filters that keep an export contiguous (a window of the chain).
WINDOW = ("seq_after", "seq_before", "created_after", "created_before")


class Unusable(Exception):
    """The input cannot be read as an export (exit status 2)."""


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- reading ---------------------------------------------------------------------------------------------
def read_json_export(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        try:
            body = json.load(handle)
        except ValueError as exc:
            raise Unusable(f"{path}: not JSON ({exc}); a download cut short is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise Unusable(f"{path}: no 'events' list: not a JSON export of the audit trail")
    if body.get("count") != len(body["events"]):
        raise Unusable(f"{path}: 'count' is {body.get('count')!r} but the file holds {len(body['events'])} events")
    return body


def read_csv_events(path: str) -> list[dict]:
    events = []
    with open(path, encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                row["tenant"], row["seq"] = int(row["tenant"]), int(row["seq"])
                row["actor"] = int(row["actor"]) if row["actor"] else None
                row["before"], row["after"] = json.loads(row["before"]), json.loads(row["after"])
            except (KeyError, TypeError, ValueError) as exc:
                raise Unusable(f"{path}, line {line}: not a row of the audit CSV export ({exc})") from None
            events.append(row)
    return events


def read_checkpoints(paths: list[str]) -> tuple[list[dict], list[dict]]:
    checkpoints, keys = [], []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            try:
                body = json.load(handle)
            except ValueError as exc:
                raise Unusable(f"{path}: not JSON ({exc})") from None
        if isinstance(body, dict):
            keys += body.get("public_keys") or body.get("keys") or []
            body = body.get("checkpoints", body.get("results"))
        if not isinstance(body, list):
            raise Unusable(f"{path}: holds no list of checkpoints")
        checkpoints += body
    unique = {checkpoint.get("number"): checkpoint for checkpoint in checkpoints}  # pages may overlap
    return [unique[number] for number in sorted(unique, key=lambda n: (n is None, n))], keys


def load_keys(encoded: list[str]) -> dict:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = {}
    for value in encoded:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raise Unusable(f"public key {value!r} is not base64") from None
        if len(raw) != 32:
            raise Unusable(f"public key {value!r} is {len(raw)} bytes, not the 32 of an Ed25519 key")
        keys[sha256(raw)] = Ed25519PublicKey.from_public_bytes(raw)
    return keys


# --- checking ----------------------------------------------------------------------------------------------
class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)


def check_events(events: list[dict], report: Report, *, contiguous: bool) -> None:
    expected_prev = expected_seq = None
    for index, event in enumerate(events):
        seq = event.get("seq")
        payload = {key: value for key, value in event.items() if key != "hash"}
        if sha256(canonical(payload)) != event.get("hash"):
            report.problem(f"event #{seq}: its content does not match its hash (altered)")
            return
        if index == 0:
            if seq == 1 and event["prev_hash"] != GENESIS:
                report.problem("event #1: prev_hash is not 64 zeros")
                return
        elif contiguous or seq == expected_seq:
            if seq != expected_seq:
                report.problem(f"event #{seq}: expected #{expected_seq} (an event is missing or out of order)")
                return
            if event["prev_hash"] != expected_prev:
                report.problem(f"event #{seq}: prev_hash is not the hash of event #{seq - 1}")
                return
        expected_prev, expected_seq = event["hash"], seq + 1


def check_checkpoints(checkpoints: list[dict], keys: dict, report: Report) -> list[dict]:
    """Signatures, keys and the checkpoint chain; returns the checkpoints whose signature verified."""
    from cryptography.exceptions import InvalidSignature

    verified, previous, previous_valid = [], None, None
    for checkpoint in checkpoints:
        number = checkpoint.get("number")
        payload = {key: value for key, value in checkpoint.items() if key != "signature"}
        if payload.get("type") != CHECKPOINT_TYPE:
            report.problem(f"checkpoint {number}: type is {payload.get('type')!r}, not {CHECKPOINT_TYPE!r}")
            continue
        if previous is None:
            if number == 1 and checkpoint["prev_digest"] != GENESIS:
                report.problem("checkpoint 1: prev_digest is not 64 zeros")
        elif number != previous["number"] + 1:
            report.problem(f"missing checkpoint: {previous['number'] + 1} (found {number} after {previous['number']})")
        elif checkpoint["prev_digest"] != sha256(canonical({k: v for k, v in previous.items() if k != "signature"})):
            report.problem(f"checkpoint {number}: prev_digest is not the digest of checkpoint {previous['number']}")
        previous = checkpoint
        key = keys.get(checkpoint.get("key_id"))
        if key is None:
            report.problem(f"checkpoint {number}: signed by an unknown key ({str(checkpoint.get('key_id'))[:16]}…)")
            continue
        try:
            key.verify(bytes.fromhex(checkpoint["signature"]), canonical(payload))
        except (InvalidSignature, ValueError):
            report.problem(f"checkpoint {number}: the signature does not verify (altered or forged)")
            continue
        if previous_valid is not None and checkpoint["seq"] < previous_valid["seq"]:
            report.problem(
                f"checkpoint {number}: signed #{checkpoint['seq']} after checkpoint {previous_valid['number']} "
                f"signed #{previous_valid['seq']} (the chain was cut and grown again)"
            )
        verified.append(checkpoint)
        previous_valid = checkpoint
    return verified


def compare(events: list[dict], checkpoints: list[dict], report: Report, *, tail_known: bool) -> int:
    """The events against the verified checkpoints; returns how many checkpoints were compared."""
    if not events:
        return 0
    by_seq = {event["seq"]: event for event in events}
    first, last = events[0], events[-1]
    compared = 0
    for checkpoint in checkpoints:
        seq, number = checkpoint["seq"], checkpoint["number"]
        if checkpoint["tenant"] != first["tenant"]:
            report.problem(f"checkpoint {number} belongs to tenant {checkpoint['tenant']}, not {first['tenant']}")
            continue
        if seq in by_seq:
            compared += 1
            if by_seq[seq]["hash"] != checkpoint["event_hash"]:
                report.problem(
                    f"rewritten: checkpoint {number} signed hash {checkpoint['event_hash'][:12]}… for event #{seq}, "
                    f"the export holds {by_seq[seq]['hash'][:12]}… (the chain was rewritten and its hashes recomputed)"
                )
        elif seq == first["seq"] - 1:
            compared += 1
            if first["prev_hash"] != checkpoint["event_hash"]:
                report.problem(
                    f"rewritten: checkpoint {number} signed hash {checkpoint['event_hash'][:12]}… for event #{seq}, "
                    f"but the export's first event follows {first['prev_hash'][:12]}…"
                )
        elif seq > last["seq"]:
            if tail_known:
                report.problem(
                    f"missing tail: checkpoint {number} says the chain reached #{seq}, the export ends at "
                    f"#{last['seq']} (the newest events were removed)"
                )
            else:
                report.notes.append(f"checkpoint {number} (#{seq}) is beyond this export's last event: not compared")
    return compared


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="the JSON or CSV export file")
    parser.add_argument("--public-key", action="append", default=[], help="trusted public key (base64); repeat")
    parser.add_argument("--checkpoints", action="append", default=[], help="JSON file of checkpoints (CSV exports)")
    args = parser.parse_args(argv)
    try:
        if args.export.endswith(".csv"):
            events, filters, through_seq = read_csv_events(args.export), None, None
            checkpoints, file_keys = read_checkpoints(args.checkpoints) if args.checkpoints else ([], [])
        else:
            body = read_json_export(args.export)
            events, filters, through_seq = body["events"], body.get("filters") or {}, body.get("through_seq")
            checkpoints, file_keys = body.get("checkpoints") or [], body.get("public_keys") or []
            if args.checkpoints:
                extra, extra_keys = read_checkpoints(args.checkpoints)
                checkpoints, file_keys = extra, [*file_keys, *extra_keys]
        report = Report()
        if args.public_key:
            keys = load_keys(args.public_key)
        else:
            keys = load_keys([key["public_key"] for key in file_keys if isinstance(key, dict) and "public_key" in key])
            report.notes.append(
                "no --public-key given: the signatures were checked with the keys inside the file, which proves "
                "only that the file is consistent; pass the key your vendor published"
            )
    except (OSError, Unusable) as exc:
        print(f"UNUSABLE: {exc}", file=sys.stderr)
        return 2

    contiguous = filters is None or not any(name not in WINDOW for name in filters)
    check_events(events, report, contiguous=contiguous)
    verified = check_checkpoints(checkpoints, keys, report)
    tail_known = filters is not None and not any(name in UPPER_BOUND_OR_SELECTION for name in filters)
    compared = compare(events, verified, report, tail_known=tail_known)
    if tail_known and events and through_seq is not None and events[-1]["seq"] != through_seq:
        report.problem(f"missing tail: the export was fixed at #{through_seq} but ends at #{events[-1]['seq']}")

    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if report.problems:
        print(f"FAILED: {report.problems[0]}")
        for problem in report.problems[1:]:
            print(f"  also: {problem}")
        return 1
    span = f"#{events[0]['seq']}-#{events[-1]['seq']}" if events else "none"
    if not checkpoints:
        print("note: no checkpoint to check: the events verify only against each other", file=sys.stderr)
    print(
        f"OK: {len(events)} events verified ({span}); {len(verified)} checkpoint signatures verified, "
        f"{compared} compared with the events"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
