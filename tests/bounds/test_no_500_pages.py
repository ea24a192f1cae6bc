"""No page answers 500 to hostile input (issue #15 item 8), whatever is typed into its forms or its URL.

Every page comes from the URL resolver (tests/urlwalk.py), filled with objects of the caller's own
tenant, so a new page is covered without editing this test. Each page is opened as a tenant admin and as
a CSM; what it lets a user send back is read from its HTML (tests/bounds/pagescan.py): the query
parameters of its links and GET forms, and the fields of its POST forms. Then, per (method, path):

* a fixed pass sends, field by field, the values that broke pages before (NUL, 10**30, year 1 with a
  +14:00 offset, 9999-12-31, ...) with every other field as the page filled it in;
* Hypothesis sends generated hostile values (control characters, huge and negative numbers, floats,
  impossible and far dates, out-of-range times and offsets, very long and odd unicode strings, empty and
  repeated parameters) in one or two fields at a time.

Every answer must be below 500. A write the page accepted must have stored no date outside the bounds,
and is followed by reading the page it redirects to and the page the form was on, so a stored value that
breaks later reads (the bulk incident dated year 1 that made the account page answer 500 for everyone)
fails here too. Each request runs in a savepoint that
is rolled back, so the world is the same for every example and a failing statement cannot abort the
test's transaction. Hypothesis is derandomized: the same requests on every run.

The REST API is left to tests/api/test_schemathesis.py (every operation of the OpenAPI schema) and
tests/bounds/test_api_bounds.py."""

from __future__ import annotations

import datetime
import traceback
from urllib.parse import urlencode, urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import override_settings
from django.urls import Resolver404, resolve, reverse
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import Account
from accounts.services import account_assign_csm
from cs_platform.tenancy import context
from cs_platform.tenancy.middleware import LINK_PARAM
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.selectors import out_of_bounds_dates
from scorecards.tokens import unsubscribe_token
from tests import factories
from tests.bounds.pagescan import Field, Target, scan
from tests.urlwalk import OBJECT_KWARGS, all_patterns, kwargs_of

ROLES = (Role.ADMIN, Role.CSM)
# Posting the logout form ends the session the rest of the run needs; it has no field to fuzz.
NOT_POSTED = {"logout"}
EXAMPLES_PER_FORM = 20
EXAMPLES_PER_LINKED_PAGE = 12

# The values that answered 500 before issue #15, by the kind of field they went into.
KNOWN_BAD = {
    "text": ["\x00", "x" * 20_000],
    "number": ["1" + "0" * 30, "-99999999999999999999", "NaN"],
    "choice": ["\x00", "99999999999999999999"],
    "multi": ["\x00", "99999999999999999999"],
    "checkbox": ["\x00"],
    "date": ["0001-01-01", "9999-12-31"],
    "datetime": ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00"],
    "week": ["0001-W01", "9999-W52"],
    "file": [],
}
_TEXTS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "%00",
    "\x01\x08\x0b\x1f\x7f",
    "\r\n\t",
    "\u202e\u200b\ufeff",
    "😀" * 50,
    "ǅ\u0301\u0308",
    "<script>alert(1)</script>",
    "'; --",
    "{{ 7*7 }}",
    "../../etc/passwd",
    "x" * 300,
    "x" * 10_001,
]
_NUMBERS = [
    "-1",
    "0",
    "1.5",
    "1e400",
    "-0",
    "NaN",
    "inf",
    "١٢",
    "0x10",
    "2147483648",
    "9223372036854775808",
    "-9223372036854775809",
    "1" + "0" * 30,
    "9" * 5000,  # past Python's 4,300-digit int() limit
]
_DATES = [
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "2026-13-01",
    "0000-00-00",
    "10000-01-01",
    "1899-12-31",
    "2201-01-01",
]
_MOMENTS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-01-01T25:61",
    "2026-01-01T10:00+99:00",
    "2026-01-01T10:00:00Z",
]
_WEEKS = ["0001-W01", "9999-W52", "2026-W99"]
_GENERIC = _TEXTS + _NUMBERS + _DATES + _MOMENTS + _WEEKS
_ZONES = [
    datetime.UTC,
    datetime.timezone(datetime.timedelta(hours=14)),
    datetime.timezone(datetime.timedelta(hours=-14)),
]
_TYPED = {
    "number": st.one_of(st.integers(-(2**80), 2**80).map(str), st.floats().map(repr), st.sampled_from(_NUMBERS)),
    "date": st.one_of(st.dates().map(datetime.date.isoformat), st.sampled_from(_DATES)),
    "datetime": st.one_of(
        st.datetimes(timezones=st.sampled_from(_ZONES)).map(datetime.datetime.isoformat),
        st.datetimes().map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M")),
        st.sampled_from(_MOMENTS),
    ),
    "week": st.one_of(
        st.tuples(st.integers(0, 10_000), st.integers(-1, 60)).map(lambda yw: f"{yw[0]:04d}-W{yw[1]:02d}"),
        st.sampled_from(_WEEKS),
    ),
}
_UPLOAD_NAMES = ["evidence.pdf", "\x00.pdf", "a" * 300 + ".pdf", "../../x.pdf", "😀.pdf", ".pdf", "x"]
_UPLOAD_BODIES = [b"%PDF-1.4\n%hostile\n", b"", b"\x00" * 64, b"PK\x03\x04" + b"\x00" * 40, "é".encode() * 100]


def _one_value(kind: str):
    generic = st.one_of(st.sampled_from(_GENERIC), st.text(max_size=40))
    return st.one_of(_TYPED[kind], generic) if kind in _TYPED else generic


def _hostile(field: Field):
    if field.kind == "file":
        return st.builds(
            lambda name, body: SimpleUploadedFile(name, body, "application/pdf"),
            st.sampled_from(_UPLOAD_NAMES),
            st.sampled_from(_UPLOAD_BODIES),
        )
    one = _one_value(field.kind)
    # A parameter given twice (or a choice list with a bad member) is a list.
    return st.one_of(one, st.lists(st.one_of(one, st.sampled_from(field.options or [""])), min_size=2, max_size=3))


@st.composite
def _request_data(draw, target: Target) -> dict:
    names = sorted(target.fields)
    hostile = draw(st.sets(st.sampled_from(names), min_size=1, max_size=min(2, len(names)))) if names else set()
    data = {}
    for name in names:
        field = target.fields[name]
        if name in hostile:
            data[name] = draw(_hostile(field))
        elif field.kind == "file":
            data[name] = SimpleUploadedFile("evidence.pdf", _UPLOAD_BODIES[0], "application/pdf")
        elif field.baseline:
            data[name] = list(field.baseline)
    return data


def _known_bad_data(target: Target):
    """Field by field, each value that once answered 500 for its kind, the other fields as filled in."""
    for name, field in sorted(target.fields.items()):
        for value in KNOWN_BAD[field.kind]:
            data = {other: list(f.baseline) for other, f in target.fields.items() if other != name and f.baseline}
            yield {**data, name: value}


class _Undo(Exception):
    """Raised inside the savepoint to roll back whatever the request stored."""


class Driver:
    def __init__(self, client, world):
        self.client, self.world = client, world
        self.failures: list[str] = []
        self.sent = 0

    def login(self, role: str) -> None:
        self.client.force_login(self.world.user(role))
        self.role = role
        self.session = self.client.cookies[django_settings.SESSION_COOKIE_NAME].value

    def _send(self, method: str, path: str, data: dict, multipart: bool = False):
        # A request that changed the session (a tenant switch, a login form) must not change the next one's.
        self.client.cookies[django_settings.SESSION_COOKIE_NAME] = self.session
        self.sent += 1
        if method == "get":
            return self.client.get(path, data)
        if multipart:
            return self.client.post(path, data)
        body = urlencode(data, doseq=True)
        return self.client.post(path, body, content_type="application/x-www-form-urlencoded")

    def check(self, target: Target, data: dict) -> str | None:
        """None, or why this request (or the reads after an accepted write) failed."""
        trail = []
        try:
            with transaction.atomic():
                response = self._send(target.method, target.path, data, target.multipart)
                trail.append(f"{target.method.upper()} {target.path} -> {response.status_code}")
                if response.status_code >= 500:
                    raise AssertionError(f"answered {response.status_code}")
                if target.method == "post" and response.status_code < 400:
                    # Nothing accepted may lie outside the bounds, whether or not a page shows it yet (an
                    # old timestamp sits on a timeline's last page until someone scrolls there).
                    with context.tenant_context(self.world.tenant):
                        stored = out_of_bounds_dates()
                    if stored:
                        raise AssertionError(f"stored outside the bounds: {stored}")
                    location = urlsplit(response.get("Location", "")).path
                    for path in dict.fromkeys(p for p in (location, urlsplit(target.source).path) if p):
                        followed = self._send("get", path, {})
                        trail.append(f"GET {path} -> {followed.status_code}")
                        if followed.status_code >= 500:
                            raise AssertionError(f"reading {path} after the write answered {followed.status_code}")
                raise _Undo
        except _Undo:
            return None
        except Exception as exc:
            summary = "".join(traceback.format_exception(exc, limit=-3)).strip()
            return f"as {self.role}: {' / '.join(trail) or target.path} with {_shown(data)}:\n{summary}"

    def drive(self, target: Target, examples: int) -> None:
        for data in _known_bad_data(target) if target.fields else [{}]:
            problem = self.check(target, data)
            if problem:
                self.failures.append(problem)
                return
        if set(target.fields) <= {LINK_PARAM}:
            return  # the middleware reads ?tenant= the same way on every page: the fixed pass covers it

        @hypothesis_settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests on every run: a failure reproduces
            phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing request is reported as sent
            suppress_health_check=list(HealthCheck),
        )
        @given(data=_request_data(target))
        def run(data):
            problem = self.check(target, data)
            if problem:
                raise AssertionError(problem)

        try:
            run()
        except AssertionError as exc:
            self.failures.append(str(exc).split("\nFalsifying example")[0])


def _shown(data: dict) -> str:
    def short(value):
        if isinstance(value, list):
            return [short(v) for v in value]
        if isinstance(value, SimpleUploadedFile):
            return f"<file {value.name[:40]!r}>"
        return value if len(value) <= 60 else f"{value[:40]!r}... ({len(value)} characters)"

    return repr({k: short(v) for k, v in data.items()})


def _pages(world) -> list[str]:
    """Every page of the resolver (not the REST API: schemathesis drives it), with the caller's own
    objects in its URL; plus the unsubscribe page, whose URL holds a signed token instead of an id."""
    made: dict[str, int] = {}
    pages = []
    for name, pattern in all_patterns():
        kwargs = {key: made.setdefault(key, OBJECT_KWARGS[key](world)) for key in kwargs_of(pattern)}
        url = reverse(name, kwargs=kwargs)
        if not url.startswith("/api/"):
            pages.append(url)
    pages.append(reverse("weekly_email_unsubscribe", args=[unsubscribe_token(world.tenant, world.user(Role.ADMIN))]))
    return pages


def _url_name(path: str) -> str | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if match.route.startswith(("api/", "admin/")):
        return None
    return match.url_name


def _give_the_csm_every_account(world) -> None:
    # So the CSM's pages show the forms of every object the URLs name, not their 404.
    with context.tenant_context(world.tenant):
        accounts = list(Account.objects.all())
    for account in accounts:
        account_assign_csm(
            tenant=world.tenant, account=account, user=world.user(Role.CSM), actor=world.user(Role.ADMIN)
        )


def _discover(driver: Driver, pages: list[str]) -> dict[str, tuple[str, Target]]:
    """{(method, url name): (role that found it, target)} from every page as each role sees it."""
    found: dict[tuple[str, str], tuple[str, Target]] = {}
    for role in ROLES:
        driver.login(role)
        targets: dict[tuple[str, str], Target] = {}
        for page in pages:
            targets.setdefault(("get", page), Target("get", page, page))
            response = driver.client.get(page)
            if response.status_code == 200 and "html" in response.get("Content-Type", ""):
                scan(page, response.content.decode(), targets, internal=_url_name)
        for (method, path), target in targets.items():
            name = _url_name(path)
            if name is None or (method == "post" and name in NOT_POSTED):
                continue
            # The tenant link parameter is read by the middleware on every GET (the weekly email's links).
            if method == "get":
                target.merge(LINK_PARAM, Field("text", []))
            # Pages with parameters of their own are read as each role (filters run on each role's book).
            key = (method, name, role) if method == "get" and len(target.fields) > 1 else (method, name)
            if key not in found:
                found[key] = (role, target)
            else:
                for field_name, field in target.fields.items():
                    found[key][1].merge(field_name, field)
    return found


@pytest.mark.django_db
def test_no_page_answers_500_to_hostile_input(client, tenant_a):
    world = tenant_a
    # A tenant 14 hours ahead of UTC: local dates and times sit at the edge of every conversion.
    world.tenant.time_zone = "Pacific/Kiritimati"
    world.tenant.save(update_fields=["time_zone"])
    with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True):  # no DNS lookups for generated URLs
        pages = _pages(world)
        # Enough rows for the pagers of the account list and of an account's timeline.
        factories.AccountFactory.create_batch(50, tenant=world.tenant)
        factories.TouchpointFactory.create_batch(60, tenant=world.tenant, account_id=_first_account(world))
        _give_the_csm_every_account(world)
        driver = Driver(client, world)
        targets = _discover(driver, pages)
        forms = [t for (method, *_), (_, t) in targets.items() if method == "post"]
        assert len(forms) >= 15, f"only {len(forms)} forms found: is the HTML scan broken?"
        assert sum(len(t.fields) for t in forms) >= 40
        for _, (role, target) in sorted(targets.items()):
            driver.login(role)
            driver.drive(target, EXAMPLES_PER_FORM if target.method == "post" else EXAMPLES_PER_LINKED_PAGE)
    assert not driver.failures, f"{len(driver.failures)} of {len(targets)} targets failed:\n\n" + "\n\n".join(
        driver.failures
    )
    assert driver.sent > 500


def _first_account(world) -> int:
    with context.tenant_context(world.tenant):
        return Account.objects.order_by("pk").values_list("pk", flat=True)[0]
