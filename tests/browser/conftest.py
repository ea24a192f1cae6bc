"""A real browser (Debian's chromium through Playwright) against a real server thread.

The server runs in this process on a committed test database (other connections must see the data),
as the app role; data is purged by the owner afterwards (see tests/committed.py)."""

from __future__ import annotations

import os

import pytest
from django.test.testcases import LiveServerThread, _StaticFilesHandler

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture
def live_url(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        thread = LiveServerThread("127.0.0.1", _StaticFilesHandler, port=0)
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        try:
            yield f"http://127.0.0.1:{thread.port}"
        finally:
            thread.terminate()
            # Every browser test logs in from 127.0.0.1 and these rows are committed: one test's failed
            # logins must not add up to a lockout of the address in a later test.
            from axes.models import AccessAttempt
            from django.db import connections

            from cs_platform.identity.models import LoginLockout

            AccessAttempt.objects.all().delete()
            LoginLockout.objects.all().delete()
            connections.close_all()  # as the data fixtures do: no connection may outlive the test database


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django would then refuse ORM calls
    # from the test body. The calls really are synchronous, so that guard does not apply here.
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (browser tests need it)")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    failed: list[str] = []
    # Nothing may come from the internet: every request must go to the test server.
    page.on("request", lambda r: None if r.url.startswith("http://127.0.0.1") else failed.append(r.url))
    yield page
    context.close()
    assert not failed, f"requests left the machine: {failed}"


def log_in(page, live_url: str, username: str, password: str, totp_device=None, next_path: str = "") -> None:
    """Through the login form, as a person would; ends on the role's landing page (home, or the
    compliance dashboard for compliance officers), or `next_path`. A person with an authenticator app
    (`totp_device`, a django-otp TOTPDevice) then types its current code in the second step."""
    page.goto(live_url + "/login/" + (f"?next={next_path}" if next_path else ""))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    if totp_device is not None:
        from tests.identity.conftest import next_code

        page.wait_for_url(live_url + "/login/verify/")
        page.fill("#id_code", next_code(totp_device))
        page.click("form[action='/login/verify/'] button[type=submit]")
    page.wait_for_url(lambda url: url.startswith(live_url) and "/login/" not in url)
    page.wait_for_load_state()
