"""All settings come from the environment (twelve-factor); defaults give the zero-setup SQLite demo.

Every value is parsed here once, by _setting() and a parser for its kind. A malformed value stops start-up
with a message naming the variable and what is expected, because a platform holding regulated clients'
data must never run on a half-understood config.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email

BASE_DIR = Path(__file__).resolve().parent.parent


def _setting(name: str, parse, default, *, show: Callable[[str], str] | None = repr):
    """Read one variable; re-raise any parse error as a one-line message naming the variable.

    `show` renders the value in that message; None leaves it out (a secret, or a URL holding one)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except (ValueError, TypeError, ImproperlyConfigured, KeyError) as exc:
        shown = f"={show(raw)}" if show else ""
        raise ImproperlyConfigured(f"Setting {name}{shown} is not valid: {exc}") from None


def _url_shown(raw: str) -> str:
    """A URL for an error message, its password replaced: messages end up in logs and CI output."""
    try:
        parts = urlsplit(raw)
        if parts.password is None:
            return repr(raw)
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return repr(parts._replace(netloc=netloc).geturl())
    except ValueError:
        return "(not shown)"


_BOOL_SPELLINGS = "true/false, 1/0, yes/no or on/off (any case)"


def _bool(raw: str) -> bool:
    # Exactly these spellings: anything else, the empty string included, would silently mean one or the
    # other (STATIC_MANIFEST=true once meant off).
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected {_BOOL_SPELLINGS}; unset the variable for its default")


def _int(raw: str) -> int:
    return int(raw.strip())


def _list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _text(raw: str) -> str:
    """Free text (a user name, a password): taken as given."""
    return raw


def _name(raw: str) -> str:
    """A PostgreSQL role or database name. Longer than 63 bytes, PostgreSQL would silently cut it."""
    value = raw.strip()
    if not value or len(value.encode()) > 63 or re.search(r"[\s\x00]", value):
        raise ValueError("expected a PostgreSQL name: 1-63 bytes, no spaces")
    return value


def _path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("expected a path")
    return Path(raw.strip())


def _optional_path(raw: str) -> str:
    """A directory some library reads by itself; empty means none."""
    return raw.strip()


def _env_file(raw: str) -> Path | None:
    # Named on purpose, so a typo in it must not quietly start the app without its settings.
    if not raw.strip():
        return None
    path = Path(raw.strip())
    if not path.is_file():
        raise ValueError("no such file")
    return path


_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")


def _hostname(value: str) -> bool:
    """A DNS name (ASCII; IDNs in their xn-- form) or an IP address."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return len(value) <= 253 and _HOSTNAME.fullmatch(value) is not None


def _server_url(value: str, schemes: set[str]) -> SplitResult | None:
    """The URL split into its parts when its scheme is one of `schemes` and it names a valid host and
    port; None otherwise."""
    if re.search(r"[\s\x00-\x1f]", value):
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:
        return None
    if parts.scheme not in schemes or not parts.hostname or not _hostname(parts.hostname):
        return None
    return parts


def _host(raw: str) -> str:
    value = raw.strip()
    if not _hostname(value):
        raise ValueError("expected a host name or an IP address, e.g. mail.example.com")
    return value


def _site_url(raw: str) -> str:
    """The address users open the dashboard at: links in emails are SITE_URL + a path."""
    value = raw.strip().rstrip("/")
    parts = _server_url(value, {"http", "https"})
    if parts is None or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            "expected the address users open the dashboard at: http(s)://host[:port][/path], "
            "e.g. https://cs.example.com, with no user, query or fragment"
        )
    return value


def _redis_url(raw: str) -> str:
    """A Redis server URL (the cache, the broker, the result store); empty means none."""
    value = raw.strip()
    if not value:
        return ""
    parts = _server_url(value, {"redis", "rediss"})
    if parts is None or not re.fullmatch(r"/?|/\d+", parts.path):
        raise ValueError("expected redis://[[user]:password@]host[:port][/db] (or rediss:// for TLS), db a number")
    return value


def _from_email(raw: str) -> str:
    """The sender of every email: an address, or a display name and an address in <>."""
    value = raw.strip()
    match = re.fullmatch(r'(?:"?(?P<name>[^"<>\x00-\x1f]*?)"?\s*)?<(?P<address>[^<>]*)>|(?P<bare>[^<>\s]+)', value)
    try:
        if not match:
            raise ValidationError("unparsed")
        validate_email(match["address"] if match["bare"] is None else match["bare"])
    except ValidationError:
        raise ValueError(
            "expected an email address, e.g. cs-platform@example.com or CS Platform <cs-platform@example.com>"
        ) from None
    return value


def _dotted_path(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", value):
        raise ValueError("expected a dotted Python path, e.g. django.core.mail.backends.smtp.EmailBackend")
    return value


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return value


def _db(raw: str) -> dict:
    if "://" not in raw:
        raise ValueError("expected a URL such as postgres://user:pass@host:5432/name or sqlite:///path")
    config = environ.Env.db_url_config(raw)
    if not config.get("ENGINE"):
        raise ValueError("unknown database scheme")
    return config


def _rate(raw: str) -> str:
    """A throttle rate such as 1200/min: a positive count per second, minute, hour or day."""
    count, _, period = raw.strip().partition("/")
    periods = {"s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day"}
    if not count.isdigit() or int(count) < 1 or period not in periods:
        raise ValueError("expected a rate such as 1200/min (a positive count per s, min, hour or day)")
    return raw.strip()


def _timezone(raw: str) -> str:
    import zoneinfo

    zoneinfo.ZoneInfo(raw)  # raises for an unknown zone
    return raw


# Read before everything else: the file fills in variables the environment does not set. ENV_FILE itself
# can only come from the environment.
_default_env_file = BASE_DIR / ".env"
_env_path = _setting("ENV_FILE", _env_file, _default_env_file if _default_env_file.is_file() else None)
if _env_path is not None:
    environ.Env.read_env(str(_env_path))

DEBUG = _setting("DEBUG", _bool, False)
# Only for building the image (collectstatic): lets a production-mode start-up go without its secrets.
_ALLOW_INSECURE_DEFAULTS = _setting("CS_ALLOW_INSECURE_DEFAULTS", _bool, False)
# The value .env.example ships with: a deployment that copied the file and forgot to change it.
_ENV_EXAMPLE_KEY = "change-me-to-a-long-random-string"
_KEY_HOWTO = 'Generate one with: python3 -c "import secrets; print(secrets.token_urlsafe(50))"'


def _secret_key(raw: str) -> str:
    # The value is never repeated in a message (show=None). Short keys are allowed under DEBUG (the demo).
    if DEBUG or not raw:
        return raw
    if raw.strip() == _ENV_EXAMPLE_KEY:
        raise ValueError(f"it is the placeholder from .env.example; set 50 or more random characters. {_KEY_HOWTO}")
    if len(raw) < 50:
        raise ValueError(
            f"it has {len(raw)} characters; production (DEBUG off) needs 50 or more random ones. {_KEY_HOWTO}"
        )
    return raw


SECRET_KEY = _setting("SECRET_KEY", _secret_key, "", show=None)
if not SECRET_KEY:
    if not DEBUG and not _ALLOW_INSECURE_DEFAULTS:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (50+ random characters) or, for local development only, DEBUG=true."
        )
    # Development only: a fixed, obviously-insecure key so sessions survive restarts of the demo.
    SECRET_KEY = "insecure-development-key-do-not-use-in-production-" + "x" * 20

ALLOWED_HOSTS = _setting("ALLOWED_HOSTS", _list, ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = _setting("CSRF_TRUSTED_ORIGINS", _list, [])

INSTALLED_APPS = [
    "cs_platform.admin_apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "guardian",
    "cs_platform.tenancy",
    "cs_platform.audit",
    "segments",
    "accounts",
    "journeys",
    "metrics",
    "compliance",
    "dashboards",
    "api",
    "webhooks",
    "scorecards",
    "nightly",
    "provisioning",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise, so static files keep their long cache lifetime and go without these headers.
    "csp.middleware.CSPMiddleware",
    "cs_platform.security_headers.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "cs_platform.tenancy.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cs_platform.urls"
WSGI_APPLICATION = "cs_platform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cs_platform.tenancy.context_processors.tenancy",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
# DATABASE_URL is what the web app and workers use: on PostgreSQL a non-owner role without BYPASSRLS,
# so Row-Level Security applies to them. DATABASE_OWNER_URL is the role that owns the schema; only
# `migrate` and `create_app_role` connect with it. Both default to the demo's SQLite file.
_default_db = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": _setting("DATABASE_URL", _db, _db(_default_db), show=_url_shown)}
DATABASE_OWNER = _setting("DATABASE_OWNER_URL", _db, None, show=_url_shown)
DATABASE_APP_ROLE = _setting("DATABASE_APP_ROLE", _name, DATABASES["default"].get("USER") or "")

IS_POSTGRES = "postgresql" in DATABASES["default"]["ENGINE"]
if IS_POSTGRES:
    # Our backend applies the tenant to every transaction (set_config(..., true)) for RLS.
    DATABASES["default"]["ENGINE"] = "cs_platform.tenancy.db_backend"
    # Server-side cursors would run outside the per-transaction tenant setting in autocommit mode.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"]["CONN_MAX_AGE"] = _setting("DATABASE_CONN_MAX_AGE", _int, 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # No JIT: page and API queries on a large tenant cross jit_above_cost, and compiling them took
    # ~250 ms, more than the queries themselves (tests/perf/bench_dashboards.py).
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
    if DATABASE_OWNER is None:
        DATABASE_OWNER = dict(DATABASES["default"])
    DATABASE_OWNER["ENGINE"] = DATABASES["default"]["ENGINE"]
DATABASES["default"].setdefault("TEST", {})
_test_database_name = _setting("TEST_DATABASE_NAME", _name, None)
if _test_database_name:
    DATABASES["default"]["TEST"]["NAME"] = _test_database_name

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser" row: anonymous visitors never hold object permissions here.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Password validators, login throttling, MFA and session lifetimes: see the Identity block below.

# --- I18N -----------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = _setting("TIME_ZONE", _timezone, "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "cs_platform.staticfinders.VendorFinder",  # plotly.js from the pinned package, never a CDN
]
MEDIA_URL = "media/"
MEDIA_ROOT = _setting("MEDIA_ROOT", _path, BASE_DIR / "media")
# Parsed under DEBUG too, where it has no effect: a bad value is refused wherever it is set.
_STATIC_MANIFEST = _setting("STATIC_MANIFEST", _bool, True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG and _STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = True
# Largest compliance evidence file accepted, in bytes (the proxy's request limit must allow it too).
EVIDENCE_MAX_BYTES = _setting("EVIDENCE_MAX_BYTES", _int, 50 * 1024 * 1024)
if EVIDENCE_MAX_BYTES < 1:
    raise ImproperlyConfigured(f"Setting EVIDENCE_MAX_BYTES={EVIDENCE_MAX_BYTES} is not valid: must be positive")

# --- Cache, Celery --------------------------------------------------------------------------------
REDIS_URL = _setting("REDIS_URL", _redis_url, "", show=_url_shown)
CELERY_BROKER_URL = _setting("CELERY_BROKER_URL", _redis_url, REDIS_URL, show=_url_shown)
CELERY_RESULT_BACKEND = _setting("CELERY_RESULT_BACKEND", _redis_url, REDIS_URL, show=_url_shown) or None
# With no broker configured (the demo), tasks run in-process so the product works with no services.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = _setting("CELERY_TASK_TIME_LIMIT", _int, 1800)
CELERY_TASK_SOFT_TIME_LIMIT = _setting("CELERY_TASK_SOFT_TIME_LIMIT", _int, 1700)
CELERY_TIMEZONE = "UTC"
# A message a worker took but never acknowledged (the worker died) is redelivered after this many
# seconds; it must exceed the longest task's run time.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _setting("CELERY_VISIBILITY_TIMEOUT", _int, 7200)}
CELERY_RESULT_EXPIRES = 86400
# The nightly engine: beat asks every 15 minutes which tenants have reached 02:00 local time.
NIGHTLY_LOCAL_HOUR = _setting("NIGHTLY_LOCAL_HOUR", _int, 2)
if not 0 <= NIGHTLY_LOCAL_HOUR <= 23:
    raise ImproperlyConfigured(f"Setting NIGHTLY_LOCAL_HOUR={NIGHTLY_LOCAL_HOUR} is not valid: use an hour 0-23")
NIGHTLY_CHUNK_SIZE = _setting("NIGHTLY_CHUNK_SIZE", _int, 5000)
if NIGHTLY_CHUNK_SIZE < 1:
    raise ImproperlyConfigured(f"Setting NIGHTLY_CHUNK_SIZE={NIGHTLY_CHUNK_SIZE} is not valid: must be positive")
# Health chunks the synchronous `recompute` scores at once (threads, one connection each); Celery
# workers get their parallelism from the chord instead.
NIGHTLY_WORKERS = _setting("NIGHTLY_WORKERS", _int, 1)
if not 1 <= NIGHTLY_WORKERS <= 64:
    raise ImproperlyConfigured(f"Setting NIGHTLY_WORKERS={NIGHTLY_WORKERS} is not valid: must be 1-64")
# --- Nightly run heartbeat (issue #16 item 4) ---------------------------------------------------------
# A running attempt stamps NightlyRun.heartbeat_at every NIGHTLY_HEARTBEAT_SECONDS (a background thread
# with its own connection, plus every step and health chunk). A run whose heartbeat is older than
# NIGHTLY_STALE_SECONDS is taken for dead (worker killed, machine lost): the watchdog, which beat runs
# every NIGHTLY_WATCHDOG_SECONDS, marks it failed, alerts the tenant's admins and queues a retry.
NIGHTLY_HEARTBEAT_SECONDS = _setting("NIGHTLY_HEARTBEAT_SECONDS", float, 30.0)
NIGHTLY_STALE_SECONDS = _setting("NIGHTLY_STALE_SECONDS", float, 300.0)
NIGHTLY_WATCHDOG_SECONDS = _setting("NIGHTLY_WATCHDOG_SECONDS", float, 60.0)
if NIGHTLY_HEARTBEAT_SECONDS <= 0 or NIGHTLY_WATCHDOG_SECONDS <= 0:
    raise ImproperlyConfigured("NIGHTLY_HEARTBEAT_SECONDS and NIGHTLY_WATCHDOG_SECONDS must be positive")
if NIGHTLY_STALE_SECONDS < 3 * NIGHTLY_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"NIGHTLY_STALE_SECONDS={NIGHTLY_STALE_SECONDS} must be at least three heartbeats "
        f"(NIGHTLY_HEARTBEAT_SECONDS={NIGHTLY_HEARTBEAT_SECONDS}), or a busy but live run is taken for dead"
    )
CELERY_BEAT_SCHEDULE = {
    "nightly-dispatch": {"task": "metrics.nightly_dispatch", "schedule": 15 * 60},
    # Runs whose heartbeat stopped: failed, alerted and retried within minutes (issue #16 item 4).
    "nightly-watchdog": {"task": "metrics.nightly_watchdog", "schedule": NIGHTLY_WATCHDOG_SECONDS},
    # Webhook deliveries whose queued message was lost (broker restart) are sent again.
    "webhooks-requeue-stale": {"task": "webhooks.requeue_stale", "schedule": 5 * 60},
    # Weekly scorecards: tenants whose SCORECARD_WEEKDAY SCORECARD_LOCAL_HOUR has come; also re-queues lost sends.
    "scorecards-weekly-dispatch": {"task": "scorecards.weekly_dispatch", "schedule": 15 * 60},
}
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Email ----------------------------------------------------------------------------------------
# EMAIL_URL carries the SMTP password: an error message does not repeat it.
_email_url = _setting("EMAIL_URL", lambda raw: environ.Env.email_url_config(raw) if raw.strip() else {}, {}, show=None)
if _email_url:
    vars().update(_email_url)
else:
    EMAIL_BACKEND = _setting(
        "EMAIL_BACKEND",
        _dotted_path,
        "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
    )
    EMAIL_HOST = _setting("EMAIL_HOST", _host, "localhost")
    EMAIL_PORT = _setting("EMAIL_PORT", _int, 25)
    EMAIL_HOST_USER = _setting("EMAIL_HOST_USER", _text, "")
    EMAIL_HOST_PASSWORD = _setting("EMAIL_HOST_PASSWORD", _text, "", show=None)
    EMAIL_USE_TLS = _setting("EMAIL_USE_TLS", _bool, False)
DEFAULT_FROM_EMAIL = _setting("DEFAULT_FROM_EMAIL", _from_email, "cs-platform@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security -------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = _setting("SESSION_COOKIE_SECURE", _bool, not DEBUG)
CSRF_COOKIE_SECURE = _setting("CSRF_COOKIE_SECURE", _bool, not DEBUG)
SECURE_SSL_REDIRECT = _setting("SECURE_SSL_REDIRECT", _bool, not DEBUG)
SECURE_HSTS_SECONDS = _setting("SECURE_HSTS_SECONDS", _int, 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _setting("SECURE_HSTS_INCLUDE_SUBDOMAINS", _bool, not DEBUG)
SECURE_HSTS_PRELOAD = _setting("SECURE_HSTS_PRELOAD", _bool, not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Full URLs only to ourselves, nothing to other sites: our URLs name accounts and carry ?q= searches.
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if _setting("SECURE_PROXY_SSL_HEADER", _bool, False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- DRF ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every API view: a token by its scopes, a browser session by the capability its view declares per
    # action (api.permissions; the roles are cs_platform.tenancy.policy's). Views do not override this.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "api.permissions.HasScope",
        "api.permissions.HasCapability",
    ],
    # JSON only: one representation to document, validate and fuzz.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.ApiCursorPagination",
    # Every list sorts the same way: an unknown ?ordering= is a 400, and the id always breaks ties so
    # cursor pages neither skip nor repeat rows (DRF's OrderingFilter ignores unknown names and does neither).
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "api.filters.MappedOrderingFilter",
    ],
    # One class for the token's and the user's budgets, so a request refused by one costs the other nothing.
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiRateThrottle"],
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
    # Proxies in front of the app whose X-Forwarded-For entries are trusted for the client address (per
    # address throttling). DRF's default (None) trusts the whole header, which any client can forge.
    "NUM_PROXIES": _setting("API_NUM_PROXIES", _int, 0),
}
# Requests per token and per user (a user's tokens and browser session share the user budget), and
# unknown or malformed bearer tokens per client address (api.throttling: token guessing, lookup floods).
API_THROTTLE_RATES = {
    "token": _setting("API_THROTTLE_TOKEN_RATE", _rate, "1200/min"),
    "user": _setting("API_THROTTLE_USER_RATE", _rate, "2400/min"),
    "failed_auth": _setting("API_THROTTLE_FAILED_AUTH_RATE", _rate, "30/min"),
}
if REST_FRAMEWORK["NUM_PROXIES"] < 0:
    raise ImproperlyConfigured(
        f"Setting API_NUM_PROXIES={REST_FRAMEWORK['NUM_PROXIES']} is not valid: must be 0 or more"
    )
API_PAGE_SIZE = _setting("API_PAGE_SIZE", _int, 50)
API_MAX_PAGE_SIZE = _setting("API_MAX_PAGE_SIZE", _int, 500)
if not 1 <= API_PAGE_SIZE <= API_MAX_PAGE_SIZE:
    raise ImproperlyConfigured(
        f"Setting API_PAGE_SIZE={API_PAGE_SIZE} is not valid: must be 1..API_MAX_PAGE_SIZE ({API_MAX_PAGE_SIZE})"
    )
# Rows one bulk-ingest request may carry (issue #5: 10,000).
API_BULK_MAX_ROWS = _setting("API_BULK_MAX_ROWS", _int, 10_000)
if API_BULK_MAX_ROWS < 1:
    raise ImproperlyConfigured(f"Setting API_BULK_MAX_ROWS={API_BULK_MAX_ROWS} is not valid: must be positive")
# How long a stored Idempotency-Key answer is replayed before the key may be reused.
API_IDEMPOTENCY_HOURS = _setting("API_IDEMPOTENCY_HOURS", _int, 24)
# A 10,000-row bulk request is a few megabytes of JSON; Django's 2.5 MB default would refuse it.
DATA_UPLOAD_MAX_MEMORY_SIZE = _setting("DATA_UPLOAD_MAX_MEMORY_SIZE", _int, 16 * 1024 * 1024)

# Webhooks: deliveries time out, retry with the delivery outbox's capped exponential backoff with jitter
# (cs_platform.outbox: base * 2**(attempt-1) seconds, at most the cap, plus up to 10%) and give up after
# the last attempt. Two separate relaxations, so a test or dev setup can reach a local receiver
# over real TLS without also accepting plain http (and the reverse):
#   WEBHOOK_ALLOW_HTTP           accept http:// endpoint URLs (local development only);
#   WEBHOOK_ALLOW_PRIVATE_HOSTS  accept private, loopback and link-local receivers, which turns off the
#                                SSRF check at registration and at connect time (development and tests).
# WEBHOOK_CA_BUNDLE is a PEM file (or an OpenSSL hashed directory) of the CAs whose certificates the sender
# trusts, e.g. to serve a tenant whose receiver has an internal CA. It REPLACES the default store (certifi),
# so include the public roots too if public receivers must keep working. Unset: certifi's store.
WEBHOOK_TIMEOUT_SECONDS = _setting("WEBHOOK_TIMEOUT_SECONDS", _int, 10)
WEBHOOK_MAX_ATTEMPTS = _setting("WEBHOOK_MAX_ATTEMPTS", _int, 8)
WEBHOOK_RETRY_BASE_SECONDS = _setting("WEBHOOK_RETRY_BASE_SECONDS", float, 30.0)
WEBHOOK_RETRY_MAX_SECONDS = _setting("WEBHOOK_RETRY_MAX_SECONDS", float, max(3600.0, WEBHOOK_RETRY_BASE_SECONDS))
if "WEBHOOK_ALLOW_INSECURE" in os.environ:
    # Silently ignoring the old name would quietly change what a deployment accepts.
    raise ImproperlyConfigured(
        "Setting WEBHOOK_ALLOW_INSECURE was split in two: use WEBHOOK_ALLOW_HTTP and/or WEBHOOK_ALLOW_PRIVATE_HOSTS"
    )
WEBHOOK_ALLOW_HTTP = _setting("WEBHOOK_ALLOW_HTTP", _bool, False)
WEBHOOK_ALLOW_PRIVATE_HOSTS = _setting("WEBHOOK_ALLOW_PRIVATE_HOSTS", _bool, False)


def _ca_bundle(raw: str) -> str | None:
    path = raw.strip()
    if not path:
        return None
    if not os.path.exists(path):
        raise ValueError("no such file or directory")
    if os.path.isfile(path):
        with open(path, encoding="ascii", errors="replace") as bundle:
            if "-----BEGIN CERTIFICATE-----" not in bundle.read():
                raise ValueError("the file holds no PEM certificate")
    return os.path.abspath(path)


WEBHOOK_CA_BUNDLE = _setting("WEBHOOK_CA_BUNDLE", _ca_bundle, None)
if WEBHOOK_MAX_ATTEMPTS < 1 or WEBHOOK_TIMEOUT_SECONDS < 1 or WEBHOOK_RETRY_BASE_SECONDS <= 0:
    raise ImproperlyConfigured(
        "Settings WEBHOOK_MAX_ATTEMPTS and WEBHOOK_TIMEOUT_SECONDS must be at least 1, "
        "WEBHOOK_RETRY_BASE_SECONDS positive"
    )
if WEBHOOK_RETRY_MAX_SECONDS < WEBHOOK_RETRY_BASE_SECONDS:
    raise ImproperlyConfigured(
        f"WEBHOOK_RETRY_MAX_SECONDS={WEBHOOK_RETRY_MAX_SECONDS} is below "
        f"WEBHOOK_RETRY_BASE_SECONDS={WEBHOOK_RETRY_BASE_SECONDS}: the cap must allow the first wait"
    )

# Weekly executive scorecard: sent on this ISO weekday (1 = Monday) from this local hour, per tenant.
SCORECARD_WEEKDAY = _setting("SCORECARD_WEEKDAY", _int, 1)
SCORECARD_LOCAL_HOUR = _setting("SCORECARD_LOCAL_HOUR", _int, 7)
if not 1 <= SCORECARD_WEEKDAY <= 7 or not 0 <= SCORECARD_LOCAL_HOUR <= 23:
    raise ImproperlyConfigured(
        f"Settings SCORECARD_WEEKDAY={SCORECARD_WEEKDAY} (1-7) or SCORECARD_LOCAL_HOUR={SCORECARD_LOCAL_HOUR} "
        "(0-23) are not valid"
    )
# An SMTP failure is retried on the delivery outbox's schedule, as a webhook is: base * 2**(attempt-1)
# seconds, at most the cap, plus up to 10% jitter, up to the attempts limit; then the delivery is "failed"
# and shown to admins (nothing is dropped silently).
# With the defaults, attempts wait 1, 2, 4, ... 32 minutes, then an hour each: over 4 hours of retries
# over 10 attempts, enough for a mail relay's maintenance window, before admins must step in.
SCORECARD_MAX_ATTEMPTS = _setting("SCORECARD_MAX_ATTEMPTS", _int, 10)
SCORECARD_RETRY_BASE_SECONDS = _setting("SCORECARD_RETRY_BASE_SECONDS", float, 60.0)
SCORECARD_RETRY_MAX_SECONDS = _setting("SCORECARD_RETRY_MAX_SECONDS", float, max(3600.0, SCORECARD_RETRY_BASE_SECONDS))
if SCORECARD_MAX_ATTEMPTS < 1 or SCORECARD_RETRY_BASE_SECONDS <= 0:
    raise ImproperlyConfigured("SCORECARD_MAX_ATTEMPTS must be at least 1 and SCORECARD_RETRY_BASE_SECONDS positive")
if SCORECARD_RETRY_MAX_SECONDS < SCORECARD_RETRY_BASE_SECONDS:
    raise ImproperlyConfigured(
        f"SCORECARD_RETRY_MAX_SECONDS={SCORECARD_RETRY_MAX_SECONDS} is below "
        f"SCORECARD_RETRY_BASE_SECONDS={SCORECARD_RETRY_BASE_SECONDS}: the cap must allow the first wait"
    )
# Links in emails are absolute: the address users reach the dashboard at.
SITE_URL = _setting("SITE_URL", _site_url, "http://127.0.0.1:8000")

SPECTACULAR_SETTINGS = {
    "TITLE": "Customer-success platform API",
    "DESCRIPTION": (
        "Version 1 of the REST API for integrations. Authenticate with `Authorization: Bearer <token>` "
        "(tokens are created by tenant admins under Settings > API tokens) or a browser session. Every "
        "4xx response has the same body: `status`, `code`, `message` and `errors` (one item per field "
        "or row). Collections are cursor-paginated: follow `next` and `previous`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status", "kind" or "band" field with different choices: name each set.
    "ENUM_NAME_OVERRIDES": {
        "TierEnum": "accounts.models.Tier",
        "LifecycleStageEnum": "accounts.models.LifecycleStage",
        "TouchpointKindEnum": "accounts.models.TouchpointKind",
        "ObligationStatusEnum": "compliance.models.ObligationStatus",
        "AuditOutcomeEnum": "compliance.models.AuditOutcome",
        "JourneyStatusEnum": "journeys.models.JourneyStatus",
        "ActivityStatusEnum": "journeys.models.ActivityStatus",
        "DecisionKindEnum": "journeys.models.DecisionKind",
        "DecisionStatusEnum": "journeys.models.DecisionStatus",
        "SurveyTypeEnum": "metrics.models.SurveyType",
        "SeverityEnum": "metrics.models.Severity",
        "HealthBandEnum": "metrics.models.HealthBand",
        "DirectionEnum": "segments.models.Direction",
        "ComparatorEnum": "segments.models.Comparator",
        "RoleEnum": "cs_platform.tenancy.models.Role",
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Identity: login throttling, passwords, sessions, re-authentication, MFA (issue #15) ------------
# The cs_platform.identity app owns login, logout, password reset and change, MFA (django-otp), the
# re-authentication window and session lifetimes. Everything it needs is set here, in one block.


def _duration(raw: str) -> int:
    """Seconds, written as 900 or with a unit: 90s, 15m, 4h, 1d."""
    value = raw.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    factor = units.get(value[-1:], None)
    number = value[:-1] if factor else value
    if not number.isdigit() or int(number) < 1:
        raise ValueError("expected a positive number of seconds, optionally with a unit (90s, 15m, 4h, 1d)")
    return int(number) * (factor or 1)


def _durations(raw: str) -> list[int]:
    steps = [_duration(item) for item in _list(raw)]
    if not steps or steps != sorted(steps):
        raise ValueError("expected one or more durations that never decrease, e.g. 15m,1h,4h,24h")
    return steps


INSTALLED_APPS += [
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "cs_platform.identity",
]


def _insert_after(anchor: str, *names: str) -> None:
    index = MIDDLEWARE.index(anchor) + 1
    MIDDLEWARE[index:index] = names


# Messages move up beside authentication: the session-lifetime middleware tells the user why they were
# logged out. OTPMiddleware marks request.user verified or not; sessions past their lifetime end before
# the tenant is looked up; the MFA gate needs the memberships the tenant middleware loads. Axes comes
# last, as its documentation asks: it turns a lockout flagged during the view into the lockout page.
MIDDLEWARE.remove("django.contrib.messages.middleware.MessageMiddleware")
_insert_after(
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "cs_platform.identity.middleware.SessionLifetimeMiddleware",
)
_insert_after(
    "cs_platform.tenancy.middleware.TenantMiddleware",
    "cs_platform.identity.middleware.MfaRequiredMiddleware",
    "cs_platform.identity.middleware.ReauthMiddleware",
)
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
# Axes' backend first: it refuses a locked-out account or address before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", *AUTHENTICATION_BACKENDS]

# Login throttling (django-axes, database handler). Failures are counted per username and, separately,
# per client address (the same address the API's per-address budget uses: API_NUM_PROXIES); either
# reaching LOGIN_FAILURE_LIMIT locks. A lockout lasts the next of LOGIN_LOCKOUT_STEPS: the first one of
# a username or address within LOGIN_LOCKOUT_MEMORY_SECONDS lasts the first step, each further one the
# next step, the last step repeating. Attempts during a lockout are still recorded and restart it.
LOGIN_FAILURE_LIMIT = _setting("LOGIN_FAILURE_LIMIT", _int, 5)
LOGIN_LOCKOUT_STEPS = _setting("LOGIN_LOCKOUT_STEPS", _durations, [15 * 60, 3600, 4 * 3600, 24 * 3600])
LOGIN_LOCKOUT_MEMORY_SECONDS = _setting("LOGIN_LOCKOUT_MEMORY_SECONDS", _duration, 7 * 86400)
if not 1 <= LOGIN_FAILURE_LIMIT <= 100:
    raise ImproperlyConfigured(f"Setting LOGIN_FAILURE_LIMIT={LOGIN_FAILURE_LIMIT} is not valid: must be 1-100")
AXES_ENABLED = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_CLIENT_IP_CALLABLE = "cs_platform.identity.client_address.client_address"
AXES_COOLOFF_TIME = "cs_platform.identity.lockout.cool_off"
# Each attempt row carries its own expiry, so one user's short cool-off never cleans away the rows
# that keep another, longer lockout in force (axes otherwise cleans every row by the caller's cool-off).
AXES_USE_ATTEMPT_EXPIRATION = True
# Never: a success would wipe the address's failures too, so an attacker could interleave logins to
# their own account with guesses at someone else's.
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_CALLABLE = "cs_platform.identity.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429

# Passwords: at least PASSWORD_MIN_LENGTH (12 or more) characters, not like the user's name or email,
# not on Django's list of 20,000 common passwords, not all digits.
PASSWORD_MIN_LENGTH = _setting("PASSWORD_MIN_LENGTH", _int, 12)
if not 12 <= PASSWORD_MIN_LENGTH <= 128:
    raise ImproperlyConfigured(f"Setting PASSWORD_MIN_LENGTH={PASSWORD_MIN_LENGTH} is not valid: must be 12-128")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password reset links (Django's token generator: they expire, and die once the password changes).
PASSWORD_RESET_TIMEOUT = _setting("PASSWORD_RESET_TIMEOUT_SECONDS", _duration, 3600)
# Reset requests per client address and, separately, per email address asked about.
PASSWORD_RESET_RATE = _setting("PASSWORD_RESET_RATE", _rate, "5/hour")

# Sessions end after SESSION_IDLE_TIMEOUT_SECONDS without a request, and SESSION_MAX_AGE_SECONDS after
# login whatever the activity. The idle stamp is rewritten at most once a minute, not on every request.
SESSION_IDLE_TIMEOUT_SECONDS = _setting("SESSION_IDLE_TIMEOUT_SECONDS", _duration, 30 * 60)
SESSION_MAX_AGE_SECONDS = _setting("SESSION_MAX_AGE_SECONDS", _duration, 12 * 3600)
if not 120 <= SESSION_IDLE_TIMEOUT_SECONDS <= SESSION_MAX_AGE_SECONDS:
    raise ImproperlyConfigured(
        f"Settings SESSION_IDLE_TIMEOUT_SECONDS={SESSION_IDLE_TIMEOUT_SECONDS} (120 or more) and "
        f"SESSION_MAX_AGE_SECONDS={SESSION_MAX_AGE_SECONDS} (at least the idle timeout) are not valid"
    )
SESSION_IDLE_REFRESH_SECONDS = 60
SESSION_COOKIE_AGE = SESSION_MAX_AGE_SECONDS
# "Sudo mode": creating API tokens or webhook secrets, changing roles, MFA or security settings, and
# exporting the audit trail from a browser need a password (and MFA code) entered this recently.
REAUTH_SECONDS = _setting("REAUTH_SECONDS", _duration, 10 * 60)

# MFA (django-otp): TOTP apps plus single-use recovery codes. The issuer names us in authenticator apps.
OTP_TOTP_ISSUER = _setting("MFA_TOTP_ISSUER", lambda raw: raw.strip() or "CS Platform", "CS Platform")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# How long the second login step (the code) may follow the first (the password).
MFA_LOGIN_STEP_SECONDS = 5 * 60
MFA_RECOVERY_CODE_COUNT = 10

# --- Browser security headers (issue #15 item 2) ------------------------------------------------
# Content-Security-Policy on every response (django-csp). Scripts and styles come only from our own
# static files; the nonce is added to the header on the pages that use it (a page that never reads
# request.csp_nonce gets none). 'self' covers fonts, fetches, frames and workers; the API docs pages
# widen their own policy where a vendored library truly needs it (api/docs.py).
# img-src: data: for the icons Swagger UI's stylesheet inlines; blob: for plotly's "Download plot as
# a PNG", which draws the chart's SVG into an <img> from a blob: URL (tests/browser/test_csp.py).
from csp.constants import NONCE, NONE, SELF  # noqa: E402


def _report_uri(raw: str) -> str:
    value = raw.strip()
    if value and not (value.startswith(("https://", "/")) and not any(c in value for c in " ;,\t\n")):
        raise ValueError("expected an https:// URL or a path starting with /, without spaces, ';' or ','")
    return value


# Where browsers report violations (optional; django-csp's own CSP_* names must not be settings here).
_csp_report_uri = _setting("CSP_REPORT_URI", _report_uri, "")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:", "blob:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        **({"report-uri": [_csp_report_uri]} if _csp_report_uri else {}),
    },
}
# Referrer-Policy stays SECURE_REFERRER_POLICY = "same-origin" (Security, above).
# Permissions-Policy (cs_platform.security_headers): powerful browser features the product never
# uses are off for our pages and anything they embed. Only names Chromium knows: an unknown one is
# an error in the console.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "clipboard-read",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "identity-credentials-get",
        "idle-detection",
        "local-fonts",
        "magnetometer",
        "microphone",
        "midi",
        "otp-credentials",
        "payment",
        "publickey-credentials-create",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "storage-access",
        "usb",
        "window-management",
        "xr-spatial-tracking",
    )
)

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = _setting("LOG_LEVEL", _log_level, "INFO")
# LOGGING itself is built in the Observability block below (structured logs, LOG_FORMAT).


# --- Audit checkpoints (issue #15: signed chain heads, truncation and rewrite detection) -----------------
# At least every AUDIT_CHECKPOINT_INTERVAL_MINUTES (Celery beat) and at the end of each nightly run, each
# tenant's audit chain head is signed with an Ed25519 key and stored as an AuditCheckpoint
# (cs_platform/audit/signing.py). The private key lives here, outside the database, so whoever can rewrite
# the audit table cannot forge a checkpoint for the rewrite.
#   AUDIT_SIGNING_KEY         standard base64 of the 32-byte Ed25519 private key; required unless DEBUG.
#                             `python manage.py audit_signing_key` makes one and prints its public key.
#   AUDIT_VERIFY_PUBLIC_KEYS  base64 public keys of earlier signing keys, comma-separated: after a rotation,
#                             checkpoints they signed still verify (and the export publishes them).
# Without AUDIT_SIGNING_KEY, DEBUG (the demo) signs with a fixed development key whose private half is
# derived from a string in this file, so anyone can forge its signatures; a system check warns (audit.W001).
def _audit_development_key() -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(b"cs-platform development audit signing key: NOT SECRET").digest()).decode()


def _ed25519_raw(value: str, what: str) -> str:
    """Standard base64 of 32 raw bytes (an Ed25519 private seed or public key), returned stripped."""
    import base64
    import binascii

    value = value.strip()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"expected the standard base64 of a 32-byte Ed25519 {what}, and this is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"expected the standard base64 of a 32-byte Ed25519 {what}, got {len(raw)} bytes")
    return value


def _ed25519_public_keys(raw: str) -> list[str]:
    return [_ed25519_raw(item, "public key") for item in _list(raw)]


_AUDIT_KEY_HELP = (
    "Make one with `DEBUG=true AUDIT_SIGNING_KEY= python manage.py audit_signing_key` (it prints the value to "
    "set and the public key to give clients), or with "
    '`python3 -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"`.'
)
AUDIT_DEVELOPMENT_SIGNING_KEY = _audit_development_key()


def _audit_signing_key(raw: str) -> str:
    if not raw.strip():
        return ""
    try:
        return _ed25519_raw(raw, "private key")
    except ValueError as exc:
        raise ValueError(f"{exc}. {_AUDIT_KEY_HELP}") from None


# Unlike most settings, the value is never repeated in a message (show=None): it is a private key.
AUDIT_SIGNING_KEY = _setting("AUDIT_SIGNING_KEY", _audit_signing_key, "", show=None)
if not AUDIT_SIGNING_KEY:
    if not DEBUG and not _ALLOW_INSECURE_DEFAULTS:
        raise ImproperlyConfigured(
            "AUDIT_SIGNING_KEY is not set. Audit checkpoints are signed with it (Ed25519 private key, standard "
            "base64 of 32 random bytes, kept outside the database). " + _AUDIT_KEY_HELP
        )
    AUDIT_SIGNING_KEY = AUDIT_DEVELOPMENT_SIGNING_KEY
elif AUDIT_SIGNING_KEY == AUDIT_DEVELOPMENT_SIGNING_KEY and not DEBUG:
    raise ImproperlyConfigured(
        "Setting AUDIT_SIGNING_KEY is the published development key, which anyone can sign with. " + _AUDIT_KEY_HELP
    )
AUDIT_VERIFY_PUBLIC_KEYS = _setting("AUDIT_VERIFY_PUBLIC_KEYS", _ed25519_public_keys, [])
AUDIT_CHECKPOINT_INTERVAL_MINUTES = _setting("AUDIT_CHECKPOINT_INTERVAL_MINUTES", _int, 60)
if not 1 <= AUDIT_CHECKPOINT_INTERVAL_MINUTES <= 60:
    raise ImproperlyConfigured(
        f"Setting AUDIT_CHECKPOINT_INTERVAL_MINUTES={AUDIT_CHECKPOINT_INTERVAL_MINUTES} is not valid: use 1-60 "
        "(checkpoints are made at least hourly)"
    )
CELERY_BEAT_SCHEDULE["audit-checkpoint-dispatch"] = {
    "task": "audit.checkpoint_dispatch",
    "schedule": AUDIT_CHECKPOINT_INTERVAL_MINUTES * 60,
}
# A name of its own in the OpenAPI schema ("reason" is a common field name).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["CheckpointReasonEnum"] = "cs_platform.audit.models.CheckpointReason"

# --- Bounded input (issue #15 item 8) -------------------------------------------------------------
# NUL in a query parameter, form field or cookie is a 400 before the session is looked up
# (cs_platform.bad_requests); the API reads JSON with a depth limit and refuses NUL and lone surrogates
# (api.parsers). The bounds themselves (dates 1900-2200, text lengths, JSON depth) are in cs_platform.bounds.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware"),
    "cs_platform.bad_requests.RefuseNulMiddleware",
)
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["api.parsers.BoundedJSONParser"]

# --- The API without Redis (issue #16 items 2 and 3) ----------------------------------------------
# The API's request budgets live in the cache (api.throttling). When it cannot be reached, requests go
# through un-throttled with a logged warning and an X-Throttle-Degraded header (true, the default), or
# are refused with 503 and Retry-After (false).
API_THROTTLE_FAIL_OPEN = _setting("API_THROTTLE_FAIL_OPEN", _bool, True)
# A Redis that stops answering (host down, network partition) must cost a request a second or two, not
# hang it: redis-py waits forever by default. A refused connection fails at once either way.
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 1, "socket_timeout": 2})


# --- Observability: health checks, Prometheus metrics, structured logs (issue #16 items 5 and 6) ---------
# cs_platform.observability (no domain imports) holds liveness, readiness, metrics and logging; the
# `monitoring` app (top layer) adds the nightly-run readiness check and the per-tenant / backlog gauges.
INSTALLED_APPS += ["django_prometheus", "django_structlog", "cs_platform.observability", "monitoring"]
# django-prometheus times every request by view: its "before" middleware first, its "after" one last.
# X-Request-ID (cs_platform.observability.logs) is set on every response, before django_structlog binds
# it to the log context; django_structlog comes after WhiteNoise, so static files add no log lines.
MIDDLEWARE.insert(0, "django_prometheus.middleware.PrometheusBeforeMiddleware")
MIDDLEWARE.insert(1, "cs_platform.observability.logs.RequestIdMiddleware")
_insert_after("whitenoise.middleware.WhiteNoiseMiddleware", "django_structlog.middlewares.RequestMiddleware")
MIDDLEWARE.append("django_prometheus.middleware.PrometheusAfterMiddleware")

# Readiness (/readyz): fails when the last beat tick (observability.beat_tick, every minute) is older than
# READINESS_BEAT_MAX_AGE_SECONDS, or when any tenant's last finished nightly run is older than
# READINESS_NIGHTLY_MAX_AGE_HOURS (a run a day at 02:00 local, so 30 leaves 6 h for retries).
READINESS_BEAT_MAX_AGE_SECONDS = _setting("READINESS_BEAT_MAX_AGE_SECONDS", _int, 300)
READINESS_NIGHTLY_MAX_AGE_HOURS = _setting("READINESS_NIGHTLY_MAX_AGE_HOURS", _int, 30)
if READINESS_BEAT_MAX_AGE_SECONDS < 120 or not 25 <= READINESS_NIGHTLY_MAX_AGE_HOURS <= 24 * 14:
    raise ImproperlyConfigured(
        f"Settings READINESS_BEAT_MAX_AGE_SECONDS={READINESS_BEAT_MAX_AGE_SECONDS} (120 or more: beat ticks every "
        f"minute) or READINESS_NIGHTLY_MAX_AGE_HOURS={READINESS_NIGHTLY_MAX_AGE_HOURS} (25-336) are not valid"
    )
CELERY_BEAT_SCHEDULE["observability-beat-tick"] = {"task": "observability.beat_tick", "schedule": 60}


def _networks(raw: str) -> list[str]:
    import ipaddress

    items = _list(raw)
    for item in items:
        ipaddress.ip_network(item, strict=False)  # raises ValueError for a malformed address or network
    return items


# /metrics (Prometheus text format) answers requests whose direct peer address (REMOTE_ADDR) is in
# METRICS_ALLOWED_IPS (addresses or CIDR networks; default loopback only) or that carry
# "Authorization: Bearer <METRICS_TOKEN>" (unset: no token accepted). Everyone else gets 403.
METRICS_ALLOWED_IPS = _setting("METRICS_ALLOWED_IPS", _networks, ["127.0.0.1/32", "::1/128"])


def _metrics_token(raw: str) -> str:
    value = raw.strip()
    if value and len(value) < 24:
        raise ValueError("use 24 or more random characters")
    return value


METRICS_TOKEN = _setting("METRICS_TOKEN", _metrics_token, "", show=None)
# A Celery worker serves its own metrics (task durations and failures) on this port; 0 = off.
WORKER_METRICS_PORT = _setting("WORKER_METRICS_PORT", _int, 0)
if not 0 <= WORKER_METRICS_PORT <= 65535:
    raise ImproperlyConfigured(f"Setting WORKER_METRICS_PORT={WORKER_METRICS_PORT} is not valid: use 0-65535")
PROMETHEUS_EXPORT_MIGRATIONS = False
# Several processes (gunicorn workers, Celery pool processes): prometheus_client itself reads
# PROMETHEUS_MULTIPROC_DIR, a directory each process writes its values to (docker-compose: /dev/shm/...,
# wiped when gunicorn or the worker starts). Unset: each process serves only its own values.
PROMETHEUS_MULTIPROC_DIR = _setting("PROMETHEUS_MULTIPROC_DIR", _optional_path, "")
if PROMETHEUS_MULTIPROC_DIR:
    os.makedirs(PROMETHEUS_MULTIPROC_DIR, exist_ok=True)


def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"json", "console"}:
        raise ValueError("expected json or console")
    return value


# Logs: LOG_FORMAT=json (one JSON object per line: the default unless DEBUG) or console (readable, the
# demo's default). Each line has timestamp, level, event, logger, and from the context request_id (also
# the X-Request-ID response header; a valid incoming X-Request-ID is kept), user_id, token_prefix,
# tenant_id / tenant, and in Celery tasks task and task_id (a task queued by a request keeps its request_id).
LOG_FORMAT = _setting("LOG_FORMAT", _log_format, "console" if DEBUG else "json")
from cs_platform.observability.logs import config as _logging_config  # noqa: E402

LOGGING = _logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT)
DJANGO_STRUCTLOG_CELERY_ENABLED = True
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True  # only after RequestIdMiddleware validated or replaced it
# One line per request (request_finished, or request_failed with the traceback); request_started only
# at LOG_LEVEL=DEBUG (to find requests that never finished).
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False  # an address is personal data; the proxy's access log has it
# Keep Django's logging config in the worker (Celery would otherwise replace the root logger's handlers).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
