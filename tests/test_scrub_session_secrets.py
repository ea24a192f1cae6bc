"""The data migrations that remove one-time secrets left in django_session by the code before issue
#15 (api 0004, webhooks 0002): the secret's entry goes, the rest of each session stays."""

from __future__ import annotations

import importlib
import types

import pytest
from django.apps import apps
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection

pytestmark = pytest.mark.django_db

MIGRATIONS = [
    ("api.migrations.0004_scrub_session_secrets", "api_token_plaintext"),
    ("webhooks.migrations.0002_scrub_session_secrets", "webhook_secret_plaintext"),
]


@pytest.mark.parametrize(("module", "key"), MIGRATIONS)
def test_the_migration_removes_the_secret_and_keeps_the_session(module, key):
    holding = SessionStore()
    holding.update({"_auth_user_id": "7", "tenant_id": 3, key: {"id": 1, "secret": "whsec_LEFT-OVER"}})
    holding.create()
    clean = SessionStore()
    clean.update({"_auth_user_id": "8"})
    clean.create()
    untouched = Session.objects.get(pk=clean.session_key).session_data

    importlib.import_module(module).scrub(apps, types.SimpleNamespace(connection=connection))

    row = Session.objects.get(pk=holding.session_key)
    assert "whsec_LEFT-OVER" not in str(row.get_decoded())
    assert row.get_decoded() == {"_auth_user_id": "7", "tenant_id": 3}
    assert Session.objects.get(pk=clean.session_key).session_data == untouched
