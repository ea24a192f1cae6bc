"""The API's documentation pages in a real browser: Swagger UI and Redoc render the operations (the `me`
endpoint and the audit trail's export) from files this server serves itself, with no CDN or font host."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Swagger UI puts zero-width spaces before each "/" of a path so long paths can wrap.
ZERO_WIDTH_SPACE = "\u200b"


def _origin(url: str) -> str:
    parts = urlsplit(url.removeprefix("blob:"))  # a blob: URL carries the origin that created it
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def docs_page(browser):
    """A fresh page. (Not the suite's `page` fixture: that one counts a request the page's
    Content-Security-Policy blocked as one that left the machine; these tests tell the two apart.)"""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    yield context.new_page()
    context.close()


class Traffic:
    """Every request the page started, and those its CSP stopped before they reached the network."""

    def __init__(self, page) -> None:
        self.requested: list[str] = []
        self.blocked_by_csp: list[str] = []
        page.on("request", lambda request: self.requested.append(request.url))
        page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        # Chromium reports "csp" (older builds: net::ERR_BLOCKED_BY_CSP): refused before any connection.
        if "csp" in (request.failure or "").lower():
            self.blocked_by_csp.append(request.url)

    def left_the_server(self, live_url: str) -> list[str]:
        return [
            url
            for url in self.requested
            if not url.startswith("data:") and _origin(url) != live_url and url not in self.blocked_by_csp
        ]


def _open(page, url: str) -> Traffic:
    traffic = Traffic(page)
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    return traffic


def test_swagger_ui_renders_the_operations_from_local_files(docs_page, live_url):
    page = docs_page
    traffic = _open(page, live_url + "/api/docs/")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    page.wait_for_load_state("networkidle")
    paths = {text.replace(ZERO_WIDTH_SPACE, "") for text in page.locator(".opblock-summary-path").all_inner_texts()}
    assert "/api/v1/me/" in paths
    assert {"/api/v1/audit-events/", "/api/v1/audit-events/export/", "/api/v1/audit-events/{event_id}/"} <= paths
    # The schema came from this server, and so did Swagger UI itself (drf-spectacular-sidecar).
    assert any(urlsplit(url).path == "/api/schema/" for url in traffic.requested)
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/" in url for url in traffic.requested)
    assert traffic.left_the_server(live_url) == [] and traffic.blocked_by_csp == []

    # Open the export: its description tells a client how to verify the hashes.
    export = page.locator('.opblock-summary-path[data-path="/api/v1/audit-events/export/"]').first
    export.click()
    page.wait_for_selector("text=How to verify an export", timeout=10_000)
    export.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))


def test_redoc_renders_the_operations_from_local_files(docs_page, live_url):
    page = docs_page
    traffic = _open(page, live_url + "/api/redoc/")
    # Redoc renders the sidebar and the operations once it has fetched and parsed the schema.
    # (A locator, not wait_for_function: the page's CSP forbids the eval that one needs.)
    export = page.get_by_text("Export the audit trail (CSV or JSON), streamed and verifiable", exact=True)
    export.first.wait_for(state="attached", timeout=30_000)
    page.wait_for_load_state("networkidle")
    text = page.locator("body").inner_text()
    assert "/api/v1/me/" in text
    assert "/api/v1/audit-events/export/" in text
    assert any("/static/drf_spectacular_sidecar/redoc/" in url for url in traffic.requested)
    assert traffic.left_the_server(live_url) == []
    # Redoc's sidebar logo is hard-wired to cdn.redoc.ly; the site's CSP (cs_platform/settings.py) stops it.
    assert all(_origin(url) == "https://cdn.redoc.ly" for url in traffic.blocked_by_csp)
    assert not any("fonts.googleapis.com" in url for url in traffic.requested)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "api-redoc.png"))
