"""Fixtures shared by the scorecard tests."""

from __future__ import annotations

import pytest

from tests.scorecards import send_today


@pytest.fixture
def send_day_is_today(settings):
    """For tests whose data is dated TODAY (see send_today); the worker's tests keep Monday."""
    send_today(settings)
