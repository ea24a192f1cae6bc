"""Fixtures shared by the scorecard tests."""

from __future__ import annotations

import pytest

from tests.scorecards import send_today
from tests.scorecards.smtp import SmtpServer, mail_to


@pytest.fixture
def send_day_is_today(settings):
    """For tests whose data is dated TODAY (see send_today); the worker's tests keep Monday."""
    send_today(settings)


@pytest.fixture
def smtp(settings):
    """A real SMTP server (aiosmtpd) on a free local port, with Django's mail settings pointed at it."""
    server = SmtpServer().start()
    mail_to(settings, server)
    yield server
    server.stop()
