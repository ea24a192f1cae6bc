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
login = client.post("/login/", {"username": "csm1@northwind.example", "password": "demo-pass-2026"})
ok = login.status_code == 302 and "_auth_user_id" in client.session
response = client.get("/")
body = response.content.decode()
print("LOGIN", ok, "STATUS", response.status_code, "ROWS", body.count('href="/accounts/'))
print("TENANT", "Northwind Regulatory Services" in body)
import re
first = re.search(r'href="(/accounts/\\d+/)"', body).group(1)
detail = client.get(first).content.decode()
print("SCORED", '<table class="data components">' in detail and ("no data" in detail or "targets met" in detail))

# The platform superuser reaches the Django admin with the password and the published TOTP secret.
import base64
from django_otp.oath import TOTP
from provisioning.demo import seeder as demo
admin = Client()
credentials = {"username": "platform@example.com", "password": "demo-pass-2026"}
admin.post("/login/?next=/admin/", {**credentials, "next": "/admin/"})
code = f"{TOTP(base64.b32decode(demo.DEMO_TOTP_SECRET)).token():06d}"
verified = admin.post("/login/verify/", {"code": code})
print("ADMIN", verified.status_code, verified.get("Location"), admin.get("/admin/").status_code)
# ...or with a published recovery code instead of the app.
spare = Client()
spare.post("/login/", credentials)
spare.post("/login/verify/", {"code": "demo-code-02"})
print("RECOVERY", spare.get("/admin/").status_code)
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
    seeded = manage("seed_demo")
    assert "add the key CSPL ATFO RMDE MOTO TPSE CRET KEY2 3456 to an authenticator app" in seeded
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
    assert "ADMIN 302 /admin/ 200" in out  # README's demo superuser: password, then the TOTP code
    assert "RECOVERY 200" in out
    manage("verify_audit", "--tenant", "northwind")
