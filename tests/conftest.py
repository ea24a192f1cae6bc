"""Shared fixtures: the PostgreSQL test database set up as the owner and used as the app role,
two tenants, and a user per role in each."""

from __future__ import annotations

import dataclasses

import pytest
from django.conf import settings
from django.db import connections

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories

_CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


def _use_credentials(creds: dict) -> None:
    connection = connections["default"]
    connection.close()
    connection.settings_dict.update(creds)


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """Create and migrate the test database as the owner role, then run every test as the app role
    (no BYPASSRLS, no UPDATE/DELETE on the audit table), exactly as the web app and workers run."""
    from django.test.utils import setup_databases, teardown_databases

    default = connections["default"].settings_dict
    app_creds = {key: default.get(key) for key in _CREDENTIALS}
    owner = getattr(settings, "DATABASE_OWNER", None) or {}
    owner_creds = {key: owner.get(key, default.get(key)) for key in _CREDENTIALS}
    switch = connections["default"].vendor == "postgresql" and owner_creds["USER"] != app_creds["USER"]
    with django_db_blocker.unblock():
        if switch:
            _use_credentials(owner_creds)
        db_config = setup_databases(verbosity=0, interactive=False, keepdb=False)
        if switch:
            _use_credentials(app_creds)
    yield
    with django_db_blocker.unblock():
        if switch:
            _use_credentials(owner_creds)
        teardown_databases(db_config, verbosity=0)


@pytest.fixture(autouse=True)
def _no_tenant_leaks():
    """Every test starts and ends with no tenant selected."""
    assert context.current_tenant_id() is None
    yield
    assert context.current_tenant_id() is None


@dataclasses.dataclass
class TenantWorld:
    tenant: object
    users: dict  # role -> user
    memberships: dict  # role -> membership

    def user(self, role: str):
        return self.users[role]


def make_world(slug: str, name: str) -> TenantWorld:
    tenant = factories.TenantFactory(slug=slug, name=name)
    users, memberships = {}, {}
    for role in Role.values:
        user = factories.UserFactory(username=f"{role}@{slug}.test", email=f"{role}@{slug}.test")
        users[role] = user
        memberships[role] = factories.MembershipFactory(tenant=tenant, user=user, role=role)
    # The CSM reports to the manager, as in a real team.
    with context.tenant_context(tenant):
        memberships[Role.CSM].manager = memberships[Role.MANAGER]
        memberships[Role.CSM].save()
    return TenantWorld(tenant=tenant, users=users, memberships=memberships)


@pytest.fixture
def tenant_a(db) -> TenantWorld:
    return make_world("alpha", "Alpha Customer Success")


@pytest.fixture
def tenant_b(db) -> TenantWorld:
    return make_world("bravo", "Bravo Customer Success")


@pytest.fixture
def tenant_committed(django_db_setup, django_db_blocker):
    """A tenant (with reference data) committed to the database, visible to other connections and
    threads; purged afterwards by the owner role. For PostgreSQL-only tests."""
    from tests.committed import purge_tenant

    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="committed", name="Committed Tenant")
    try:
        yield tenant
    finally:
        with django_db_blocker.unblock():
            connections["default"].close()
            purge_tenant(tenant.pk)


@pytest.fixture(autouse=True)
def _failed_token_budget(settings):
    # Failed bearer authentications are counted per client address in the shared cache, and every test
    # client is 127.0.0.1: the suite's many invalid-token tests would use up the production budget
    # (30/min) and turn each other's 401s into 429s. test_api_conventions.py tests the budget itself.
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "failed_auth": "100000/min"}


@pytest.fixture(autouse=True)
def _password_reset_budget(settings):
    # Reset requests are counted per client address in the shared cache, and every test client is
    # 127.0.0.1; tests/identity/test_passwords.py tests the budget itself with its own addresses.
    settings.PASSWORD_RESET_RATE = "100000/hour"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is deliberately slow; tests create dozens of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_log_context():
    # Each real request or task starts with an empty structlog context (django-structlog clears it); a test
    # that logs outside one must not inherit the request id a previous test's request left on the thread.
    import structlog

    structlog.contextvars.clear_contextvars()


@pytest.fixture
def smtp(settings):
    """A real SMTP server (aiosmtpd) on a free local port, with Django's mail settings pointed at it."""
    from tests.scorecards.smtp import SmtpServer, mail_to

    server = SmtpServer().start()
    mail_to(settings, server)
    yield server
    server.stop()


@pytest.fixture
def redis_cache(settings):
    """The cache on a redis-server of the test's own (tests/outages.py), which the test may stop and start
    again; the shared Redis is never stopped. Changing CACHES makes Django drop its cache connections
    (django.test.signals), so requests use this server."""
    from tests.outages import OwnRedis

    server = OwnRedis()
    server.start()
    suite_caches = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},  # as cs_platform/settings.py
        }
    }
    yield server
    server.stop()
    settings.CACHES = suite_caches  # before other fixtures' teardown clears the cache


def pytest_configure(config):
    # whitenoise warns on every request when STATIC_ROOT does not exist yet (before collectstatic).
    from pathlib import Path

    Path(settings.STATIC_ROOT).mkdir(exist_ok=True)
