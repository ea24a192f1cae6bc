"""The weekly scorecard as an email: subject, HTML (table layout, inline styles, charts as inline PNGs
referenced by cid:), and a plain-text alternative with the same figures.

Both bodies are rendered from one set of preformatted strings (`_figures`), so the text and the HTML
cannot disagree about a number. Rendering reads only the WeeklyScorecard (plain data): no query."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from email.mime.image import MIMEImage

from django.core.mail import EmailMessage
from django.core.mail.message import SafeMIMEMultipart, SafeMIMEText
from django.template.loader import render_to_string

from scorecards import charts
from scorecards.content import BAND_KEYS, WeeklyScorecard

BAND_LABELS = {"red": "Red", "yellow": "Yellow", "grey": "Grey", "green": "Green", "none": "Not scored"}
BAND_CELL = {  # inline styles of a band's badge: background and text colour
    "red": "background:#c0392b;color:#ffffff;",
    "yellow": "background:#e0aa00;color:#000000;",
    "grey": "background:#7f8c8d;color:#ffffff;",
    "green": "background:#278554;color:#ffffff;",
    "none": "background:#d5d8dc;color:#000000;",
}
SCOPES = {"manager": "your team's accounts", "csm": "your accounts"}
DAY_LABELS = {"failed_audit": "audited", "overdue": "due", "expiring": "evidence valid until"}
KIND_LABELS = {"failed_audit": "Failed audit", "overdue": "Overdue obligation", "expiring": "Evidence expiring"}


def _unsafe(text: str) -> str:
    """`text` as a plain str, without the template engine's "already escaped" mark.

    render_to_string returns a SafeString whatever the template's autoescape setting, and Django's
    SafeString.__str__ returns itself, hence str.__str__. email.txt renders with autoescape off (a text
    email must read as typed, "&" not "&amp;"), so its output holds names exactly as people typed them;
    left marked safe, every HTML page that printed it would skip escaping (the preview once did)."""
    return str.__str__(text)


@dataclasses.dataclass(frozen=True)
class RenderedScorecard:
    subject: str  # plain text, unescaped: escape it wherever it is shown in HTML
    text: str  # plain text, unescaped: likewise
    html: str  # the HTML body, escaped by its template
    images: dict[str, bytes]  # Content-ID (without angle brackets) -> PNG

    def __post_init__(self) -> None:
        # Whoever builds one, the text parts can never arrive in a template marked as safe HTML.
        object.__setattr__(self, "subject", _unsafe(self.subject))
        object.__setattr__(self, "text", _unsafe(self.text))


def _number(value, places: int = 1) -> str:
    """A figure as the email prints it; "—" when there is none."""
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.{places}f}"
    return f"{int(value):,}"


def _pct(value) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _signed(value: int | None) -> str:
    if value is None:
        return "—"
    return f"+{value}" if value > 0 else str(value)


def _money(value) -> str:
    return f"{value:,.0f}"


def _kpi_actual(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}".strip()


def _cid(name: str, scorecard: WeeklyScorecard) -> str:
    return f"{name}.{scorecard.week}.{scorecard.tenant.slug}@scorecard.cs-platform"


def _figures(scorecard: WeeklyScorecard, images: dict[str, bytes]) -> dict:
    """Every figure of the email as display strings, shared by both templates."""
    week = str(scorecard.week)
    previous = str(scorecard.week.previous())
    segments = []
    for section in scorecard.segments:
        s = section.summary
        kpis = [
            {
                "name": k.name,
                "target": k.target_text,
                "actual": _kpi_actual(k.actual, k.unit),
                "status": "met" if k.met else "missed" if k.met is False else "no data",
                "met": k.met,
                "attainment": _pct(k.attainment),
                "on_target": f"{k.on_target} of {k.accounts}" if k.accounts else "—",
            }
            for k in s.kpis
        ]
        kpi_cid = _cid(f"kpi-{s.segment_id}", scorecard)
        images[kpi_cid] = charts.kpi_chart([(k.name, k.attainment, k.met) for k in s.kpis])
        segments.append(
            {
                "name": s.name,
                "link": section.link,
                "accounts": _number(s.accounts),
                "arr": _money(s.arr),
                "avg_health": _number(s.avg_health),
                "kpis_met": f"{s.kpis_met} of {s.kpis_reporting}" if s.kpis_reporting else "—",
                "retention": _pct(s.retention),
                "churn": _pct(s.churn),
                "churned": _number(s.churned),
                "nps": _number(s.nps),
                "nps_n": s.nps_responses,
                "csat": "—" if s.csat is None else f"{s.csat:.2f}",
                "csat_n": s.csat_responses,
                "audit_pass_rate": _pct(s.audit_pass_rate),
                "audits": f"{s.audits_passed}/{s.audits}" if s.audits else "",
                "renewing_90d": _number(s.renewing_90d),
                "bands": [
                    {
                        "band": band,
                        "label": BAND_LABELS[band],
                        "style": BAND_CELL[band],
                        "now": str(now),
                        "before": "—" if before is None else str(before),
                        "change": _signed(change),
                    }
                    for band, now, before, change in section.band_rows
                ],
                "kpis": kpis,
                "kpi_cid": kpi_cid,
                "kpi_alt": f"KPI attainment in {s.name}: " + "; ".join(f"{k['name']} {k['attainment']}" for k in kpis),
            }
        )
    this_label, last_label = f"W{scorecard.week.number:02d}", f"W{scorecard.week.previous().number:02d}"
    band_groups = []
    for section in scorecard.segments:
        bars = [(this_label, section.summary.bands)]
        if section.bands_before is not None:
            bars.append((last_label, section.bands_before))
        band_groups.append((section.name, bars))
    bands_cid = _cid("bands", scorecard)
    images[bands_cid] = charts.band_chart(band_groups, bands=BAND_KEYS)
    totals = scorecard.bands_total

    def person(name: str) -> str:
        return name or "unassigned"

    return {
        "title": f"Weekly scorecard {week}",
        "tenant": scorecard.tenant.name,
        "recipient": scorecard.user.get_full_name() or scorecard.user.get_username(),
        "scope": SCOPES.get(scorecard.role, "your accounts") if not scorecard.whole_tenant else "all accounts",
        "week": week,
        "previous_week": previous,
        "as_of": scorecard.as_of.isoformat() if scorecard.as_of else None,
        "before": scorecard.before.isoformat() if scorecard.before else None,
        "stale": scorecard.stale,
        "monday": scorecard.week.monday.isoformat(),
        "sunday": scorecard.week.sunday.isoformat(),
        "links": scorecard.links,
        "segments": segments,
        "totals": [{"label": BAND_LABELS[b], "style": BAND_CELL[b], "n": str(totals[b])} for b in BAND_KEYS],
        "bands_cid": bands_cid,
        "bands_alt": "Accounts per health band per segment, this week and last week: "
        + "; ".join(
            f"{name} {period}: " + ", ".join(f"{c.get(b, 0)} {b}" for b in BAND_KEYS)
            for name, bars in band_groups
            for period, c in bars
        ),
        "movers": [
            {
                "name": m.name,
                "link": m.link,
                "segment": m.segment,
                "owner": person(m.owner),
                "before": BAND_LABELS[m.band_before],
                "now": BAND_LABELS[m.band_now],
                "before_style": BAND_CELL[m.band_before],
                "now_style": BAND_CELL[m.band_now],
                "direction": m.direction,
                "totals": f"{_number(m.total_before)} → {_number(m.total_now)}",
            }
            for m in scorecard.movers.items
        ],
        "movers_total": scorecard.movers.total,
        "renewals": [
            {
                "name": r.name,
                "link": r.link,
                "segment": r.segment,
                "owner": person(r.owner),
                "date": r.renewal_date.isoformat(),
                "days": r.days_left,
                "arr": _money(r.arr),
                "band": BAND_LABELS[r.band],
                "style": BAND_CELL[r.band],
                "health": _number(r.health_total),
            }
            for r in scorecard.renewals_at_risk.items
        ],
        "renewals_total": scorecard.renewals_at_risk.total,
        "renewals_arr": _money(scorecard.renewals_at_risk_arr),
        "decisions": [
            {
                "title": d.title,
                "kind": d.kind.capitalize(),
                "link": d.link,
                "account": d.account,
                "owner": person(d.owner),
                "due": d.due_date.isoformat(),
                "overdue": d.overdue,
                "escalated": d.escalated,
                "escalated_to": d.escalated_to,
                "impact": d.customer_impact,
                "impact_stated": d.impact_stated,
                "fallback": d.fallback or "—",
            }
            for d in scorecard.decisions.items
        ],
        "decisions_total": scorecard.decisions.total,
        "closed": [
            {
                "title": c.title,
                "kind": c.kind.capitalize(),
                "link": c.link,
                "account": c.account,
                "owner": person(c.owner),
                "closed_on": c.closed_on.isoformat(),
                "outcome": "fallback applied" if c.outcome == "fallback" else "resolved",
                "resolution": c.resolution,
            }
            for c in scorecard.decisions_closed.items
        ],
        "closed_total": scorecard.decisions_closed.total,
        "exceptions": [
            {
                "kind": KIND_LABELS[e.kind],
                "account": e.account,
                "link": e.link,
                "framework": e.framework,
                "requirement": e.requirement,
                "day": e.day.isoformat() if e.day else "—",
                "detail": e.detail,
                "day_label": DAY_LABELS[e.kind],
            }
            for e in scorecard.compliance_exceptions
        ],
        "failed_total": scorecard.failed_audits.total,
        "overdue_total": scorecard.overdue_obligations.total,
        "expiring_total": scorecard.expiring_evidence.total,
    }


def render_scorecard(scorecard: WeeklyScorecard, *, unsubscribe_url: str | None) -> RenderedScorecard:
    """Subject, both bodies and the chart images of one user's weekly email."""
    images: dict[str, bytes] = {}
    figures = _figures(scorecard, images)
    context = {**figures, "unsubscribe_url": unsubscribe_url}
    return RenderedScorecard(
        subject=f"Weekly scorecard {scorecard.week} · {scorecard.tenant.name}",
        text=render_to_string("scorecards/email.txt", context),
        html=render_to_string("scorecards/email.html", context),
        images=images,
    )


class ScorecardEmail(EmailMessage):
    """multipart/alternative [text/plain, multipart/related [text/html, image/png...]]: the structure mail
    clients expect for an HTML body with inline images and a text fallback. Django's
    EmailMultiAlternatives would put the images beside the alternatives (multipart/mixed), where many
    clients show them as attachments instead of resolving the cid: references."""

    def __init__(self, *args, html: str, images: dict[str, bytes], **kwargs):
        super().__init__(*args, **kwargs)
        self.html = html
        self.images = dict(images)

    def _create_message(self, msg):
        encoding = self.encoding or "utf-8"
        related = SafeMIMEMultipart(_subtype="related", encoding=encoding)
        related.set_param("type", "text/html")
        related.attach(SafeMIMEText(self.html, "html", encoding))
        for content_id, png in self.images.items():
            image = MIMEImage(png, _subtype="png")
            image["Content-ID"] = f"<{content_id}>"
            image.add_header("Content-Disposition", "inline", filename=content_id.split("@")[0] + ".png")
            related.attach(image)
        alternative = SafeMIMEMultipart(_subtype="alternative", encoding=encoding)
        alternative.attach(msg)  # the text/plain body Django built from self.body
        alternative.attach(related)
        return self._create_attachments(alternative)


def scorecard_message(
    rendered: RenderedScorecard, *, to: str, unsubscribe_url: str | None, connection=None
) -> ScorecardEmail:
    """The email to send (from DEFAULT_FROM_EMAIL). With an unsubscribe URL it carries RFC 2369/8058
    List-Unsubscribe headers, so mail clients offer one-click unsubscribe."""
    headers = {}
    if unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return ScorecardEmail(
        subject=rendered.subject,
        body=rendered.text,
        to=[to],
        headers=headers,
        connection=connection,
        html=rendered.html,
        images=rendered.images,
    )
