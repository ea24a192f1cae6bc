"""Advisory-lock namespaces: each use has its own, all listed in cs_platform.locks."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from cs_platform import locks

_APPS = (
    "accounts",
    "api",
    "compliance",
    "cs_platform",
    "dashboards",
    "journeys",
    "metrics",
    "scorecards",
    "segments",
    "webhooks",
)


def test_every_namespace_is_distinct_and_an_int4():
    values = list(locks.NAMESPACES.values())
    assert len(values) == len(set(values)), locks.NAMESPACES
    # pg_advisory_lock(int, int): both keys must fit an int4.
    assert all(-(2**31) <= v < 2**31 for v in values)
    # The registry lists every constant the module defines.
    defined = {name: value for name, value in vars(locks).items() if name.isupper() and isinstance(value, int)}
    assert defined == locks.NAMESPACES


def test_the_idempotency_and_nightly_locks_no_longer_share_a_namespace():
    from api import idempotency
    from cs_platform.audit import services as audit
    from nightly import pipeline as nightly

    used = [
        idempotency._LOCK_NAMESPACE,
        nightly._LOCK_NAMESPACE,
        audit._LOCK_NAMESPACE,
        audit._CHECKPOINT_LOCK_NAMESPACE,
    ]
    assert len(set(used)) == len(used)
    assert set(used) <= set(locks.NAMESPACES.values())


def test_no_code_outside_the_registry_spells_a_namespace_number():
    """A new advisory lock must take its namespace from cs_platform.locks, not a literal of its own."""
    literal = re.compile(r"\b7_?402_?3\d\d\b")
    offenders = []
    for app in _APPS:
        for path in Path(settings.BASE_DIR, app).rglob("*.py"):
            if path.name == "locks.py" or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if literal.search(line):
                    offenders.append(f"{path.relative_to(settings.BASE_DIR)}:{number}: {line.strip()}")
    assert offenders == []
