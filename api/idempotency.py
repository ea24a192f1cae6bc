"""`Idempotency-Key` for the API's bulk writes: the first answer to a (tenant, endpoint, credential, key)
is stored with the rows it reports, in the same transaction, and a retry gets that answer back instead
of writing again.

    with transaction.atomic():
        claim = idempotency_claim(tenant=..., endpoint=..., key=..., fingerprint=request_fingerprint(data),
                                  token=<the request's ApiToken, None for a session>, user=request.user)
        if claim.replay is not None:            # same key, same body: the stored answer
            return claim.replay
        ... write the rows, build the 201 body ...
        idempotency_store(claim, status_code=201, body=body)

* The credential: a key is the client's own name for a request, so it is scoped to who sent it, the
  token (or, for a browser session, the user). Two integrations of one tenant that both pick the key
  "2026-11-23" each get their own rows; only the same token retrying gets the stored answer.
* Concurrent duplicates: idempotency_claim takes a transaction-scoped advisory lock on the key, so
  the second of two simultaneous requests waits for the first to commit and then finds its answer;
  the unique (tenant, endpoint, token or user, key) constraints are the backstop should anything
  bypass the lock.
* The same key with another body is refused (IdempotencyConflict, answered 422), so a client that
  reuses a key by mistake learns it instead of silently getting an unrelated answer.
* Only answers that wrote something are stored: a 400 (bad rows) is not, so the client may fix the
  rows and retry with the same key.
* Records older than settings.API_IDEMPOTENCY_HOURS are ignored (a key may then be reused) and can be
  deleted by idempotency_records_purge, which the nightly job may call.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from api.models import ApiToken, IdempotencyRecord
from cs_platform import locks
from cs_platform.tenancy import context

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# pg_advisory_xact_lock(namespace, hashtext(key)): a namespace of its own (cs_platform.locks).
_LOCK_NAMESPACE = locks.API_IDEMPOTENCY


class IdempotencyConflict(Exception):
    """The key was used before with a different request body."""


@dataclasses.dataclass
class Claim:
    tenant: Any
    endpoint: str
    key: str
    fingerprint: str
    token: ApiToken | None
    user: Any
    replay: IdempotencyRecord | None = None

    @property
    def credential(self) -> str:
        """Who the key belongs to, as the advisory lock names it."""
        return f"token:{self.token.pk}" if self.token is not None else f"user:{self.user.pk}"

    def records(self):
        """The credential's records (in the claim's tenant context)."""
        if self.token is not None:
            return IdempotencyRecord.objects.filter(token=self.token)
        return IdempotencyRecord.objects.filter(token__isnull=True, user=self.user)


def request_fingerprint(data: Any) -> str:
    """SHA-256 of the parsed body as canonical JSON: key order and whitespace do not make two bodies
    different, any value does."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_claim(
    *,
    tenant,
    endpoint: str,
    key: str,
    fingerprint: str,
    token: ApiToken | None,
    user,
    now: datetime.datetime | None = None,
) -> Claim:
    """Inside the caller's transaction: lock the credential's key, and return the stored answer to replay
    if there is a live one. `token` is the request's token (None for a browser session, whose key belongs
    to `user`). Raises IdempotencyConflict when the live answer was for another body. Two queries (lock,
    lookup), three when an expired record of the key is cleared."""
    if token is None and (user is None or user.pk is None):
        raise ValueError("An idempotency key belongs to a token or a user.")
    now = now or timezone.now()
    claim = Claim(tenant=tenant, endpoint=endpoint, key=key, fingerprint=fingerprint, token=token, user=user)
    with context.tenant_context(tenant):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    [_LOCK_NAMESPACE, f"{tenant.pk}|{endpoint}|{claim.credential}|{key}"],
                )
        record = claim.records().filter(endpoint=endpoint, key=key).first()
        if record is not None and record.expires_at <= now:
            # Expired: forgotten, and out of the way of the unique key for this new first answer.
            record.delete()
            record = None
    if record is not None and record.request_sha256 != fingerprint:
        raise IdempotencyConflict(
            f"The {HEADER} {key!r} was already used with a different request body; use a new key for a new request."
        )
    claim.replay = record
    return claim


def idempotency_store(
    claim: Claim, *, status_code: int, body: Any, now: datetime.datetime | None = None
) -> IdempotencyRecord:
    """Store the first answer, in the caller's transaction (the one that wrote the rows)."""
    now = now or timezone.now()
    with context.tenant_context(claim.tenant):
        return IdempotencyRecord.objects.create(
            tenant=claim.tenant,
            endpoint=claim.endpoint,
            key=claim.key,
            token=claim.token,
            user=claim.user,
            request_sha256=claim.fingerprint,
            status_code=status_code,
            response_body=json.loads(json.dumps(body, cls=DjangoJSONEncoder)),
            created_at=now,
            expires_at=now + datetime.timedelta(hours=settings.API_IDEMPOTENCY_HOURS),
        )


def idempotency_records_purge(*, tenant, now: datetime.datetime | None = None) -> int:
    """Delete the tenant's expired records (for the nightly job; expired records are ignored anyway)."""
    with context.tenant_context(tenant):
        deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
