"""Every page, as every role, in a real browser under the site's real Content-Security-Policy.

The pages come from the URL resolver (tests/urlwalk.py, as in the isolation matrix), filled with the
role's own tenant's objects, so a new page is visited without editing this file. A page fails on any
policy violation: a `securitypolicyviolation` event (listened for by an init script in every
document), a console message about the policy (that also catches documents where the init script
cannot run, such as sandboxed frames), or an uncaught page error; the failure names the role, the page
and the directive. A malformed Permissions-Policy header shows up in the console too and fails alike.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from cs_platform.tenancy.models import Role
from tests.browser.conftest import log_in
from tests.committed import purge_tenant
from tests.urlwalk import OBJECT_KWARGS, PUBLIC, TOKEN_URLS, all_patterns, kwargs_of

pytestmark = pytest.mark.browser

PASSWORD = "csp-walk-pass-2026"

# Collects the document's violations; read (and emptied) by the test after each page. Capture phase on
# the window: the event is fired at the offending element (or the document) and bubbles up to here.
INIT_SCRIPT = """
(() => {
  const seen = [];
  Object.defineProperty(window, "__cspViolations", { value: seen });
  window.addEventListener("securitypolicyviolation", (event) => {
    seen.push({
      directive: event.effectiveDirective,
      blocked: event.blockedURI,
      source: event.sourceFile + ":" + event.lineNumber + ":" + event.columnNumber,
    });
  }, true);
})();
"""

# Violations that are expected, each with its reason. Keys: (URL name, directive, blocked URI).
# The test also fails when one of them stops happening, so a fixed one cannot linger here.
KNOWN_VIOLATIONS = {
    # Redoc (drf-spectacular-sidecar's standalone bundle) always renders an <img> of its logo from
    # https://cdn.redoc.ly in the sidebar's "API docs by Redocly" link, with no option to turn it off.
    # The policy refuses it, so nothing is fetched from the CDN (Redoc hides the broken image), but the
    # browser still reports the refusal.
    ("api_redoc", "img-src", "https://cdn.redoc.ly/redoc/logo-mini.svg"): "Redoc's hard-wired CDN logo",
}


# URLs whose keyword argument is a signed token rather than an object id (tests/urlwalk.py's TOKEN_URLS):
# how to make one for the world's user. A new token URL must be added here.
def _unsubscribe_url(world) -> str:
    from scorecards.tokens import unsubscribe_token

    token = unsubscribe_token(world.tenant, world.user(Role.EXECUTIVE))
    return reverse("weekly_email_unsubscribe", kwargs={"token": token})


def _password_reset_url(world) -> str:
    from django.contrib.auth import get_user_model

    from cs_platform.identity.services import password_reset_link

    # A real link of the viewer's, as stored now (the token covers the password hash): the page opened is
    # the new-password form, not "link no longer valid".
    viewer = get_user_model().objects.get(pk=world.user(Role.VIEWER).pk)
    return urlsplit(password_reset_link(viewer)).path


def _unsubscribe_url_before_17(world) -> str:
    return _unsubscribe_url(world).replace("/weekly-email/", "/scorecards/", 1)  # links in emails already sent


TOKEN_PAGES = {
    "weekly_email_unsubscribe": _unsubscribe_url,
    "weekly_email_unsubscribe_before_17": _unsubscribe_url_before_17,
    "password_reset_confirm": _password_reset_url,
}


@dataclasses.dataclass
class _World:
    """What tests/urlwalk.py's object factories expect: a tenant and a user per role."""

    tenant: object
    users: dict

    def user(self, role: str):
        return self.users[role]


def _renders_html(pattern) -> bool:
    """A page, not an API answer: a plain Django view, or a DRF view with an HTML renderer (the docs)."""
    callback = pattern.callback
    view_class = getattr(callback, "cls", None)
    if view_class is None:
        return True
    return any(renderer.media_type == "text/html" for renderer in view_class.renderer_classes)


@pytest.fixture(scope="module")
def csp_world(django_db_setup, django_db_blocker):
    """A small demo tenant (a user per role), one object of every URL keyword argument made by the
    isolation matrix's factories, scored by two nightly runs so the charts draw; and a viewer of both
    this tenant and a second one, who gets the tenant switcher."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import MD5PasswordHasher
    from django.db import connections
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Account
    from accounts.services import account_assign_csm
    from cs_platform.tenancy import context
    from cs_platform.tenancy.models import Tenant
    from nightly.pipeline import run_tenant
    from provisioning.demo import seeder as demo
    from tests import factories

    spec = demo.DemoTenant(
        name="Browser CSP Tenant",
        slug="browser-csp",
        time_zone="UTC",
        users=(
            demo.DemoUser("admin@csp.test", "Dana", "Whitaker", Role.ADMIN),
            demo.DemoUser("exec@csp.test", "Marcus", "Bellamy", Role.EXECUTIVE),
            demo.DemoUser("manager@csp.test", "Elena", "Petrova", Role.MANAGER),
            demo.DemoUser("csm@csp.test", "Jordan", "Reyes", Role.CSM, "manager@csp.test"),
            demo.DemoUser("compliance@csp.test", "Grace", "Nakamura", Role.COMPLIANCE),
            demo.DemoUser("viewer@csp.test", "Samir", "Patel", Role.VIEWER),
        ),
        regions=(("US", 80), ("EU", 20)),
    )
    today = timezone.localdate()
    with django_db_blocker.unblock():
        platform_admin, _ = demo.user_get_or_create("platform@csp.test", "Alex", "Morgan", superuser=True)
        # Platform superusers always pass MFA: its authenticator app, for the admin walk's login.
        platform_device = TOTPDevice.objects.create(user=platform_admin, name="CSP walk", confirmed=True)
        assert demo.seed_tenant(spec, today=today, seed=11, accounts=8, platform_admin=platform_admin).created
        tenant = Tenant.objects.get(slug=spec.slug)
        users = {u.username: u for u in get_user_model().objects.filter(username__endswith="@csp.test")}
        world = _World(tenant=tenant, users={u.role: users[u.email] for u in spec.users})
        with context.tenant_context(tenant):
            seeded = set(Account.objects.values_list("pk", flat=True))
        kwargs = {name: make(world) for name, make in OBJECT_KWARGS.items()}
        # The factories' accounts belong to no one: the CSM (and so their manager) gets them, so their
        # pages show the objects instead of a 404.
        with context.tenant_context(tenant):
            for account in Account.objects.exclude(pk__in=seeded):
                account_assign_csm(tenant=tenant, account=account, user=world.user(Role.CSM))
        for back in (7, 0):  # two nightly runs: every account has a health trend, the portfolio a chart
            run_tenant(tenant=tenant, day=today - datetime.timedelta(days=back))
        # Someone in two tenants, for the tenant switcher (not one of the walk's users: they must
        # land on this tenant).
        other = factories.TenantFactory(slug="browser-csp-other", name="Browser CSP Other Tenant")
        switcher = factories.UserFactory(username="switcher@csp.test", email="switcher@csp.test")
        users[switcher.username] = switcher
        for where in (tenant, other):
            factories.MembershipFactory(tenant=where, user=switcher, role=Role.VIEWER)
        # The suite checks passwords with the fast MD5 hasher only (tests/conftest.py).
        hasher = MD5PasswordHasher()
        get_user_model().objects.filter(pk__in=[u.pk for u in users.values()]).update(
            password=hasher.encode(PASSWORD, hasher.salt())
        )
        # After the passwords are set: a reset token dies when the password changes.
        token_pages = {name: make(world) for name, make in TOKEN_PAGES.items()}
    yield {
        "world": world,
        "kwargs": kwargs,
        "token_pages": token_pages,
        "other": other,
        "platform_device": platform_device,
    }
    with django_db_blocker.unblock():
        connections.close_all()
        purge_tenant(other.pk)
        purge_tenant(tenant.pk, [u.pk for u in users.values()])


def _pages(kwargs: dict, token_pages: dict) -> list[tuple[str, str]]:
    pages = [
        (name, reverse(name, kwargs={k: kwargs[k] for k in kwargs_of(pattern)}))
        for name, pattern in all_patterns()
        if _renders_html(pattern)
    ]
    return pages + sorted(token_pages.items())


class Watcher:
    """One browser page's policy violations, console reports and errors, each under the label of the
    URL being visited; and the requests that went anywhere but the test server."""

    def __init__(self, page, live_url: str) -> None:
        self.page = page
        self.live_url = live_url
        self.label = ""
        self.problems: list[tuple[str, str, str, str]] = []  # (label, directive, blocked, detail)
        self.pending: set = set()
        self.left_the_machine: list[str] = []
        self.charts = 0  # pages on which plotly drew a chart
        self.next_label = ""
        self.fetched = False  # the page's scripts fetched something (it builds itself from data)
        page.on("console", self._console)
        page.on("framenavigated", self._navigated)
        page.on("pageerror", lambda error: self._add("pageerror", "", str(error)))
        page.on("request", self._request)
        page.on("requestfinished", lambda request: self.pending.discard(request))
        page.on("requestfailed", self._request_failed)

    def _add(self, directive: str, blocked: str, detail: str) -> None:
        self.problems.append((self.label, directive, blocked, detail))

    def _navigated(self, frame) -> None:
        # The new label applies from the moment the next document commits: a report the previous
        # document sends on its way out still names the previous page.
        if frame == self.page.main_frame and self.next_label:
            self.label, self.next_label = self.next_label, ""

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            directive = re.search(r"directive:? [\"']([a-z-]+)", text)
            blocked = re.search(r"'((?:https?|blob|data):[^']*)'", text)
            self._add(
                directive.group(1) if directive else "?",
                blocked.group(1) if blocked else "inline",
                f"console: {text[:200]}",
            )
        elif "Permissions-Policy" in text or "Permissions Policy" in text:
            self._add("permissions-policy", "", f"console: {text[:200]}")

    def _request(self, request) -> None:
        self.pending.add(request)
        self.fetched = self.fetched or request.resource_type in ("fetch", "xhr")
        if urlsplit(request.url).scheme in ("http", "https") and not request.url.startswith(self.live_url):
            self.left_the_machine.append(request.url)

    def _request_failed(self, request) -> None:
        self.pending.discard(request)
        # Refused by the policy before any connection ("csp"; older builds net::ERR_BLOCKED_BY_CSP).
        if "csp" in (request.failure or "").lower() and request.url in self.left_the_machine:
            self.left_the_machine.remove(request.url)

    # Hands over (and empties) the violation events, and says how many plotly charts are drawn. The
    # browser reports an inline event handler only when its event fires, so the document is also
    # searched for on...= attributes and javascript: links, which the policy would refuse the moment
    # someone used them. Synchronous on purpose: in a document sandboxed without allow-scripts (the
    # policy of an email's HTML, say) no timer or animation frame ever runs, so a promise waiting for
    # one would never settle.
    COLLECT = """() => {
        const violations = (window.__cspViolations || []).splice(0);
        const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "xlink:href", "data"]);
        for (const element of document.querySelectorAll("*")) {
            for (const attribute of element.attributes) {
                const name = attribute.name.toLowerCase();
                const where = element.tagName.toLowerCase() + "[" + name + "]";
                if (name.startsWith("on")) {
                    violations.push({directive: "script-src-attr", blocked: "inline", source: where});
                } else if (URL_ATTRIBUTES.has(name) && /^\\s*javascript:/i.test(attribute.value)) {
                    violations.push({directive: "script-src", blocked: "javascript:", source: where});
                }
            }
        }
        return {violations, charts: document.querySelectorAll(".js-plotly-plot .main-svg").length};
    }"""

    def settle(self) -> int:
        """Collect the page's violations, after letting queued violation events and the page's first
        timers run and waiting for what it fetches once loaded (the docs pages fetch the schema, then
        render it); returns the number of plotly charts drawn."""
        self.page.wait_for_timeout(50)
        if self.pending or self.fetched:
            self.page.wait_for_load_state("networkidle")
            # A page its scripts build from what they fetched (the docs) may still be rendering: wait
            # until the document stops growing (at most about 3 s).
            size = -1
            for _ in range(30):
                now = self.page.evaluate("() => document.getElementsByTagName('*').length")
                if now == size:
                    break
                size = now
                self.page.wait_for_timeout(100)
        seen = self.page.evaluate(self.COLLECT)
        for violation in seen["violations"]:
            self._add(violation["directive"], violation["blocked"], f"event at {violation['source']}")
        return seen["charts"]

    def visit(self, label: str, url: str) -> int | None:
        self.next_label, self.fetched = label, False
        response = self.page.goto(self.live_url + url, wait_until="load")
        if self.settle():
            self.charts += 1
        return response.status if response else None


def _documents(context, live_url: str, pages: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pages that answer GET with an HTML document, asked once as the first role (an admin): not
    the POST-only URLs (405) nor downloads or plain text. (Navigating to an empty 405 makes Chromium
    show its own error page, which then interrupts the next navigation.)"""
    documents = []
    for name, url in pages:
        answer = context.request.get(live_url + url, max_redirects=0, fail_on_status_code=False)
        if answer.status != 405 and answer.headers.get("content-type", "").startswith("text/html"):
            documents.append((name, url))
        answer.dispose()
    return documents


def _url_name(label: str) -> str:
    return label.split(" ", 2)[1]


def _check(watchers: list[Watcher], known: dict) -> None:
    found: dict[tuple[str, str, str], list[str]] = {}
    for watcher in watchers:
        for label, directive, blocked, detail in watcher.problems:
            found.setdefault((label, directive, blocked), []).append(detail)
    unexpected = [
        f"{label}: {directive or 'error'} refused {blocked or '-'} ({'; '.join(dict.fromkeys(details))})"
        for (label, directive, blocked), details in found.items()
        if (_url_name(label), directive, blocked) not in known
    ]
    assert not unexpected, "Content-Security-Policy violations:\n" + "\n".join(unexpected)
    seen_known = {(_url_name(label), directive, blocked) for label, directive, blocked in found}
    gone = [f"{key}: {why}" for key, why in known.items() if key not in seen_known]
    assert not gone, "expected violations no longer happen; remove them from KNOWN_VIOLATIONS:\n" + "\n".join(gone)
    left = [url for watcher in watchers for url in watcher.left_the_machine]
    assert not left, f"requests left the machine: {left}"


def _browse_as(browser, live_url: str, username: str, totp_device=None) -> tuple:
    context = browser.new_context()
    context.add_init_script(INIT_SCRIPT)
    page = context.new_page()
    watcher = Watcher(page, live_url)
    watcher.label = f"{username} login-and-landing-page /login/"
    log_in(page, live_url, username, PASSWORD, totp_device=totp_device)
    watcher.settle()
    return context, page, watcher


def test_every_token_url_has_a_page_factory():
    assert set(TOKEN_PAGES) == set(TOKEN_URLS), "add a TOKEN_PAGES entry for each URL in tests/urlwalk.py TOKEN_URLS"


def test_every_page_for_every_role_runs_without_a_policy_violation(browser, live_url, csp_world):
    world = csp_world["world"]
    pages = _pages(csp_world["kwargs"], csp_world["token_pages"])
    watchers, visited, statuses = [], set(), {}
    for role in Role.values:
        context, page, watcher = _browse_as(browser, live_url, world.user(role).username)
        watchers.append(watcher)
        try:
            if not visited:
                pages = _documents(context, live_url, pages)
            for name, url in pages:
                if name in PUBLIC | TOKEN_URLS and name in visited:
                    continue  # the same page for everyone: once is enough
                visited.add(name)
                statuses[(role, name)] = watcher.visit(f"{role} {name} {url}", url)
        finally:
            context.close()
    assert len(pages) >= 20, pages  # 30 when written
    _check(watchers, KNOWN_VIOLATIONS)
    # The walk really saw the pages and their charts, not a wall of 404s and login redirects: the admin
    # reaches every page, the other roles the ones their role shows (30 pages when written: 11 for a
    # viewer, 17 for a manager).
    shown = {
        role: [name for (who, name), status in statuses.items() if who == role and status == 200]
        for role in Role.values
    }
    assert len(shown[Role.ADMIN]) == len(pages), statuses
    assert all(len(names) >= 10 for names in shown.values()), shown
    assert sum(watcher.charts for watcher in watchers) >= 4 * len(Role.values)


def test_the_pages_scripts_work_under_the_policy(browser, live_url, csp_world):
    """What static/js/behaviours.js does for the markup that used to carry inline handlers, and
    plotly's PNG download (an <img> from a blob: URL), each with the policy on and no violation."""
    here, there = csp_world["world"].tenant.name, csp_world["other"].name
    context, page, watcher = _browse_as(browser, live_url, "switcher@csp.test")
    try:
        # The tenant switcher submits itself on change (it was onchange="this.form.submit()").
        watcher.visit("switcher portfolio /portfolio/", "/portfolio/")
        for tenant_name in (there, here) if _chosen_tenant(page) == here else (here,):
            with page.expect_navigation():
                page.select_option("#tenant-select", label=tenant_name)
            watcher.settle()
            assert _chosen_tenant(page) == tenant_name
        watcher.visit("switcher portfolio /portfolio/", "/portfolio/")

        # A secret's field selects its whole value on focus (it was onfocus="this.select()"). The field
        # is shown once, after creating a token; the same markup is added to a real page here.
        page.evaluate(
            """() => document.querySelector("main").insertAdjacentHTML(
                "beforeend", '<input id="probe" readonly value="csp_secret_value" data-select-on-focus>')"""
        )
        page.focus("#probe")
        selected = page.evaluate("() => [document.activeElement.selectionStart, document.activeElement.selectionEnd]")
        assert selected == [0, len("csp_secret_value")]

        # plotly's modebar: "Download plot as a PNG" draws the chart's SVG into an <img> from a blob: URL.
        page.hover("#band-trend-chart")
        with page.expect_download() as download:
            page.click("#band-trend-chart .modebar-btn[data-title='Download plot as a PNG']")
        assert download.value.suggested_filename.endswith(".png")
        watcher.settle()
    except Exception:
        # A refused handler or script shows up as a step that never happens (a navigation that times
        # out): name the violation rather than the timeout.
        watcher.settle()
        _check([watcher], {})
        raise
    finally:
        context.close()
    _check([watcher], {})


def _chosen_tenant(page) -> str:
    return page.locator("#tenant-select option:checked").inner_text().strip()


def test_the_django_admin_runs_without_a_policy_violation(browser, live_url, csp_world):
    """The platform superuser's admin (outside tests/urlwalk.py's walk): the index, and each registered
    model's list and add form."""
    from django.contrib import admin

    from tests.urlwalk import SEPARATELY_TESTED_NAMESPACES

    assert "admin" in SEPARATELY_TESTED_NAMESPACES
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        opts = model._meta
        urls += [reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}") for view in ("changelist", "add")]
    context, page, watcher = _browse_as(browser, live_url, "platform@csp.test", csp_world["platform_device"])
    try:
        # The admin works in one tenant at a time: choose the walk's tenant first.
        watcher.visit("platform admin index", reverse("admin:index"))
        page.select_option("#admin-tenant", str(csp_world["world"].tenant.pk))
        page.click("#working-tenant input[type=submit]")
        page.wait_for_load_state()
        statuses = {url: watcher.visit(f"platform admin {url}", url) for url in urls}
        assert page.goto(live_url + reverse("admin:index")) and "Site administration" in page.content()
    finally:
        context.close()
    _check([watcher], {})
    assert list(statuses.values()).count(200) >= len(admin.site._registry), statuses
