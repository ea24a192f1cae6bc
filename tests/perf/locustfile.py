"""Locust load test of the web app (issue #16, item 8): logged-in users browsing pages, integrations
reading the API with tokens, and (optionally) one integration posting 10,000-row bulk ingests.

Driven by tests/perf/bench_load.py, which builds the tenant, starts gunicorn and writes the plan this
file reads (LOAD_PLAN: a JSON file with session cookies, API tokens and the URLs to request). By hand:

    LOAD_PLAN=/tmp/plan.json .venv/bin/locust -f tests/perf/locustfile.py --headless -u 30 -r 30 \
        --run-time 60s --host http://127.0.0.1:8000 PageUser ApiUser [BulkUser]

The model (tests/perf/README.md, "What 30 concurrent clients means"): each page or API user is a closed
loop, one request at a time, with a think time between LOAD_WAIT_MIN and LOAD_WAIT_MAX seconds (1-3 by
default; 0 and 0 make it a closed loop with no think time, the saturation test). BulkUser is one client
posting a 10,000-row ingest, waiting LOAD_BULK_WAIT seconds (1), and posting again.

Locust runs gevent and monkey-patches the process: never import Django here; the driver runs locust in
a subprocess.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid

from locust import FastHttpUser, between, constant, events, task

_PLAN: dict = {}
_counter = itertools.count()


def plan() -> dict:
    """The plan the driver wrote (read once, on first use, so `locust --list` works without one)."""
    if not _PLAN:
        path = os.environ.get("LOAD_PLAN")
        if not path:
            raise RuntimeError("LOAD_PLAN is not set: run tests/perf/bench_load.py, or point it at a plan file")
        with open(path, encoding="utf-8") as handle:
            _PLAN.update(json.load(handle))
    return _PLAN


def _wait_bounds() -> tuple[float, float]:
    low = float(os.environ.get("LOAD_WAIT_MIN", "1"))
    high = float(os.environ.get("LOAD_WAIT_MAX", "3"))
    if not 0 <= low <= high:
        raise ValueError(f"LOAD_WAIT_MIN={low} and LOAD_WAIT_MAX={high}: expected 0 <= min <= max")
    return low, high


@events.init.add_listener
def _check_plan(environment, **_kwargs) -> None:
    # Fail at start, not in every user, when the plan is missing (except for `locust --list`).
    if os.environ.get("LOAD_PLAN"):
        plan()


def _check(response, *, want: int = 200, contains: bytes | None = None) -> None:
    """A wrong status, or a login page instead of the page (an expired session), is a failure."""
    if response.status_code != want:
        response.failure(f"status {response.status_code}")
    elif contains is not None and contains not in (response.content or b""):
        response.failure(f"{contains!r} missing")
    else:
        response.success()


class PageUser(FastHttpUser):
    """A person in a browser: a CSM (home with their book, their accounts' 360 pages, their overdue
    decisions), an executive (home, portfolio, segment scorecard, account list and 360 pages,
    decisions) or a compliance officer (compliance overview, account pages). Sessions are real Django
    sessions the driver created for the generated users (one per locust user)."""

    weight = 3
    wait_time = between(*_wait_bounds())

    def on_start(self) -> None:
        data = plan()
        number = next(_counter)
        self.session = data["sessions"][number % len(data["sessions"])]
        self.persona = self.session["persona"]
        # The session cookie goes in a header of our own; with the cookie jar off nothing the server sets
        # (a refreshed session, a CSRF cookie) is added beside it.
        self.client.client.cookiejar = None
        self.cookie = {"Cookie": f"{data['session_cookie']}={self.session['cookie']}"}
        self.accounts = self.session["accounts"]

    def page(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, headers=self.cookie, catch_response=True) as response:
            _check(response, contains=b"</html>")

    def account(self) -> None:
        self.page(f"/accounts/{random.choice(self.accounts)}/", f"page: account 360 ({self.persona})")

    @task
    def browse(self) -> None:
        data = plan()
        roll = random.random()
        if self.persona == "csm":
            if roll < 0.35:
                self.page("/", "page: home (csm)")
            elif roll < 0.85:
                self.account()
            else:
                self.page("/decisions/?status=overdue", "page: decisions (csm)")
        elif self.persona == "executive":
            if roll < 0.25:
                self.page("/", "page: home (executive)")
            elif roll < 0.40:
                self.page("/portfolio/", "page: portfolio")
            elif roll < 0.55:
                self.page(f"/portfolio/segments/{random.choice(data['segments'])}/", "page: segment scorecard")
            elif roll < 0.70:
                self.page("/accounts/", "page: account list")
            elif roll < 0.80:
                self.page("/decisions/", "page: decisions (executive)")
            else:
                self.account()
        else:  # compliance
            if roll < 0.6:
                self.page("/compliance/", "page: compliance")
            else:
                self.account()


class ApiUser(FastHttpUser):
    """An integration reading with a Bearer token: account and health-score pages of 100, one
    account, the latest measurements."""

    weight = 2
    wait_time = between(*_wait_bounds())

    def on_start(self) -> None:
        data = plan()
        self.auth = {"Authorization": f"Bearer {data['tokens'][next(_counter) % len(data['tokens'])]}"}
        self.accounts = data["api_accounts"]

    def get(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, headers=self.auth, catch_response=True) as response:
            _check(response)

    @task(3)
    def accounts_page(self) -> None:
        self.get(f"/api/v1/accounts/?page_size=100&page={random.randint(1, 5)}", "api: accounts, 100")

    @task(3)
    def health_latest(self) -> None:
        self.get("/api/v1/health-scores/latest/?page_size=100", "api: health-scores latest, 100")

    @task(2)
    def account_detail(self) -> None:
        self.get(f"/api/v1/accounts/{random.choice(self.accounts)}/", "api: account detail")

    @task(2)
    def measurements(self) -> None:
        self.get(f"/api/v1/measurements/?account={random.choice(self.accounts)}", "api: measurements of an account")


class BulkUser(FastHttpUser):
    """One integration posting 10,000-row KPI measurement ingests back to back (LOAD_BULK_WAIT s apart),
    each with new values, so every row is a real update."""

    fixed_count = 1
    wait_time = constant(float(os.environ.get("LOAD_BULK_WAIT", "1")))

    def on_start(self) -> None:
        data = plan()
        self.auth = {"Authorization": f"Bearer {data['bulk_token']}", "Content-Type": "application/json"}
        self.pairs = data["bulk_pairs"]  # [account id, KPI id]
        self.days = data["bulk_days"]
        self.round = 0

    @task
    def ingest(self) -> None:
        self.round += 1
        day = self.days[self.round % len(self.days)]
        rows = [
            {"account": account, "kpi": kpi, "measured_on": day, "value": (account * 7 + self.round) % 1000 + 0.5}
            for account, kpi in self.pairs
        ]
        headers = {**self.auth, "Idempotency-Key": f"load-{uuid.uuid4()}"}
        with self.client.post(
            "/api/v1/measurements/bulk",
            data=json.dumps({"rows": rows}),
            headers=headers,
            name=f"api: bulk ingest, {len(rows):,} rows",
            catch_response=True,
        ) as response:
            _check(response, want=201)
