"""The hostile-data test (issue #15, item 1): a tenant whose every free-text field holds script, markup
breaking out of attributes, javascript: URLs, template syntax and spreadsheet formulas (tests/security/
hostile.py), then every page, email, preview and export rendered and read for their structure.

Pages: every URL pattern of the resolver (tests/urlwalk.py), so a new page is covered without editing
this file, with the hostile objects as URL arguments, as an admin, an executive, a compliance officer
and the CSM who owns the hostile account; each page once as is and once with every query parameter it
sends back (its GET forms, its "?..." links) set to a payload. An HTML answer fails on any element
carrying an inline event handler, any URL attribute that runs script, any executable <script> holding a
payload marker, any json_script block that is not pure JSON, the secret key, or the output of a template
evaluated from typed text. Any other answer must be a type a browser never renders as HTML.
"""

from __future__ import annotations

import csv
import email
import io
import json
from email import policy

import pytest
from django.conf import settings
from django.urls import reverse

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests.security.hostile import (
    ATTRIBUTE,
    EVALUATED,
    EXEMPT,
    FORMULA_LEADS,
    JS_URL,
    PAYLOADS,
    SCRIPT,
    SCRIPT_MARKERS,
    TEMPLATE,
    HostileWorld,
    build,
    free_text_fields,
    unfilled_fields,
)
from tests.security.markup import Document, parse_html, script_url
from tests.urlwalk import PUBLIC, all_patterns, kwargs_of

pytestmark = pytest.mark.django_db

# Sent in every query parameter a page offers: reflected input must be as inert as stored data.
REFLECTED = f"{ATTRIBUTE}{SCRIPT}{TEMPLATE}{JS_URL}"
# A browser renders these as documents; everything else here must be data (JSON, CSV, a download).
RENDERED_TYPES = ("html", "xml", "svg")
# What a template's {% debug %} prints (with DEBUG on): the module list.
DEBUG_OUTPUT = ("<module 'sys' (built-in)>", "'sys': <module")
# Pages that show nothing of the tenant: third-party documentation shells.
NO_TENANT_DATA = {"api_docs", "api_redoc"}


@pytest.fixture
def hostile(settings, tmp_path) -> HostileWorld:
    return build(settings, tmp_path)


def test_every_free_text_field_holds_a_payload(hostile):
    fields = free_text_fields()
    stale = sorted(f"{label}.{name}" for label, name in EXEMPT if (label, name) not in fields)
    assert not stale, f"EXEMPT names fields that no longer exist: {stale}"
    missing = unfilled_fields(hostile)
    assert not missing, (
        f"The hostile fixture could not fill {missing}: write a payload into each through the service that "
        "stores it (tests/security/hostile.py, build), or add it to EXEMPT with the reason nobody can type "
        "text into it."
    )


# --- Reading one answer ------------------------------------------------------------------------------------
def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def inspect(response, where: str) -> tuple[list[str], Document | None, bytes]:
    """What is wrong with one answer, its document when it is HTML, and its body (read once: a streamed
    answer cannot be read twice)."""
    problems = []
    if response.status_code >= 500:
        problems.append(f"{where}: answered {response.status_code}")
    content_type = response.get("Content-Type", "")
    if 300 <= response.status_code < 400:
        if script_url(response.get("Location", "")):
            problems.append(f"{where}: redirects to a script URL {response['Location']!r}")
        return problems, None, b""
    body = _body(response)
    if content_type.startswith("text/html"):
        source = body.decode()
        document = parse_html(source)
        problems += [f"{where}: {problem}" for problem in document.problems(SCRIPT_MARKERS)]
        if settings.SECRET_KEY in source:
            problems.append(f"{where}: shows the SECRET_KEY")
        shown = "\n".join(document.text + document.attribute_values)
        if EVALUATED in shown or any(marker in shown for marker in DEBUG_OUTPUT):
            problems.append(f"{where}: evaluated typed text as a template")
        return problems, document, body
    if any(kind in content_type for kind in RENDERED_TYPES):
        problems.append(f"{where}: answered {content_type!r}, which a browser renders")
    if response.get("X-Content-Type-Options") != "nosniff":
        problems.append(f"{where}: {content_type!r} without X-Content-Type-Options: nosniff")
    if "json" in content_type and body:
        try:
            json.loads(body)
        except ValueError:
            problems.append(f"{where}: {content_type!r} that is not JSON")
    return problems, None, body


def _displays_payload(document: Document) -> bool:
    return any(marker in chunk for chunk in document.text for marker in ("alert(1)", "SECRET_KEY", "cmd|"))


# --- The walk ----------------------------------------------------------------------------------------------
class Walk:
    """One member's walk over every URL pattern; `skip` names the URLs already walked (public pages
    answer the same whoever asks)."""

    def __init__(self, client, world: HostileWorld, role: str, skip: frozenset[str] = frozenset()) -> None:
        self.client, self.world, self.user, self.skip = client, world, world.user(role), skip
        self.problems: list[str] = []
        self.html_pages: dict[str, bool] = {}  # URL name -> displayed a payload
        self.requests = 0

    def _log_in(self) -> None:
        self.client.force_login(self.user)
        self.client.get(reverse("account_list"))  # settles the session's tenant

    def _check(self, response, where: str, name: str) -> Document | None:
        self.requests += 1
        problems, document, _ = inspect(response, where)
        self.problems += problems
        if document is not None and response.status_code == 200:
            self.html_pages[name] = self.html_pages.get(name, False) or _displays_payload(document)
        if "_auth_user_id" not in self.client.session:  # the walk logged out
            self._log_in()
        return document

    def run(self) -> Walk:
        self._log_in()
        post_only = []
        for name, pattern in all_patterns(with_token_urls=True):
            if name in self.skip:
                continue
            unknown = [k for k in kwargs_of(pattern) if k not in self.world.url_kwargs]
            assert not unknown, f"{name}: give the hostile world an object for URL kwargs {unknown} (hostile.build)"
            url = reverse(name, kwargs={k: self.world.url_kwargs[k] for k in kwargs_of(pattern)} or None)
            response = self.client.get(url)
            if response.status_code == 405:
                post_only.append((name, url))
                continue
            document = self._check(response, f"GET {url}", name)
            if document is not None and document.query_names:
                query = {key: REFLECTED for key in sorted(document.query_names)}
                self._check(self.client.get(url, query), f"GET {url}?{sorted(query)}={REFLECTED!r}", name)
        # Last: some of these change what the pages show (disable a webhook, rotate its secret, log out).
        for name, url in post_only:
            if url.startswith("/api/"):
                response = self.client.post(url, {}, content_type="application/json")
            else:
                response = self.client.post(url, {})
            self._check(response, f"POST {url}", name)
        return self


def test_every_page_shows_hostile_data_as_inert_text(client, hostile):
    """As the CSM who owns the hostile account, a compliance officer, an executive and an admin (last:
    an admin's POSTs change what later pages would show)."""
    problems, walked, walks = [], frozenset(), {}
    for role in (Role.CSM, Role.COMPLIANCE, Role.EXECUTIVE, Role.ADMIN):
        walks[role] = walk = Walk(client, hostile, role, skip=walked).run()
        walked |= PUBLIC
        problems += [f"as {role}: {problem}" for problem in walk.problems]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    # Not vacuous: pages were rendered, the hostile account's among them, and each shows hostile text as
    # text (the tenant's and the member's names head every page).
    for role, walk in walks.items():
        assert walk.html_pages.get("account_detail") and len(walk.html_pages) >= 5, (role, sorted(walk.html_pages))
        quiet = sorted(name for name, shown in walk.html_pages.items() if not shown and name not in NO_TENANT_DATA)
        assert not quiet, f"pages that showed no hostile text as {role}: {quiet}"


# --- Emails ------------------------------------------------------------------------------------------------
def test_every_scorecard_email_keeps_payloads_as_text(hostile):
    """Built by scorecard_build, the function the sender calls, and read back from the MIME bytes."""
    from scorecards.delivery import scorecard_build

    account, decision = hostile.objects["account"], hostile.objects["decision"]
    for role, recipient in hostile.objects["recipients"].items():
        assert recipient is not None, role
        rendered, message = scorecard_build(tenant=hostile.tenant, recipient=recipient, week=hostile.objects["week"])
        parsed = email.message_from_bytes(message.message().as_bytes(), policy=policy.default)
        # (A long subject is folded across header lines; unfolded, it is the rendered one.)
        subject = " ".join(parsed["Subject"].split())
        assert subject == " ".join(rendered.subject.split()) and hostile.tenant.name in subject, role

        text = parsed.get_body(preferencelist=("plain",)).get_content()
        # A text email says what was typed, literally: every payload, unescaped.
        for value in (hostile.tenant.name, account.name, decision.title, decision.fallback, *PAYLOADS):
            assert value in text, (role, value)
        assert "&lt;" not in text and "&#x27;" not in text and EVALUATED not in text, role

        html = parsed.get_body(preferencelist=("html",)).get_content()
        document = parse_html(html)
        assert not document.problems(SCRIPT_MARKERS), (role, document.problems(SCRIPT_MARKERS))
        assert not document.scripts and settings.SECRET_KEY not in html, role
        shown = "".join(document.text)
        assert account.name in shown and decision.title in shown and EVALUATED not in shown, role


def test_the_password_reset_email_keeps_payloads_as_text(hostile, mailoutbox):
    """The other email the platform sends. Plain text only (no HTML part a client could render), the
    name the person was given written literally, no template evaluated from it."""
    from cs_platform.identity.services import password_reset_email_send

    user = hostile.user(Role.CSM)
    assert password_reset_email_send(user_id=user.pk)
    [sent] = mailoutbox
    parsed = email.message_from_bytes(sent.message().as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "text/plain" and not getattr(sent, "alternatives", [])
    text = parsed.get_content()
    assert user.get_full_name() in text and "&lt;" not in text and EVALUATED not in text
    assert settings.SECRET_KEY not in text


# --- Exports -----------------------------------------------------------------------------------------------
def test_the_audit_exports_neutralise_formulas_and_still_verify(client, hostile):
    from tests.api.test_audit_api import GENESIS, events_from_csv, verify_segment

    client.force_login(hostile.user(Role.COMPLIANCE))
    client.get(reverse("account_list"))
    export = reverse("api-audit-event-export")

    response = client.get(export, {"format": "csv"})
    problems, _, body = inspect(response, "audit CSV")
    assert not problems, problems
    assert response["Content-Disposition"].startswith("attachment;")
    text = body.decode()
    cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]
    assert not [cell for cell in cells if cell.startswith(FORMULA_LEADS)]
    # Not vacuous: the hostile usernames (actor_label) start with "-", so those cells carry the mark.
    marked = [cell for cell in cells if cell.startswith("'") and cell[1:].startswith(FORMULA_LEADS)]
    assert any(cell == f"'{hostile.user(Role.CSM).username}" for cell in marked), marked[:5]

    response = client.get(export, {"format": "json"})
    problems, _, body = inspect(response, "audit JSON")
    assert not problems, problems
    events = json.loads(body)["events"]
    # The documented rule turns the CSV back into exactly the verbatim JSON, and both verify. The JSON
    # export came second, so it also holds the CSV export's own audit.export event, at its end.
    assert events_from_csv(text) == events[:-1] and events[-1]["action"] == "audit.export"
    assert verify_segment(events, GENESIS) == len(events)
    account = hostile.objects["account"]
    assert any(event["after"] and event["after"].get("name") == account.name for event in events)
    with context.tenant_context(hostile.tenant):
        from cs_platform.audit.models import AuditEvent

        # Every event but the JSON export's own audit.export, recorded after its range was fixed.
        assert len(events) == AuditEvent.objects.count() - 1
