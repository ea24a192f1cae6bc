"""Every PostgreSQL advisory-lock namespace the platform uses, in one place.

All our advisory locks take two int4 keys: (namespace, key). Session locks (pg_advisory_lock) and
transaction locks (pg_advisory_xact_lock) of the two-key form share one key space, so two uses with the
same namespace can block each other (or, worse, one can believe it holds a lock the other holds) whenever
their second keys meet: a tenant id and a hashtext() of an idempotency key are both just int4s. Each use
therefore gets its own namespace here, and tests/metrics/test_advisory_locks.py checks they stay distinct.

The one-key form (pg_advisory_lock(bigint)) is a separate key space in PostgreSQL; we do not use it.
This is the bottom layer: every app may import it, and it imports nothing.
"""

from __future__ import annotations

# pg_advisory_xact_lock(AUDIT_APPEND, tenant_id): serialises appends to a tenant's audit chain.
AUDIT_APPEND = 7_402_311
# pg_try_advisory_lock(NIGHTLY_TENANT, tenant_id): one nightly run of a tenant at a time (session lock).
NIGHTLY_TENANT = 7_402_312
# pg_advisory_xact_lock(AUDIT_CHECKPOINT, tenant_id): the hourly and the nightly checkpoint may coincide.
AUDIT_CHECKPOINT = 7_402_313
# pg_advisory_xact_lock(API_IDEMPOTENCY, hashtext(tenant|endpoint|credential|key)). It used 7_402_312,
# the nightly namespace, until issue #16: a key whose hash equalled a tenant id waited for that tenant's
# nightly run.
API_IDEMPOTENCY = 7_402_314
# Concurrent KPI upserts (issue #16 item 1) use row locks, not advisory locks: one transaction cannot
# hold 20,000 advisory locks at the default max_locks_per_transaction.

NAMESPACES: dict[str, int] = {
    "AUDIT_APPEND": AUDIT_APPEND,
    "NIGHTLY_TENANT": NIGHTLY_TENANT,
    "AUDIT_CHECKPOINT": AUDIT_CHECKPOINT,
    "API_IDEMPOTENCY": API_IDEMPOTENCY,
}
