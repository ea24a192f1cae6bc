"""Browser security headers on every response: Content-Security-Policy, Permissions-Policy,
Referrer-Policy and Cache-Control: no-store.

The URLs come from the resolver (tests/urlwalk.py), so a new page or endpoint is covered without
editing this file: as its own tenant's admin, anonymously, and through the API with a token; then the
error pages (400, 403, CSRF failure, 404, 405, 500), the schema and the docs. tests/browser/test_csp.py
checks that the pages really run under this policy in a browser.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path, reverse

from cs_platform.tenancy.models import Role
from tests.urlwalk import OBJECT_KWARGS, all_patterns, kwargs_of

ROOT = Path(__file__).resolve().parents[2]

# The directives whose sources are fixed for every response; script-src and style-src are 'self' plus,
# on the pages that use it, the request's nonce (checked below).
FIXED = {
    "default-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
NONCE = re.compile(r"^'nonce-[A-Za-z0-9+/]{22}=='$")  # django-csp: 16 random bytes, base64


def policy_of(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.status_code} {response.get('Content-Type')}"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice in {header}"
        directives[name] = sources
    return directives


def _own_scriptless_policy(policy: dict[str, list[str]]) -> bool:
    """A view may replace the site's policy (django-csp leaves a header the view set alone) only with one
    under which nothing can run: an email's HTML shown as its own document, with inline styles and data:
    images but sandboxed without scripts, loading nothing else and sending no form."""
    if policy.get("default-src") != ["'none'"] or "allow-scripts" in policy.get("sandbox", ["allow-scripts"]):
        return False
    scripts = {name: policy[name] for name in policy if name.startswith(("script-src", "worker-src"))}
    assert all(sources == ["'none'"] for sources in scripts.values()), policy
    assert "allow-same-origin" not in policy["sandbox"], policy
    assert policy.get("base-uri") == ["'none'"] and policy.get("form-action") == ["'none'"], policy
    assert set(policy.get("frame-ancestors", ["*"])) <= {"'self'", "'none'"}, policy
    loose = {"'unsafe-eval'", "'unsafe-hashes'", "*", "http:", "https:", "blob:"}
    assert not loose & {source for sources in policy.values() for source in sources}, policy
    assert all("'unsafe-inline'" not in sources for name, sources in policy.items() if name != "style-src"), policy
    return True


def assert_secure_headers(response, where: str) -> dict[str, list[str]]:
    """The headers every answer must carry; returns the parsed policy for further checks."""
    policy = policy_of(response)
    if _own_scriptless_policy(policy):
        _assert_other_headers(response, where)
        return policy
    for name, sources in FIXED.items():
        assert policy.get(name) == sources, f"{where}: {name} is {policy.get(name)}"
    for name in ("script-src", "style-src"):
        assert policy[name][0] == "'self'", f"{where}: {name} {policy[name]}"
        for source in policy[name][1:]:
            widened = where.startswith("/api/redoc/") and name == "style-src" and source.startswith("'sha256-")
            assert NONCE.match(source) or widened, f"{where}: {name} allows {source}"
    everything = " ".join(" ".join(sources) for sources in policy.values())
    for loose in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "http:", "https:"):
        assert loose not in everything.split(), f"{where}: {loose} in {policy}"
    extra = set(policy) - set(FIXED) - {"script-src", "style-src"}
    assert extra <= ({"worker-src"} if where.startswith("/api/redoc/") else set()), f"{where}: {extra}"
    _assert_other_headers(response, where)
    return policy


def _assert_other_headers(response, where: str) -> None:
    assert response["Permissions-Policy"] == settings.PERMISSIONS_POLICY, where
    assert response["Referrer-Policy"] in ("same-origin", "no-referrer"), where
    assert response["X-Content-Type-Options"] == "nosniff", where
    assert "no-store" in response["Cache-Control"].replace(" ", "").split(","), f"{where}: {response['Cache-Control']}"


def _request(client, url: str, **extra):
    response = client.get(url, **extra)
    if response.status_code == 405:
        response = client.post(url, **extra)
    return response


# --- every URL of the resolver ------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_url_as_its_own_tenants_admin(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    seen = 0
    for name, pattern in all_patterns():
        url = reverse(name, kwargs={k: OBJECT_KWARGS[k](tenant_a) for k in kwargs_of(pattern)})
        response = _request(client, url)
        assert response.status_code < 500, f"{url}: {response.status_code}"
        assert_secure_headers(response, url)
        seen += 1
    assert seen >= 80, seen  # 90 URLs when written


@pytest.mark.django_db
def test_every_url_anonymously(client, tenant_b):
    for name, pattern in all_patterns():
        url = reverse(name, kwargs={k: OBJECT_KWARGS[k](tenant_b) for k in kwargs_of(pattern)})
        assert_secure_headers(_request(client, url), url)  # redirects to login and 401s included


@pytest.mark.django_db
def test_every_api_url_with_a_token(client, tenant_a):
    from api.models import ALL_SCOPES
    from tests.api.helpers import bearer

    headers = bearer(tenant_a, *ALL_SCOPES)
    checked = 0
    for name, pattern in all_patterns():
        url = reverse(name, kwargs={k: OBJECT_KWARGS[k](tenant_a) for k in kwargs_of(pattern)})
        if url.startswith("/api/v1/"):
            response = _request(client, url, **headers)
            assert response.status_code < 500, f"{url}: {response.status_code}"
            assert_secure_headers(response, url)
            checked += 1
    assert checked >= 40, checked


@pytest.mark.django_db
def test_the_scorecard_unsubscribe_page(client, tenant_a):
    """The one page whose URL carries a signed token (tests/urlwalk.py's TOKEN_URLS); it keeps its own
    stricter Referrer-Policy."""
    from scorecards.tokens import unsubscribe_token

    url = reverse(
        "weekly_email_unsubscribe", kwargs={"token": unsubscribe_token(tenant_a.tenant, tenant_a.user(Role.EXECUTIVE))}
    )
    response = client.get(url)
    assert response.status_code == 200
    assert_secure_headers(response, url)
    assert response["Referrer-Policy"] == "no-referrer"


# --- error pages ---------------------------------------------------------------------------------------


def _boom(request):
    raise RuntimeError("a bug")


def _own_policy(header: str):
    def view(request):
        response = HttpResponse("<p style='color:#333'>An email</p>")
        response["Content-Security-Policy"] = header
        return response

    return view


EMAIL_DOCUMENT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
urlpatterns = [
    path("boom/", _boom),
    path("own-policy/scriptless/", _own_policy(EMAIL_DOCUMENT_POLICY)),
    path("own-policy/scripts/", _own_policy(EMAIL_DOCUMENT_POLICY.replace("sandbox ", "sandbox allow-scripts "))),
    path("own-policy/weak/", _own_policy("default-src 'self'; script-src 'self' 'unsafe-inline'")),
]


@pytest.mark.django_db
def test_error_pages(client, tenant_a):
    client.force_login(tenant_a.user(Role.VIEWER))
    answers = {
        "404 page": client.get("/no-such-page/"),
        "404 API": client.get("/api/v1/no-such-resource/"),
        "403 page": client.get(reverse("webhooks")),  # admins only
        "405": client.get(reverse("logout")),
        "400 bad Host": client.get("/", HTTP_HOST="attacker.example"),
    }
    expected = {"404 page": 404, "404 API": 404, "403 page": 403, "405": 405, "400 bad Host": 400}
    for what, response in answers.items():
        assert response.status_code == expected[what], what
        assert_secure_headers(response, what)
    assert answers["404 API"]["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_a_server_error_page(tenant_a):
    client = Client(raise_request_exception=False)
    with override_settings(ROOT_URLCONF=__name__):
        response = client.get("/boom/")
    assert response.status_code == 500
    assert_secure_headers(response, "500")


@pytest.mark.django_db
def test_a_view_may_set_its_own_policy_only_if_nothing_can_run_under_it():
    """django-csp leaves a policy the view set alone; the walk above accepts one only when it runs no
    script at all (the email preview's HTML document), and still wants the other headers."""
    client = Client()
    with override_settings(ROOT_URLCONF=__name__):
        scriptless = client.get("/own-policy/scriptless/")
        assert scriptless["Content-Security-Policy"] == EMAIL_DOCUMENT_POLICY
        assert_secure_headers(scriptless, "own scriptless policy")
        for weaker in ("/own-policy/scripts/", "/own-policy/weak/"):
            with pytest.raises(AssertionError):
                assert_secure_headers(client.get(weaker), weaker)


@pytest.mark.django_db
def test_the_csrf_failure_page_is_ours_without_inline_style(tenant_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_a.user(Role.CSM))
    response = client.post(reverse("logout"))
    assert response.status_code == 403
    assert_secure_headers(response, "CSRF failure")
    html = response.content.decode()
    assert "The form could not be sent" in html and "<style" not in html and " style=" not in html


# --- the nonce -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_nonce_is_fresh_per_response_and_only_where_a_page_uses_it(client, tenant_a):
    client.force_login(tenant_a.user(Role.COMPLIANCE))
    nonces = []
    for _ in range(2):
        response = client.get(reverse("compliance_dashboard"))  # draws a plotly chart
        policy = assert_secure_headers(response, "compliance dashboard")
        nonce = policy["style-src"][1].removeprefix("'nonce-").removesuffix("'")
        assert policy["script-src"] == ["'self'", f"'nonce-{nonce}'"]
        # The only elements carrying it: plotly's pre-made style elements (templates/includes/plotly.html).
        carriers = re.findall(r"<(\w+)[^>]*\snonce=\"([^\"]*)\"", response.content.decode())
        assert carriers and {tag for tag, _ in carriers} == {"style"} and {n for _, n in carriers} == {nonce}
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
    plain = assert_secure_headers(client.get(reverse("account_list")), "account list")
    assert plain["script-src"] == ["'self'"] and plain["style-src"] == ["'self'"]


# --- the API docs ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_docs_pages_run_no_inline_script(client):
    swagger = client.get(reverse("api_docs"))
    html = swagger.content.decode()
    assert_secure_headers(swagger, "/api/docs/")
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts), scripts
    assert "<style" not in html
    # Swagger UI's start-up script comes from the same view (drf-spectacular's split view); it holds the
    # caller's CSRF token, so it is no-store like every answer.
    script_url = re.search(r'<script src="([^"]*script=[^"]*)"', html).group(1).replace("&amp;", "&")
    script = client.get(script_url)
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()
    assert_secure_headers(script, script_url)

    redoc = client.get(reverse("api_redoc"))
    html = redoc.content.decode()
    policy = assert_secure_headers(redoc, "/api/redoc/")
    assert policy["worker-src"] == ["blob:"]
    from api.docs import REDOC_STYLE_HASHES

    assert policy["style-src"][2:] == REDOC_STYLE_HASHES
    nonce = policy["script-src"][1].removeprefix("'nonce-").removesuffix("'")
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts), scripts
    assert f'nonce="{nonce}"' in html  # static/js/redoc_init.js hands it to Redoc
    assert "<style" not in html and "fonts.googleapis.com" not in html


# --- static files ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_static_files_stay_cacheable(client):
    for url in ("/static/css/app.css", "/static/js/behaviours.js"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" not in response.get("Cache-Control", ""), url
        assert "max-age" in response["Cache-Control"], url


# --- the templates themselves ----------------------------------------------------------------------------

# Web page templates only: the email templates (scorecards/email.html, ...) are read in mail clients,
# which need inline styles and never see our headers.
PAGE_TEMPLATES = sorted(p for p in (ROOT / "templates").rglob("*.html") if "email" not in p.name)
INLINE = [
    ("an inline <script>", re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)),
    ("an inline event handler", re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I | re.S)),
    ("a javascript: URL", re.compile(r"javascript:", re.I)),
    (
        "a <style> element without the nonce",
        re.compile(r"<style(?![^>]*\bnonce=\"\{\{ request\.csp_nonce \}\}\")", re.I),
    ),
    ("a style= attribute", re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I | re.S)),
]


COMMENTS = re.compile(r"\{% comment %\}.*?\{% endcomment %\}|\{#.*?#\}", re.S)


def test_page_templates_hold_no_inline_script_handler_or_style():
    assert len(PAGE_TEMPLATES) >= 40, PAGE_TEMPLATES
    found = [
        f"{template.relative_to(ROOT)}: {what}"
        for template in PAGE_TEMPLATES
        for what, pattern in INLINE
        if pattern.search(COMMENTS.sub("", template.read_text()))
    ]
    assert not found, "\n".join(found)


# --- settings --------------------------------------------------------------------------------------------


def test_a_report_uri_is_added_when_set_and_refused_when_malformed():
    from tests.test_settings import _manage

    show = "from django.conf import settings as s; print(s.CONTENT_SECURITY_POLICY['DIRECTIVES'].get('report-uri'))"
    result = _manage("shell", "-c", show, DEBUG="true", CSP_REPORT_URI="https://csp.example.com/report")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "['https://csp.example.com/report']"
    result = _manage("shell", "-c", show, DEBUG="true")
    assert result.stdout.split()[-1] == "None"
    result = _manage("check", DEBUG="true", CSP_REPORT_URI="https://x.example/r; script-src *")
    assert result.returncode == 2
    assert result.stderr.startswith("Configuration error: Setting CSP_REPORT_URI=")
