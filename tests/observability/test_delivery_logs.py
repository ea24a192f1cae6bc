"""SMTP and webhook delivery failures are logged at WARNING with the tenant and the delivery id, so an
on-call engineer finds them in the JSON logs (issue #16 item 6)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError

from tests.observability.helpers import captured_logs
from tests.scorecards.smtp import SmtpServer, mail_to
from tests.scorecards.test_command import WEEK, _run, two_executives  # noqa: F401 - the fixture
from tests.webhooks.conftest import insecure, make_endpoint  # noqa: F401 - the fixture
from tests.webhooks.receiver import Receiver
from webhooks import delivery as webhook_delivery
from webhooks import services as webhook_services

pytestmark = pytest.mark.django_db


def test_an_smtp_failure_is_a_warning_with_tenant_and_delivery(two_executives, settings):  # noqa: F811
    mail_to(settings, SmtpServer())  # never started: the port refuses connections
    with captured_logs() as logs, pytest.raises(CommandError):
        _run("--tenant", "alpha", "--week", WEEK)
    failures = [line for line in logs.lines() if line["logger"] == "scorecards.delivery"]
    assert len(failures) == 2, logs.text  # one per recipient
    for line in failures:
        assert line["level"] == "warning" and "attempt 1 failed" in line["event"]
        assert line["tenant_id"] == two_executives.tenant.pk and isinstance(line["delivery_id"], int)


def test_a_webhook_failure_is_a_warning_with_tenant_and_delivery(tenant_a, insecure):  # noqa: F811
    from cs_platform.tenancy.models import Role

    with Receiver([500]) as receiver:
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        delivery = webhook_services.webhook_ping(
            tenant=tenant_a.tenant, endpoint=endpoint, actor=tenant_a.user(Role.ADMIN)
        )
        with captured_logs() as logs:
            webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=1)
    (line,) = [x for x in logs.lines() if x["logger"] == "webhooks.delivery"]
    assert line["level"] == "warning" and "HTTP 500" in line["event"]
    assert (line["tenant_id"], line["delivery_id"], line["attempt"]) == (tenant_a.tenant.pk, delivery.pk, 1)
