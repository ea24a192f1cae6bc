"""Settings are read from the environment and fail loudly, with a clear message, on bad values."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# The module Django loaded in this process: its parsers, without a second start-up.
from cs_platform import settings as settings_module

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
        "REDIS_",
        "CELERY_",
        "SITE_URL",
        "DEFAULT_FROM_EMAIL",
        "ENV_FILE",
        "CS_ALLOW_INSECURE_DEFAULTS",
        "MEDIA_ROOT",
        "LOG_",
        "TEST_DATABASE_NAME",
        "METRICS_TOKEN",
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


# --- Production rules and the formats of URLs, addresses and booleans (issue #17 item 9) ---------------------

# A 50-character key, the shortest production accepts; test-only.
PRODUCTION_KEY = "test-only-production-key-exactly-fifty-characters!"
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": PRODUCTION_KEY, "AUDIT_SIGNING_KEY": AUDIT_KEY}


def _env_example_secret_key() -> str:
    [value] = re.findall(r"^SECRET_KEY=(.*)$", (ROOT / ".env.example").read_text(), re.MULTILINE)
    return value


REDIS_EXPECTED = "expected redis://[[user]:password@]host[:port][/db] (or rediss:// for TLS), db a number"
SITE_EXPECTED = "expected the address users open the dashboard at: http(s)://host[:port][/path]"
FROM_EXPECTED = "expected an email address, e.g. cs-platform@example.com or CS Platform <cs-platform@example.com>"
BOOL_EXPECTED = "expected true/false, 1/0, yes/no or on/off (any case)"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "SECRET_KEY",
            "x" * 49,
            "Setting SECRET_KEY is not valid: it has 49 characters; production (DEBUG off) needs 50",
        ),
        ("SECRET_KEY", "ENV_EXAMPLE", "Setting SECRET_KEY is not valid: it is the placeholder from .env.example"),
        ("SITE_URL", "cs.example.com", f"Setting SITE_URL='cs.example.com' is not valid: {SITE_EXPECTED}"),
        ("SITE_URL", "ftp://cs.example.com", f"Setting SITE_URL='ftp://cs.example.com' is not valid: {SITE_EXPECTED}"),
        ("SITE_URL", "https://cs.example.com/?t=a", "Setting SITE_URL='https://cs.example.com/?t=a' is not valid"),
        ("SITE_URL", "https://cs.example.com:99999", "Setting SITE_URL='https://cs.example.com:99999' is not valid"),
        ("SITE_URL", "https://cs_example com", "Setting SITE_URL='https://cs_example com' is not valid"),
        ("REDIS_URL", "localhost:6379", f"Setting REDIS_URL='localhost:6379' is not valid: {REDIS_EXPECTED}"),
        (
            "REDIS_URL",
            "redis://redis:6379/cache",
            f"Setting REDIS_URL='redis://redis:6379/cache' is not valid: {REDIS_EXPECTED}",
        ),
        # The password inside a URL is masked in the message.
        (
            "REDIS_URL",
            "redis://:hunter2@redis/x",
            f"Setting REDIS_URL='redis://:***@redis/x' is not valid: {REDIS_EXPECTED}",
        ),
        (
            "CELERY_BROKER_URL",
            "amqp://rabbit//",
            f"Setting CELERY_BROKER_URL='amqp://rabbit//' is not valid: {REDIS_EXPECTED}",
        ),
        ("CELERY_BROKER_URL", "redis://redis:port/1", "Setting CELERY_BROKER_URL='redis://redis:port/1' is not valid"),
        ("CELERY_RESULT_BACKEND", "redis:/redis/2", "Setting CELERY_RESULT_BACKEND='redis:/redis/2' is not valid"),
        (
            "DEFAULT_FROM_EMAIL",
            "cs-platform",
            f"Setting DEFAULT_FROM_EMAIL='cs-platform' is not valid: {FROM_EXPECTED}",
        ),
        (
            "DEFAULT_FROM_EMAIL",
            "CS <cs-platform>",
            f"Setting DEFAULT_FROM_EMAIL='CS <cs-platform>' is not valid: {FROM_EXPECTED}",
        ),
        # A header injection: the sender's address goes into every email's From header.
        ("DEFAULT_FROM_EMAIL", "a@example.com\nBcc: b@example.com", "Setting DEFAULT_FROM_EMAIL='a@example.com\\nBcc"),
        ("STATIC_MANIFEST", "maybe", f"Setting STATIC_MANIFEST='maybe' is not valid: {BOOL_EXPECTED}"),
        # Empty is not "off": SECURE_SSL_REDIRECT= would otherwise quietly turn a production default off.
        ("SECURE_SSL_REDIRECT", "", f"Setting SECURE_SSL_REDIRECT='' is not valid: {BOOL_EXPECTED}"),
        (
            "CS_ALLOW_INSECURE_DEFAULTS",
            "sure",
            f"Setting CS_ALLOW_INSECURE_DEFAULTS='sure' is not valid: {BOOL_EXPECTED}",
        ),
        ("EMAIL_HOST", "mail server", "Setting EMAIL_HOST='mail server' is not valid: expected a host name or an IP"),
        ("EMAIL_BACKEND", "smtp", "Setting EMAIL_BACKEND='smtp' is not valid: expected a dotted Python path"),
        (
            "DATABASE_APP_ROLE",
            "r" * 64,
            f"Setting DATABASE_APP_ROLE='{'r' * 64}' is not valid: expected a PostgreSQL name",
        ),
        ("TEST_DATABASE_NAME", "my db", "Setting TEST_DATABASE_NAME='my db' is not valid: expected a PostgreSQL name"),
        ("MEDIA_ROOT", " ", "Setting MEDIA_ROOT=' ' is not valid: expected a path"),
        ("ENV_FILE", "/nonexistent/cs.env", "Setting ENV_FILE='/nonexistent/cs.env' is not valid: no such file"),
        ("LOG_LEVEL", "loud", "Setting LOG_LEVEL='loud' is not valid: use DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        # Secrets are not repeated at all.
        ("EMAIL_URL", "smtp://cs:hunter2@mail:port", "Setting EMAIL_URL is not valid: "),
        ("METRICS_TOKEN", "hunter2-short", "Setting METRICS_TOKEN is not valid: use 24 or more random characters"),
    ],
)
def test_a_malformed_production_setting_stops_start_up_naming_it_and_what_is_expected(variable, value, expected):
    if value == "ENV_EXAMPLE":
        value = _env_example_secret_key()
    result = _manage("check", **{**PRODUCTION, variable: value})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"Configuration error: {expected}"), result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_the_demo_accepts_a_short_secret_key():
    result = _manage("check", DEBUG="true", SECRET_KEY="short-demo-key")
    assert result.returncode == 0, result.stderr


SHOW = (
    "import json; from django.conf import settings as s; print(json.dumps([s.SITE_URL, s.REDIS_URL, "
    "s.CELERY_BROKER_URL, s.CELERY_RESULT_BACKEND, s.DEFAULT_FROM_EMAIL, s.SERVER_EMAIL, "
    "s.STORAGES['staticfiles']['BACKEND'].rsplit('.', 1)[1], s.SECRET_KEY, s.EMAIL_HOST, s.SECURE_SSL_REDIRECT]))"
)


def _shown(**env: str) -> list:
    result = _manage("shell", "-c", SHOW, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])  # Django's shell first lists what it imported


def test_good_production_values_load():
    assert _shown(
        **PRODUCTION,
        SITE_URL="https://cs.example.com/",
        REDIS_URL="redis://:p%40ss@redis:6379/0",
        CELERY_BROKER_URL="rediss://broker.example.com:6380/1?ssl_cert_reqs=required",
        CELERY_RESULT_BACKEND="redis://[::1]:6379",
        DEFAULT_FROM_EMAIL='"CS Platform" <cs@example.com>',
        STATIC_MANIFEST="TRUE",
        EMAIL_HOST="10.0.0.25",
        SECURE_SSL_REDIRECT="Off",
    ) == [
        "https://cs.example.com",
        "redis://:p%40ss@redis:6379/0",
        "rediss://broker.example.com:6380/1?ssl_cert_reqs=required",
        "redis://[::1]:6379",
        '"CS Platform" <cs@example.com>',
        '"CS Platform" <cs@example.com>',
        "CompressedManifestStaticFilesStorage",
        PRODUCTION_KEY,
        "10.0.0.25",
        False,
    ]


def test_the_defaults_load_in_production():
    assert _shown(**PRODUCTION) == [
        "http://127.0.0.1:8000",
        "",
        "",
        None,
        "cs-platform@localhost",
        "cs-platform@localhost",
        "CompressedManifestStaticFilesStorage",
        PRODUCTION_KEY,
        "localhost",
        True,
    ]


@pytest.mark.parametrize(("spelling", "manifest"), [("true", True), ("OFF", False)])
def test_static_manifest_true_means_on(spelling, manifest):
    # STATIC_MANIFEST=true once meant off: only "1" turned the manifest on.
    backend = _shown(**PRODUCTION, STATIC_MANIFEST=spelling)[6]
    assert backend == ("CompressedManifestStaticFilesStorage" if manifest else "StaticFilesStorage")


@pytest.mark.parametrize(
    ("spelling", "value"),
    [(s, True) for s in ("1", "true", "yes", "on", "True", " ON ")]
    + [(s, False) for s in ("0", "false", "no", "off", "FALSE", "No")],
)
def test_every_documented_boolean_spelling_is_read(spelling, value):
    assert settings_module._bool(spelling) is value


@pytest.mark.parametrize("spelling", ["", "y", "n", "enabled", "2", "truee", "none"])
def test_any_other_boolean_spelling_is_refused(spelling):
    with pytest.raises(ValueError, match="expected true/false, 1/0, yes/no or on/off"):
        settings_module._bool(spelling)
