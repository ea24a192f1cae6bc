"""Force two writers to overlap, deterministically, on real PostgreSQL connections.

`race(tenant, first, second)` runs `first` and `second` on two threads, each with its own database
connection, in this order:

1. a third connection (the owner's) holds the tenant's audit-chain advisory lock, the lock every audited
   write takes last, just before its commit;
2. `first` runs until it queues for that lock: its rows are written, its transaction still open;
3. `second` starts and runs until PostgreSQL makes it wait for `first` (its writes touch first's
   uncommitted rows), which is exactly the moment a racing request's reads can go stale;
4. the lock is released: `first` commits, then `second` goes on.

Each step is observed in pg_stat_activity / pg_blocking_pids rather than guessed with sleeps, so the
interleaving is the same on every run. A step that never happens (a writer that does not wait where
expected) fails the test with a message saying which."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

from cs_platform import locks
from tests.committed import owner_connection

# pg_advisory_xact_lock(namespace, tenant_id), taken by every audit append; imported to stay in step.
AUDIT_LOCK_NAMESPACE = locks.AUDIT_APPEND
WAIT_SECONDS = 30


class _Writer(threading.Thread):
    def __init__(self, call: Callable[[], Any], blocker) -> None:
        super().__init__(daemon=True)
        self.call, self.blocker = call, blocker
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.blocker.unblock():
                self.result = self.call()
        except BaseException as exc:  # noqa: BLE001 - re-raised by race()
            self.error = exc
        finally:
            connections.close_all()  # this thread's connections only


def _blocked_by(watch, pid: int, *, what: str, writer: _Writer) -> int:
    """The pid of the session that waits for session `pid`, polled until one does."""
    deadline = time.monotonic() + WAIT_SECONDS
    with watch.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid)) ORDER BY pid", [pid])
            waiting = [row[0] for row in cursor.fetchall()]
            if waiting:
                return waiting[0]
            if not writer.is_alive():
                raise AssertionError(f"{what}: the writer finished without waiting ({writer.error or writer.result!r})")
            time.sleep(0.02)
    raise AssertionError(f"{what}: nothing waited for session {pid} within {WAIT_SECONDS} s")


def race(tenant, first: Callable[[], Any], second: Callable[[], Any], *, blocker) -> tuple[Any, Any]:
    """Run `first` and `second` overlapping as described above; returns their results (raises their
    errors). `blocker` is pytest-django's django_db_blocker."""
    with owner_connection() as holder, owner_connection() as watch:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s), pg_backend_pid()", [AUDIT_LOCK_NAMESPACE, tenant.pk])
            holder_pid = cursor.fetchone()[1]
        one, two = _Writer(first, blocker), _Writer(second, blocker)
        try:
            one.start()
            first_pid = _blocked_by(watch, holder_pid, what="first writer at the audit lock", writer=one)
            two.start()
            _blocked_by(watch, first_pid, what="second writer behind the first's rows", writer=two)
        finally:
            with holder.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [AUDIT_LOCK_NAMESPACE, tenant.pk])
            one.join(WAIT_SECONDS)
            two.join(WAIT_SECONDS)
    for writer in (one, two):
        assert not writer.is_alive(), "a writer is still running"
        if writer.error is not None:
            raise writer.error
    return one.result, two.result
