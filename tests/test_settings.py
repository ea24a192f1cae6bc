"""Settings are read from the environment and fail loudly, with a clear message, on bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A real-looking Ed25519 private key (base64 of 32 bytes) for production-mode start-ups; test-only.
AUDIT_KEY = "dGVzdC1vbmx5LWF1ZGl0LWtleS0zMi1ieXRlcy14eHg="


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # Start from the caller's environment minus every setting these tests are about.
    ours = (
        "DATABASE",
        "SECRET_KEY",
        "DEBUG",
        "EMAIL",
        "SECURE_",
        "SESSION_",
        "CSRF_",
        "ALLOWED_HOSTS",
        "STATIC_",
        "DJANGO_ALLOW_ASYNC",
        "AUDIT_",
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DEBUG", "maybe", "Setting DEBUG='maybe' is not valid"),
        ("EMAIL_PORT", "twenty-five", "Setting EMAIL_PORT='twenty-five' is not valid"),
        ("DATABASE_URL", "not-a-url", "Setting DATABASE_URL='not-a-url' is not valid"),
        ("TIME_ZONE", "Mars/Olympus", "Setting TIME_ZONE='Mars/Olympus' is not valid"),
        ("LOG_LEVEL", "LOUD", "Setting LOG_LEVEL='LOUD' is not valid"),
        ("NIGHTLY_WORKERS", "many", "Setting NIGHTLY_WORKERS='many' is not valid"),
        ("NIGHTLY_WORKERS", "0", "Setting NIGHTLY_WORKERS=0 is not valid: must be 1-64"),
        ("NIGHTLY_CHUNK_SIZE", "0", "Setting NIGHTLY_CHUNK_SIZE=0 is not valid: must be positive"),
        ("EVIDENCE_MAX_BYTES", "0", "Setting EVIDENCE_MAX_BYTES=0 is not valid: must be positive"),
        ("API_NUM_PROXIES", "-1", "Setting API_NUM_PROXIES=-1 is not valid: must be 0 or more"),
        ("SCORECARD_RETRY_MAX_SECONDS", "30", "SCORECARD_RETRY_MAX_SECONDS=30.0 is below SCORECARD_RETRY_BASE"),
        ("LOGIN_FAILURE_LIMIT", "0", "Setting LOGIN_FAILURE_LIMIT=0 is not valid: must be 1-100"),
        ("LOGIN_LOCKOUT_STEPS", "1h,15m", "Setting LOGIN_LOCKOUT_STEPS='1h,15m' is not valid: expected one or more"),
        ("LOGIN_LOCKOUT_STEPS", "soon", "Setting LOGIN_LOCKOUT_STEPS='soon' is not valid"),
        ("LOGIN_LOCKOUT_MEMORY_SECONDS", "-5", "Setting LOGIN_LOCKOUT_MEMORY_SECONDS='-5' is not valid"),
        ("PASSWORD_MIN_LENGTH", "8", "Setting PASSWORD_MIN_LENGTH=8 is not valid: must be 12-128"),
        ("PASSWORD_RESET_TIMEOUT_SECONDS", "an hour", "Setting PASSWORD_RESET_TIMEOUT_SECONDS='an hour' is not"),
        ("PASSWORD_RESET_RATE", "lots", "Setting PASSWORD_RESET_RATE='lots' is not valid"),
        ("SESSION_IDLE_TIMEOUT_SECONDS", "30", "Settings SESSION_IDLE_TIMEOUT_SECONDS=30 (120 or more)"),
        ("SESSION_MAX_AGE_SECONDS", "10m", "Settings SESSION_IDLE_TIMEOUT_SECONDS=1800 (120 or more) and SESSION_MAX"),
        ("REAUTH_SECONDS", "ten", "Setting REAUTH_SECONDS='ten' is not valid"),
    ],
)
def test_a_malformed_setting_stops_with_a_one_line_message(variable, value, expected):
    env = {"DEBUG": "true", variable: value} if variable != "DEBUG" else {variable: value, "SECRET_KEY": "x" * 60}
    result = _manage("check", **env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Configuration error: {expected}")
    assert "Traceback" not in result.stderr


def test_production_settings_require_an_audit_signing_key_and_say_how_to_make_one():
    result = _manage("check", DEBUG="false", SECRET_KEY="x" * 60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Configuration error: AUDIT_SIGNING_KEY is not set.")
    assert "manage.py audit_signing_key" in result.stderr and "os.urandom(32)" in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # The private key is never repeated in the message, unlike other settings' values.
        ({"AUDIT_SIGNING_KEY": "not-base64!"}, "Setting AUDIT_SIGNING_KEY is not valid: expected the standard base64"),
        (
            {"AUDIT_SIGNING_KEY": "c2hvcnQ="},
            "Setting AUDIT_SIGNING_KEY is not valid: expected the standard base64 of a "
            "32-byte Ed25519 private key, got 5 bytes",
        ),
        ({"AUDIT_SIGNING_KEY": "DEV"}, "Setting AUDIT_SIGNING_KEY is the published development key"),
        (
            {"AUDIT_VERIFY_PUBLIC_KEYS": "c2hvcnQ="},
            "Setting AUDIT_VERIFY_PUBLIC_KEYS='c2hvcnQ=' is not valid: expected "
            "the standard base64 of a 32-byte Ed25519 public key, got 5 bytes",
        ),
        (
            {"AUDIT_CHECKPOINT_INTERVAL_MINUTES": "61"},
            "Setting AUDIT_CHECKPOINT_INTERVAL_MINUTES=61 is not valid: use 1-60",
        ),
        ({"AUDIT_CHECKPOINT_INTERVAL_MINUTES": "0"}, "Setting AUDIT_CHECKPOINT_INTERVAL_MINUTES=0 is not valid"),
    ],
)
def test_a_malformed_audit_key_setting_stops_start_up(env, expected):
    if env.get("AUDIT_SIGNING_KEY") == "DEV":
        env = {"AUDIT_SIGNING_KEY": _development_key()}
    result = _manage("check", **{"DEBUG": "false", "SECRET_KEY": "x" * 60, "AUDIT_SIGNING_KEY": AUDIT_KEY, **env})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"Configuration error: {expected}"), result.stderr
    if "not-base64" in str(env):
        assert "not-base64" not in result.stderr


def test_the_demo_signs_with_the_development_key_and_the_checks_say_so():
    result = _manage("check", DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "(audit.W001) Audit checkpoints are signed with the public development key" in result.stderr + result.stdout


def _development_key() -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(b"cs-platform development audit signing key: NOT SECRET").digest()).decode()


def test_production_settings_require_a_secret_key():
    result = _manage("check", DEBUG="false")
    assert result.returncode == 2
    assert "SECRET_KEY is not set" in result.stderr and "Traceback" not in result.stderr


def test_production_settings_pass_check_deploy(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="k3$Jq9!vRz2#pL8@wX5^mN1&bT7*cY4(hF6)dG0_sA-eU+iO=oP[lK]jH{gF}dS;aZ",
        AUDIT_SIGNING_KEY=AUDIT_KEY,
        ALLOWED_HOSTS="cs.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_demo_defaults_use_sqlite_and_eager_tasks():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER)",
        DEBUG="true",
        REDIS_URL="",
        CELERY_BROKER_URL="",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["django.db.backends.sqlite3", "True"]
