"""The scorecard email in headless Chromium, as a mail client shows it: the message is sent through the
real delivery path to a local SMTP server, parsed from the bytes that arrived, its cid: images resolved
from the received image parts (here to data: URIs), the tables visible, every image loaded, nothing
fetched from anywhere. A screenshot is saved under test-artifacts/screenshots/."""

from __future__ import annotations

import base64
import concurrent.futures
import os
from pathlib import Path

import pytest

from cs_platform.tenancy.models import Role
from scorecards import delivery
from scorecards.content import weekly_scorecard
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.scorecards import WEEK, build_book, send_today
from tests.scorecards.smtp import SmtpServer, mail_to

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _send_day_is_today(settings):
    send_today(settings)  # the data is dated TODAY: see send_today


SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _as_a_mail_client_shows_it(message) -> tuple[str, int]:
    """The received message's HTML part with each cid: reference replaced by its image part's bytes,
    and how many image parts there were. Fails if the HTML names an image the message lacks."""
    html_part = message.get_body(preferencelist=("html",))
    html = html_part.get_content()
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    for part in images:
        content_id = part["Content-ID"].strip("<>")
        png = part.get_payload(decode=True)
        assert png.startswith(b"\x89PNG"), content_id
        assert f"cid:{content_id}" in html, content_id
        html = html.replace(f"cid:{content_id}", "data:image/png;base64," + base64.b64encode(png).decode())
    return html, len(images)


def _check_in_chromium(html_path: Path, *, expected_images: int, texts: list[str], kpi_name: str) -> list[str]:
    """Open the file in headless Chromium and check it; returns the URLs the page requested. Runs in a
    thread of its own: Playwright's sync API needs a thread without an event loop, and the test's
    database work stays on the main thread (the session `browser` fixture may be running one)."""
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 720, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html_path.as_uri())
            page.wait_for_load_state("load")
            assert page.locator("table.scorecard-table").count() >= 4
            for text in texts:
                assert page.get_by_text(text).first.is_visible(), text
            kpi_table = page.locator("table.kpis").first
            assert kpi_table.is_visible() and kpi_name in kpi_table.inner_text()
            images = page.locator("img")
            assert images.count() == expected_images
            sizes = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            assert all(complete and width > 0 and height > 0 for complete, width, height in sizes), sizes
            for index in range(images.count()):
                assert images.nth(index).is_visible()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "scorecard-email.png"), full_page=True)
        finally:
            browser.close()
    return requests


def test_the_scorecard_email_renders_its_tables_and_images(tenant_a, tmp_path, settings):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (browser tests need it)")
    build_book(tenant_a, 12, prefix="Harbor")
    build_book(tenant_a, 5, prefix="Mutual", segment="insurer", owner_role="manager")
    card = weekly_scorecard(
        user=tenant_a.user(Role.EXECUTIVE), membership=tenant_a.memberships[Role.EXECUTIVE], week=WEEK
    )
    server = SmtpServer().start()
    try:
        mail_to(settings, server)
        prepared = delivery.scorecard_deliveries_prepare(tenant=tenant_a.tenant, week=WEEK)
        (delivery_id,) = prepared.sendable_ids  # the executive: the only default recipient
        assert delivery.scorecard_delivery_send(tenant=tenant_a.tenant, delivery_id=delivery_id).status == "sent"
    finally:
        server.stop()
    (received,) = server.messages
    html, image_parts = _as_a_mail_client_shows_it(received.message)
    path = tmp_path / "scorecard.html"
    path.write_text(html, encoding="utf-8")
    assert "cid:" not in html
    texts = [
        f"Weekly scorecard {WEEK}",
        "Harbor 0000",
        "Top movers",
        "Renewals at risk",
        "Open blockers and decisions",
        "Closed in the last 7 days",
        "Compliance exceptions",
        card.segments[0].name,
    ]

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        requests = pool.submit(
            _check_in_chromium,
            path,
            expected_images=1 + len(card.segments),
            texts=texts,
            kpi_name=card.segments[0].summary.kpis[0].name,
        ).result(timeout=120)
    assert image_parts == 1 + len(card.segments)  # the band chart and one KPI chart per segment
    # The file and its inline images only: no request left for any server.
    assert requests and all(url.startswith(("file://", "data:")) for url in requests), requests
