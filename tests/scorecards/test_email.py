"""The scorecard email as a mail client receives it: MIME structure, inline images, the same figures in
the text and the HTML, nothing executable or external in the HTML, unsubscribe headers."""

from __future__ import annotations

import email
import io
import re
from email import policy

import pytest
from django.conf import settings
from django.utils.html import escape
from PIL import Image

from cs_platform.tenancy.models import Role
from scorecards import charts
from scorecards.content import weekly_scorecard
from scorecards.email import render_scorecard, scorecard_message
from tests.scorecards import WEEK, build_book

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("send_day_is_today")]

UNSUBSCRIBE = settings.SITE_URL + "/weekly-email/unsubscribe/signed-token/"


@pytest.fixture
def card(tenant_a):
    build_book(tenant_a, 9, prefix="Harbor")
    build_book(tenant_a, 4, prefix="Mutual", segment="insurer", owner_role="manager")
    return weekly_scorecard(
        user=tenant_a.user(Role.EXECUTIVE), membership=tenant_a.memberships[Role.EXECUTIVE], week=WEEK
    )


def _parse(rendered, unsubscribe_url=UNSUBSCRIBE):
    message = scorecard_message(rendered, to="exec@alpha.test", unsubscribe_url=unsubscribe_url)
    return email.message_from_bytes(message.message().as_bytes(), policy=policy.default)


def test_mime_structure_is_alternative_of_text_and_related_html_with_images(card):
    rendered = render_scorecard(card, unsubscribe_url=UNSUBSCRIBE)
    parsed = _parse(rendered)
    assert parsed.get_content_type() == "multipart/alternative"
    text, related = parsed.get_payload()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "text/html"
    html, *images = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert images and all(part.get_content_type() == "image/png" for part in images)
    # One bands chart and one KPI chart per segment.
    assert len(images) == 1 + len(card.segments)
    assert parsed["Subject"] == f"Weekly scorecard {WEEK} · Alpha Customer Success"
    assert parsed["To"] == "exec@alpha.test" and parsed["From"] == settings.DEFAULT_FROM_EMAIL

    # Every cid: in the HTML has exactly one image part with that Content-ID, and each is a valid PNG.
    body = html.get_content()
    cids = re.findall(r'src="cid:([^"]+)"', body)
    by_id = {part["Content-ID"].strip("<>"): part for part in images}
    assert sorted(cids) == sorted(by_id)
    for part in images:
        png = part.get_content()
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.size[0] == charts.WIDTH and image.size[1] > 20
        assert part.get_content_disposition() == "inline"


def test_the_text_carries_the_same_figures_as_the_html(card):
    rendered = render_scorecard(card, unsubscribe_url=UNSUBSCRIBE)
    parsed = _parse(rendered)
    text, related = parsed.get_payload()
    text, html = text.get_content(), related.get_payload()[0].get_content()
    bank = card.segments[0].summary
    assert bank.code == "bank" and bank.kpis[0].actual is not None
    for section in card.segments:
        s = section.summary
        # Each segment's part of each body: from its heading on (the first match after it is its own).
        seg_text, seg_html = text[text.index(f"== {s.name} ==") :], html[html.index(f">{escape(s.name)}</a></h2>") :]
        for kpi in s.kpis:
            assert kpi.name in text and escape(kpi.name) in html
            assert kpi.target_text in text and escape(kpi.target_text) in html
        for band, now, before, change in section.band_rows:
            # "Red: 3 / 0 / +3" in the text; the same three numbers in the HTML's row for the band.
            label = {"none": "Not scored"}.get(band, band.capitalize())
            shown_before = "—" if before is None else str(before)
            shown_change = "—" if change is None else (f"+{change}" if change > 0 else str(change))
            assert f"{label}: {now} / {shown_before} / {shown_change}" in seg_text.split("KPIs against")[0]
            row = re.search(rf">{label}</span></th><td[^>]*>(\S+)</td><td[^>]*>(\S+)</td><td[^>]*>(\S+)</td>", seg_html)
            assert row and row.groups() == (str(now), shown_before, shown_change), (s.name, band)
    # KPI actual and attainment of the bank's first KPI, formatted the same way in both.
    kpi = bank.kpis[0]
    actual = f"{kpi.actual:,.2f}".rstrip("0").rstrip(".")
    assert actual in text and escape(actual) in html
    assert f"{kpi.attainment:.1f}%" in text and f"{kpi.attainment:.1f}%" in html
    # Every listed account, decision and exception appears in both bodies.
    for name in [m.name for m in card.movers.items] + [r.name for r in card.renewals_at_risk.items]:
        assert name in text and escape(name) in html
    for decision in card.decisions.items:
        assert decision.title in text and escape(decision.title) in html
        assert decision.customer_impact in text and escape(decision.customer_impact) in html
    for exception in card.compliance_exceptions:
        assert exception.account in text and escape(exception.account) in html
    for figure in (
        f"{card.renewals_at_risk.total} red or yellow accounts",
        f"{card.decisions.total} open",
        f"{card.failed_audits.total} failed audits",
        f"{card.movers.total} accounts changed band",
    ):
        assert figure in text and escape(figure) in html
    # And the dashboard link of each section.
    for url in [*card.links.values(), *(section.link for section in card.segments)]:
        assert url in text and url.replace("&", "&amp;") in html


def test_the_html_has_no_script_and_links_only_to_the_site(card):
    rendered = render_scorecard(card, unsubscribe_url=UNSUBSCRIBE)
    html = rendered.html
    assert "<script" not in html.lower() and "javascript:" not in html.lower()
    assert "<link" not in html.lower() and "<style" not in html.lower()  # inline styles only
    assert not re.search(r"<[^>]+\son\w+\s*=", html)  # no event handlers either
    urls = re.findall(r"https?://[^\s\"'<>]+", html)
    assert urls and all(url.startswith(settings.SITE_URL + "/") for url in urls), urls
    assert re.findall(r'<img [^>]*src="([^"]+)"', html) and all(
        src.startswith("cid:") for src in re.findall(r'<img [^>]*src="([^"]+)"', html)
    )
    assert all(re.search(r"\balt=\"[^\"]+\"", tag) for tag in re.findall(r"<img [^>]*>", html))


def test_list_unsubscribe_headers_only_when_a_url_is_given(card):
    with_url = _parse(render_scorecard(card, unsubscribe_url=UNSUBSCRIBE))
    # A header longer than 78 characters is folded before the URL (real signed tokens always are), which
    # leaves folding white space in front of it: allowed by RFC 2369, ignored by mail clients.
    assert with_url["List-Unsubscribe"].strip() == f"<{UNSUBSCRIBE}>"
    assert with_url["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text_part = with_url.get_payload()[0].get_content()
    assert UNSUBSCRIBE in text_part
    without = _parse(render_scorecard(card, unsubscribe_url=None), unsubscribe_url=None)
    assert without["List-Unsubscribe"] is None and without["List-Unsubscribe-Post"] is None
    assert "Unsubscribe" not in without.get_payload()[0].get_content()


def test_rendering_is_deterministic(card):
    first, second = (render_scorecard(card, unsubscribe_url=None) for _ in range(2))
    assert first == second
    assert all(len(png) < 40_000 for png in first.images.values())  # small enough for any mailbox


def _near(pixel, colour, tolerance: int = 8) -> bool:
    """The charts are saved with a 32-colour palette: flat colours survive within a few units."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def test_charts_draw_their_figures():
    groups = [("Banks and Credit Unions", [("W48", {"red": 3, "yellow": 2, "green": 5}), ("W47", {"green": 10})])]
    png = charts.band_chart(groups, bands=("red", "yellow", "grey", "green", "none"))
    with Image.open(io.BytesIO(png)) as image:
        image = image.convert("RGB")
        # Under the segment's name, this week's bar starts with its red stack, last week's (all green)
        # with green; both end at the same length (10 accounts each).
        assert _near(image.getpixel((charts.PERIOD_WIDTH + 1, 6 + 16 + 8)), charts.BAND_COLOURS["red"])
        assert _near(image.getpixel((charts.PERIOD_WIDTH + 1, 6 + 16 + 20 + 8)), charts.BAND_COLOURS["green"])
        end = charts.WIDTH - 44 - 2
        assert _near(image.getpixel((end, 6 + 16 + 8)), charts.BAND_COLOURS["green"])
        assert _near(image.getpixel((end, 6 + 16 + 20 + 8)), charts.BAND_COLOURS["green"])
    kpi = charts.kpi_chart([("Renewal", 80.0, True), ("Audit", 20.0, False), ("None", None, None)])
    with Image.open(io.BytesIO(kpi)) as image:
        image = image.convert("RGB")
        x0 = charts.LABEL_WIDTH + 10
        assert _near(image.getpixel((x0 + 5, 8 + 8)), charts.MET)
        assert _near(image.getpixel((x0 + 5, 8 + 22 + 8)), charts.MISSED)
        assert _near(image.getpixel((x0 + 300, 8 + 22 + 8)), (255, 255, 255))  # 20 % ends well before 300 px
