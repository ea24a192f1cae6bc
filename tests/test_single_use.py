"""Single-use form keys (cs_platform.single_use), on the real cache (Redis): spent once, whatever runs
concurrently; refused when missing, forged, another user's, another form's, or expired."""

from __future__ import annotations

import threading
import time
from unittest import mock

import pytest
from django.test import RequestFactory

from cs_platform.single_use import FIELD, KEY_MAX_AGE, FormKey, form_key_issue, form_key_spend
from tests import factories

pytestmark = pytest.mark.django_db


def _request(user, key: str | None):
    request = RequestFactory().post("/form/", {} if key is None else {FIELD: key})
    request.user = user
    return request


def _issue(user, purpose: str) -> str:
    request = RequestFactory().get("/form/")
    request.user = user
    return form_key_issue(request, purpose)


def test_a_key_is_spent_once():
    user = factories.UserFactory()
    key = _issue(user, "thing.create")
    assert _issue(user, "thing.create") != key  # every rendering of the form gets its own
    assert form_key_spend(_request(user, key), "thing.create") is FormKey.FRESH
    assert form_key_spend(_request(user, key), "thing.create") is FormKey.SPENT
    assert form_key_spend(_request(user, _issue(user, "thing.create")), "thing.create") is FormKey.FRESH


def test_concurrent_posts_of_one_key_spend_it_once():
    user = factories.UserFactory()
    key = _issue(user, "thing.create")
    results: list[FormKey] = []
    start = threading.Barrier(8)

    def post() -> None:
        request = _request(user, key)
        start.wait()
        results.append(form_key_spend(request, "thing.create"))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.value for r in results) == ["fresh"] + ["spent"] * 7


def test_missing_forged_foreign_and_misdirected_keys_are_invalid():
    user, other = factories.UserFactory(), factories.UserFactory()
    key = _issue(user, "thing.create")
    tampered = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    for candidate in (None, "", "x" * 5000, tampered, key.replace(":", ";", 1)):
        assert form_key_spend(_request(user, candidate), "thing.create") is FormKey.INVALID, candidate
    assert form_key_spend(_request(other, key), "thing.create") is FormKey.INVALID
    assert form_key_spend(_request(user, key), "thing.rotate:1") is FormKey.INVALID
    # None of these spent it: the real form can still be sent.
    assert form_key_spend(_request(user, key), "thing.create") is FormKey.FRESH


def test_an_expired_key_is_invalid_so_a_stale_tab_creates_nothing():
    user = factories.UserFactory()
    key = _issue(user, "thing.create")
    later = time.time() + KEY_MAX_AGE.total_seconds() + 1
    with mock.patch("django.core.signing.time.time", return_value=later):  # the clock, not our code
        assert form_key_spend(_request(user, key), "thing.create") is FormKey.INVALID
