"""Signed checkpoints of the audit chain: the keys, the exact bytes a checkpoint's signature covers, signing
and verification. Shared by the checkpoint service, `verify_audit`, the API and the export's examples.

Ed25519, so whoever holds only a public key (a client, a regulator, `verify_audit` on a copy of the
database) can check a checkpoint but not make one. The private key comes from the environment
(settings.AUDIT_SIGNING_KEY), never from the database: someone who can rewrite the audit table can
recompute every hash of the chain, but cannot sign a checkpoint that vouches for the rewrite.

A checkpoint's signed payload is canonical JSON (cs_platform.audit.chain.canonical: sorted keys, no
whitespace, UTF-8) of:
    type        "cs-platform/audit-checkpoint/v1" (so this key's signatures mean nothing else)
    tenant      the tenant id
    number      its position in the tenant's checkpoint chain, from 1
    seq         the seq of the chain's last event when it was made (0: no event yet)
    event_hash  that event's hash (64 zeros when seq is 0)
    created_at  when it was made: UTC, microseconds, "+00:00"
    reason      hourly, nightly or manual
    prev_digest the digest of the previous checkpoint's payload (64 zeros for number 1)
    key_id      the signing key's id: lowercase hex SHA-256 of its 32-byte raw public key
Its digest is the lowercase hex SHA-256 of those bytes; its signature, the hex Ed25519 signature of them.
"""

from __future__ import annotations

import base64
import datetime
import enum
import functools
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from cs_platform.audit.chain import canonical

CHECKPOINT_TYPE = "cs-platform/audit-checkpoint/v1"
ALGORITHM = "Ed25519"
GENESIS_DIGEST = "0" * 64


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    public_key: str  # standard base64 of the 32 raw bytes
    signing: bool  # the key new checkpoints are signed with (the others verify older ones)

    def as_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "algorithm": ALGORITHM, "public_key": self.public_key, "signing": self.signing}


class Verdict(enum.Enum):
    OK = "ok"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"


def key_id_of(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@functools.lru_cache(maxsize=8)
def _private_key(encoded: str) -> tuple[Ed25519PrivateKey, PublicKey]:
    # Keyed on the setting's value, so a changed setting (a test's override) takes effect at once.
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(encoded, validate=True))
    raw = key.public_key().public_bytes_raw()
    return key, PublicKey(key_id=key_id_of(raw), public_key=_b64(raw), signing=True)


def signing_key() -> tuple[Ed25519PrivateKey, PublicKey]:
    """The key new checkpoints are signed with, and its public half."""
    return _private_key(settings.AUDIT_SIGNING_KEY)


def is_development_key(key_id: str) -> bool:
    """True for the public development key the demo signs with when AUDIT_SIGNING_KEY is not set."""
    return key_id == _private_key(settings.AUDIT_DEVELOPMENT_SIGNING_KEY)[1].key_id


def public_keys() -> list[PublicKey]:
    """Every key a checkpoint may be verified with: the signing key's, then the earlier keys of
    AUDIT_VERIFY_PUBLIC_KEYS (rotation), each once."""
    keys = [signing_key()[1]]
    for encoded in settings.AUDIT_VERIFY_PUBLIC_KEYS:
        raw = base64.b64decode(encoded, validate=True)
        if all(key.key_id != key_id_of(raw) for key in keys):
            keys.append(PublicKey(key_id=key_id_of(raw), public_key=_b64(raw), signing=False))
    return keys


def verifiers(keys: list[PublicKey] | None = None) -> dict[str, Ed25519PublicKey]:
    """{key_id: public key} of `keys` (default: the configured public_keys())."""
    return {
        key.key_id: Ed25519PublicKey.from_public_bytes(base64.b64decode(key.public_key))
        for key in (public_keys() if keys is None else keys)
    }


def canonical_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


def checkpoint_payload(
    *,
    tenant_id: int,
    number: int,
    seq: int,
    event_hash: str,
    created_at: datetime.datetime,
    reason: str,
    prev_digest: str,
    key_id: str,
) -> dict[str, Any]:
    return {
        "type": CHECKPOINT_TYPE,
        "tenant": tenant_id,
        "number": number,
        "seq": seq,
        "event_hash": event_hash,
        "created_at": canonical_time(created_at),
        "reason": reason,
        "prev_digest": prev_digest,
        "key_id": key_id,
    }


def payload_of(checkpoint) -> dict[str, Any]:
    """The signed payload of a stored AuditCheckpoint, rebuilt from its columns."""
    return checkpoint_payload(
        tenant_id=checkpoint.tenant_id,
        number=checkpoint.number,
        seq=checkpoint.seq,
        event_hash=checkpoint.event_hash,
        created_at=checkpoint.created_at,
        reason=checkpoint.reason,
        prev_digest=checkpoint.prev_digest,
        key_id=checkpoint.key_id,
    )


def signed_bytes(payload: dict[str, Any]) -> bytes:
    return canonical(payload).encode("utf-8")


def digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(signed_bytes(payload)).hexdigest()


def sign(payload: dict[str, Any], key: Ed25519PrivateKey | None = None) -> str:
    """Hex signature of the payload with `key` (default: the configured signing key)."""
    return (key or signing_key()[0]).sign(signed_bytes(payload)).hex()


def verify(payload: dict[str, Any], signature: str, keys: dict[str, Ed25519PublicKey]) -> Verdict:
    key = keys.get(payload["key_id"])
    if key is None:
        return Verdict.UNKNOWN_KEY
    try:
        key.verify(bytes.fromhex(signature), signed_bytes(payload))
    except (InvalidSignature, ValueError):
        return Verdict.BAD_SIGNATURE
    return Verdict.OK


def generate() -> tuple[str, PublicKey]:
    """A new signing key: (base64 private key for AUDIT_SIGNING_KEY, its public key)."""
    seed = os.urandom(32)  # any 32 bytes are an Ed25519 private key
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return _b64(seed), PublicKey(key_id=key_id_of(raw), public_key=_b64(raw), signing=True)
