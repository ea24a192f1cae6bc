"""The newcomer's path on SQLite, with no other service: the steps of `make demo` (migrate, seed,
recompute), then log in, see the home page and an account's health breakdown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LOGIN_AND_HOME = """
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
ok = client.login(username="csm1@northwind.example", password="demo-pass-2026")
response = client.get("/")
body = response.content.decode()
print("LOGIN", ok, "STATUS", response.status_code, "ROWS", body.count('href="/accounts/'))
print("TENANT", "Northwind Regulatory Services" in body)
import re
first = re.search(r'href="(/accounts/\\d+/)"', body).group(1)
detail = client.get(first).content.decode()
print("SCORED", '<table class="data components">' in detail and ("no data" in detail or "targets met" in detail))
"""


def test_demo_path_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REDIS", "CELERY", "SECRET_KEY"))}
    env.update(DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}")

    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo")
    again = manage("seed_demo")
    assert "already seeded" in again
    scored = manage("recompute", "--all")  # as `make demo` does: the demo opens with scores
    assert "northwind" in scored and "harborview" in scored and "accounts scored" in scored
    out = manage("shell", "-c", LOGIN_AND_HOME)
    assert "LOGIN True STATUS 200" in out
    rows = int(out.split("ROWS")[1].split()[0])
    assert rows > 0  # the CSM sees their book
    assert "TENANT True" in out
    assert "SCORED True" in out  # the account page explains the score
    manage("verify_audit", "--tenant", "northwind")
