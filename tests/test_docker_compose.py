"""Structural checks of docker-compose.yml, the Dockerfile and .env.example.

These run without Docker, a database or Django: the files are read as text / YAML and checked against what
`docker compose config` accepts and what cs_platform/settings.py actually reads.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_PATH = ROOT / "docker-compose.yml"
DOCKERFILE_PATH = ROOT / "Dockerfile"
ENV_EXAMPLE_PATH = ROOT / ".env.example"
SETTINGS_PATH = ROOT / "cs_platform" / "settings.py"

LONG_RUNNING = ("postgres", "redis", "mailpit", "web", "worker", "beat")
APP_SERVICES = ("migrate", "web", "worker", "beat")
VALID_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<rest>[^}]*)\}")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_PATH.read_text()


@pytest.fixture(scope="module")
def compose(compose_text) -> dict:
    data = yaml.safe_load(compose_text)
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def shared_env(compose) -> dict:
    return environment(compose["x-app-env"])


def environment(value) -> dict:
    """Normalise a Compose `environment` (mapping or list of KEY=VALUE) into a dict of strings."""
    if value is None:
        return {}
    if isinstance(value, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in value)
        return {key: val for key, val in pairs}
    return {key: (None if val is None else str(val)) for key, val in value.items()}


def command_tokens(service: dict) -> list[str]:
    command = service.get("command")
    assert command, "service has no command"
    return list(command) if isinstance(command, list) else shlex.split(command)


def depends_on(service: dict) -> dict[str, str]:
    """`depends_on` as {service: condition}; the short (list) syntax means service_started."""
    value = service.get("depends_on") or {}
    if isinstance(value, list):
        return {name: "service_started" for name in value}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in value.items()}


def healthcheck_test(service: dict) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return list(test or [])


def image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def url_parts(url: str) -> tuple[str, str, str, str]:
    """(scheme, user, host, path) of a URL whose password may be an unresolved ${...} expression."""
    match = re.fullmatch(
        r"(?P<scheme>\w+)://(?:(?P<user>[^:@/]*)(?::.*)?@)?(?P<host>[^:/@]+)(?::\d+)?(?P<path>/.*)?", url
    )
    assert match, f"not a URL: {url}"
    return match["scheme"], match["user"] or "", match["host"], match["path"] or ""


# --- Compose file shape ---------------------------------------------------------------------------------


def test_compose_spec_has_no_version_key(compose):
    assert "version" not in compose, "the Compose spec has no top-level `version:` key (it is obsolete)"


def test_all_services_are_defined(services):
    assert set(LONG_RUNNING) | {"migrate"} <= set(services)


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_service_has_healthcheck_and_restart_policy(services, name):
    service = services[name]
    test = healthcheck_test(service)
    assert test, f"{name} has no healthcheck test"
    assert test[0] in {"CMD", "CMD-SHELL"}, f"{name}: healthcheck test must start with CMD or CMD-SHELL, got {test[0]}"
    assert len(test) > 1 and all(part.strip() for part in test[1:]), f"{name}: empty healthcheck command"
    assert service.get("restart") == "unless-stopped", f"{name} must have restart: unless-stopped"


def test_migrate_is_one_shot(services):
    assert services["migrate"].get("restart", "no") == "no", "migrate must not be restarted after it completes"


def test_every_depends_on_target_exists_with_a_valid_condition(services):
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on undefined service {target!r}"
            assert target != name, f"{name} depends on itself"
            assert condition in VALID_CONDITIONS, f"{name} -> {target}: invalid condition {condition!r}"
            if condition == "service_healthy":
                assert healthcheck_test(services[target]), (
                    f"{name} waits for {target} healthy, which has no healthcheck"
                )


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared named volume {source!r}"


def test_postgres_keeps_data_in_a_named_volume(compose, services):
    mounts = [v.split(":", 1) for v in services["postgres"].get("volumes") or [] if isinstance(v, str)]
    assert any(
        source in (compose.get("volumes") or {}) and target.startswith("/var/lib/postgresql/data")
        for source, target in mounts
    ), "postgres data must live in a named volume"


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_backing_service_images_are_pinned_to_a_major_version(services, name):
    image = services[name]["image"]
    tag = image_tag(image)
    assert tag and tag != "latest", f"{name} image {image!r} must pin a version, not latest/untagged"
    assert re.match(r"\d+", tag), f"{name} image {image!r} must pin a numeric major version"


def test_no_image_uses_the_latest_tag(services):
    for name, service in services.items():
        if "image" in service:
            tag = image_tag(service["image"])
            assert tag not in (None, "latest"), f"{name} image {service['image']!r} is not pinned"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_build_from_the_repository_root(services, name):
    build = services[name].get("build")
    context = build.get("context") if isinstance(build, dict) else build
    assert context in (".", "./"), f"{name} must build from the repository root (build: .)"


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_app_services_wait_for_postgres_and_redis(services, name):
    """Directly or through migrate (which itself waits for postgres healthy), each app service must wait
    for a healthy postgres and a healthy redis, and must not start before migrations completed."""

    def reachable(start: str) -> dict[str, set[str]]:
        seen: dict[str, set[str]] = {}
        stack = [start]
        while stack:
            for target, condition in depends_on(services[stack.pop()]).items():
                if target not in seen:
                    stack.append(target)
                seen.setdefault(target, set()).add(condition)
        return seen

    deps = depends_on(services[name])
    assert deps.get("migrate") == "service_completed_successfully", f"{name} must wait for migrate to finish"
    all_deps = reachable(name)
    assert "service_healthy" in all_deps.get("postgres", set()), f"{name} does not wait for postgres healthy"
    assert "service_healthy" in all_deps.get("redis", set()), f"{name} does not wait for redis healthy"


def test_migrate_waits_for_postgres_healthy(services):
    assert depends_on(services["migrate"]).get("postgres") == "service_healthy"


def test_web_waits_for_mailpit_healthy(services):
    assert depends_on(services["web"]).get("mailpit") == "service_healthy"


# --- Commands -------------------------------------------------------------------------------------------


def test_web_runs_gunicorn_with_the_wsgi_app_on_port_8000(services):
    tokens = command_tokens(services["web"])
    assert tokens[0] == "gunicorn"
    assert "cs_platform.wsgi:application" in tokens
    joined = " ".join(tokens)
    assert re.search(r"(--bind|-b)[ =]0\.0\.0\.0:8000\b", joined), "gunicorn must bind 0.0.0.0:8000"
    # Workers, threads (gthread), timeouts and recycling live in gunicorn.conf.py, read from GUNICORN_*.
    assert re.search(r"(-c|--config)[ =]gunicorn\.conf\.py\b", joined), "gunicorn must read gunicorn.conf.py"
    assert not re.search(r"--workers|--threads|-w\b", joined), "sizing belongs in GUNICORN_* variables"
    assert (ROOT / "gunicorn.conf.py").is_file()
    assert any(str(port).split(":")[-1] == "8000" for port in services["web"].get("ports", [])), "publish 8000"


def test_web_healthcheck_requests_healthz(services):
    test = " ".join(healthcheck_test(services["web"]))
    assert "python" in test and "urllib" in test
    assert "http://localhost:8000/healthz" in test


def test_web_healthcheck_is_liveness_not_readiness(services):
    # Restarting web cannot bring back Redis, PostgreSQL or beat: /readyz is for the load balancer and
    # monitoring (README "Health checks"); docker's probe of web is the dependency-free /healthz.
    assert "/readyz" not in " ".join(healthcheck_test(services["web"]))


def test_metrics_in_several_processes_use_the_multiprocess_directory(services):
    web, worker = environment(services["web"]["environment"]), environment(services["worker"]["environment"])
    assert web["PROMETHEUS_MULTIPROC_DIR"] and worker["PROMETHEUS_MULTIPROC_DIR"]
    # gunicorn empties the directory at start and forgets dead workers' gauges (the hooks module).
    # gunicorn.conf.py (which web reads) takes the hooks module's names into its namespace.
    conf = (ROOT / "gunicorn.conf.py").read_text()
    assert re.search(r"^from cs_platform\.observability\.gunicorn_hooks import .*\bon_starting\b", conf, re.M)
    assert re.search(r"^from cs_platform\.observability\.gunicorn_hooks import .*\bchild_exit\b", conf, re.M)
    assert re.search(r"^from cs_platform\.observability\.gunicorn_hooks import .*\blogger_class\b", conf, re.M)
    # The worker serves its task metrics on its own port inside the compose network.
    assert worker["WORKER_METRICS_PORT"] == "9808" and "9808" in [str(p) for p in services["worker"]["expose"]]


def test_worker_runs_celery_worker(services):
    tokens = command_tokens(services["worker"])
    assert tokens[:4] == ["celery", "-A", "cs_platform", "worker"]


def test_worker_healthcheck_pings_its_own_node(services):
    test = " ".join(healthcheck_test(services["worker"]))
    assert "celery -A cs_platform inspect ping" in test
    # `$$` is Compose's escape for `$`: the container's shell (hence CMD-SHELL) expands $HOSTNAME, the
    # container id, which is the worker's default node name. A single `$` would be expanded by Compose.
    assert healthcheck_test(services["worker"])[0] == "CMD-SHELL"
    assert "-d celery@$$HOSTNAME" in test


def test_beat_runs_celery_beat_with_a_writable_schedule(services):
    tokens = command_tokens(services["beat"])
    assert tokens[:3] == ["celery", "-A", "cs_platform"] and "beat" in tokens
    joined = " ".join(tokens)
    assert re.search(r"(--schedule|-s)[ =]/tmp/", joined), "beat's schedule file must be in writable /tmp"


def test_beat_healthcheck_needs_no_procps(services):
    test = healthcheck_test(services["beat"])
    assert not any(re.search(r"\b(pgrep|ps|pidof)\b", part) for part in test[1:]), "python:3.11-slim lacks procps"


def test_migrate_creates_the_app_role_then_migrates(services):
    command = " ".join(command_tokens(services["migrate"]))
    assert re.search(r"manage\.py create_app_role\s*&&\s*python manage\.py migrate --noinput", command)
    assert command_tokens(services["migrate"])[:2] == ["sh", "-c"], "`&&` needs a shell (sh -c)"


def test_postgres_healthcheck_uses_pg_isready_for_the_owner_and_database(services):
    env = environment(services["postgres"]["environment"])
    assert env["POSTGRES_USER"] == "cs_owner" and env["POSTGRES_DB"] == "cs_platform"
    test = " ".join(healthcheck_test(services["postgres"]))
    assert "pg_isready -U cs_owner -d cs_platform" in test


def test_redis_healthcheck_pings(services):
    test = healthcheck_test(services["redis"])
    assert "redis-cli" in " ".join(test) and "ping" in " ".join(test)


# --- Environment ----------------------------------------------------------------------------------------


def test_shared_env_has_the_required_variables(shared_env):
    required = {"DATABASE_URL", "DATABASE_OWNER_URL", "DATABASE_APP_ROLE", "REDIS_URL", "CELERY_BROKER_URL"}
    required |= {"SECRET_KEY", "EMAIL_HOST", "EMAIL_PORT", "DEBUG", "ALLOWED_HOSTS"}
    assert required <= set(shared_env), f"missing: {sorted(required - set(shared_env))}"
    assert shared_env["DEBUG"].lower() == "false"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_use_the_shared_env(services, shared_env, name):
    env = environment(services[name].get("environment"))
    for key, value in shared_env.items():
        assert env.get(key) == value, f"{name} overrides or lacks shared variable {key}"


def test_secret_key_is_required_and_has_no_default(compose, services, compose_text):
    for scope, env in [("x-app-env", environment(compose["x-app-env"]))] + [
        (name, environment(services[name].get("environment"))) for name in APP_SERVICES
    ]:
        match = INTERPOLATION.fullmatch(env["SECRET_KEY"])
        assert match and match["name"] == "SECRET_KEY", f"{scope}: SECRET_KEY must come from ${{SECRET_KEY:?...}}"
        assert match["op"] in (":?", "?"), f"{scope}: SECRET_KEY must be required (`:?`), not defaulted"
    assert not re.search(r"\$\{SECRET_KEY:?[-+]", compose_text), "SECRET_KEY must never get a default"


def test_passwords_and_keys_are_required_and_have_no_fallback(compose_text):
    # A stack started without .env must stop with Compose's message, not run on a password written here.
    secrets = [
        m for m in INTERPOLATION.finditer(compose_text) if re.search(r"PASSWORD|SECRET_KEY|SIGNING_KEY", m["name"])
    ]
    assert {m["name"] for m in secrets} >= {"POSTGRES_PASSWORD", "APP_DB_PASSWORD", "SECRET_KEY", "AUDIT_SIGNING_KEY"}
    for match in secrets:
        assert match["op"] == ":?", f"{match.group(0)} must be required (${{{match['name']}:?message}})"
        assert match["rest"].strip(), f"{match.group(0)} must say what to set"
    assert "local_only" not in compose_text


def test_database_urls_point_at_the_right_roles_and_hosts(services, shared_env):
    postgres_env = environment(services["postgres"]["environment"])
    scheme, user, host, path = url_parts(shared_env["DATABASE_URL"])
    assert (scheme, host, path) == ("postgres", "postgres", "/" + postgres_env["POSTGRES_DB"])
    assert user == shared_env["DATABASE_APP_ROLE"] == "cs_app", "the app must connect as the non-owner role"
    scheme, owner, host, path = url_parts(shared_env["DATABASE_OWNER_URL"])
    assert (scheme, host, path) == ("postgres", "postgres", "/" + postgres_env["POSTGRES_DB"])
    assert owner == postgres_env["POSTGRES_USER"] != user, "DATABASE_OWNER_URL must use the owner role"
    owner_password = shared_env["DATABASE_OWNER_URL"].split("@", 1)[0].split(":", 2)[2]
    assert INTERPOLATION.fullmatch(owner_password)["name"] == "POSTGRES_PASSWORD"
    assert INTERPOLATION.fullmatch(postgres_env["POSTGRES_PASSWORD"])["name"] == "POSTGRES_PASSWORD"
    app_password = shared_env["DATABASE_URL"].split("@", 1)[0].split(":", 2)[2]
    assert INTERPOLATION.fullmatch(app_password)["name"] == "APP_DB_PASSWORD"


def test_redis_and_mail_hosts_are_compose_services(services, shared_env):
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        if key in shared_env:
            scheme, _, host, _ = url_parts(shared_env[key])
            assert (scheme, host) == ("redis", "redis"), f"{key} must point at the redis service"
    assert shared_env["REDIS_URL"] != shared_env["CELERY_BROKER_URL"], "cache and broker should use separate DBs"
    assert shared_env["EMAIL_HOST"] in services and shared_env["EMAIL_HOST"] == "mailpit"
    assert shared_env["EMAIL_PORT"] == "1025"


def test_https_settings_default_to_plain_http_for_localhost(shared_env):
    for key in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        match = INTERPOLATION.fullmatch(shared_env[key])
        assert match and match["name"] == key, f"{key} must be overridable via ${{{key}:-false}}"
        assert match["op"] == ":-" and match["rest"] == "false", f"{key} must default to false"


def test_every_app_variable_is_read_by_settings(services):
    """A typo in a variable name would be silently ignored by Django, so every name must appear in settings."""
    settings_source = SETTINGS_PATH.read_text()
    gunicorn_source = (ROOT / "gunicorn.conf.py").read_text()  # the web service's GUNICORN_* variables
    for name in APP_SERVICES:
        for key in environment(services[name].get("environment")):
            read = f'"{key}"' in settings_source or (name == "web" and f'"{key}"' in gunicorn_source)
            assert read, f"{name} sets {key}, which cs_platform/settings.py (or gunicorn.conf.py) never reads"


def test_dollar_signs_are_interpolations_or_escaped(compose_text):
    """A bare `$VAR` is expanded by Compose on the host (usually to empty); container-side uses need `$$`."""
    for line_no, line in enumerate(compose_text.splitlines(), 1):
        stripped = re.sub(r"\$\$|\$\{[^}]*\}", "", line)
        assert "$" not in stripped, f"docker-compose.yml:{line_no}: unescaped `$` in {line.strip()!r}"
    for match in re.finditer(r"(?<!\$)\$\{([^}]*)\}", compose_text):
        assert INTERPOLATION.fullmatch(match.group(0)), f"malformed interpolation {match.group(0)!r}"


def test_env_example_documents_every_interpolated_variable(compose_text):
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE_PATH.read_text(), re.MULTILINE))
    used = {m["name"] for m in INTERPOLATION.finditer(re.sub(r"\$\$", "", compose_text))}
    assert used <= documented, f".env.example does not mention: {sorted(used - documented)}"


def test_every_app_setting_in_env_example_reaches_the_app_containers(shared_env, services):
    # A setting a user puts in .env must take effect under Compose too; the two passwords are the
    # exception, as they reach the app inside the database URLs. GUNICORN_* are the web service's alone.
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE_PATH.read_text(), re.MULTILINE))
    web = {k for k in environment(services["web"].get("environment")) if k.startswith("GUNICORN_")}
    missing = documented - set(shared_env) - web - {"POSTGRES_PASSWORD", "APP_DB_PASSWORD"}
    assert not missing, f"docker-compose.yml does not pass {sorted(missing)} to the app containers"
    for name in ("WEBHOOK_ALLOW_HTTP", "WEBHOOK_ALLOW_PRIVATE_HOSTS"):
        # Production refuses http:// and private receivers unless the user says otherwise.
        assert shared_env[name] == f"${{{name}:-false}}"


def test_env_example_holds_no_real_secret():
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE_PATH.read_text(), re.MULTILINE))
    for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "APP_DB_PASSWORD"):
        assert key in values, f".env.example must list {key}"
        assert "change-me" in values[key], f"{key} in .env.example must be an obvious placeholder"


# --- Dockerfile -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> str:
    assert DOCKERFILE_PATH.exists(), "Dockerfile is missing"
    # Join continuation lines so each instruction is one line.
    return re.sub(r"\\\n\s*", " ", DOCKERFILE_PATH.read_text())


def instructions(dockerfile: str, keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in dockerfile.splitlines() if line.upper().startswith(keyword + " ")]


def test_dockerfile_uses_python_311(dockerfile):
    bases = instructions(dockerfile, "FROM")
    assert bases and bases[0].startswith("python:3.11"), f"base image must be python:3.11, got {bases}"


def test_dockerfile_installs_requirements_with_constraints(dockerfile):
    runs = instructions(dockerfile, "RUN")
    assert any(
        re.search(r"pip install .*-r requirements\.txt", run) and re.search(r"-c constraints\.txt", run) for run in runs
    ), "pip must install requirements.txt with -c constraints.txt"
    assert any("constraints.txt" in copy for copy in instructions(dockerfile, "COPY"))


def test_dockerfile_collects_static_without_baking_in_the_secret(dockerfile):
    runs = [run for run in instructions(dockerfile, "RUN") if "collectstatic" in run]
    assert runs, "collectstatic must run at build time"
    assert "SECRET_KEY=build-only-not-secret" in runs[0] and "DEBUG=false" in runs[0]
    env_lines = " ".join(instructions(dockerfile, "ENV") + instructions(dockerfile, "ARG"))
    assert "SECRET_KEY" not in env_lines and "CS_ALLOW_INSECURE_DEFAULTS" not in env_lines


def test_dockerfile_runs_as_a_non_root_user(dockerfile):
    users = instructions(dockerfile, "USER")
    assert users and users[-1].split(":")[0].strip() not in {"root", "0"}


def test_dockerfile_default_command_is_gunicorn(dockerfile):
    cmd = instructions(dockerfile, "CMD")
    assert cmd and "gunicorn" in cmd[-1] and "cs_platform.wsgi:application" in cmd[-1] and "0.0.0.0:8000" in cmd[-1]
    # Workers and threads come from gunicorn.conf.py (GUNICORN_* variables), not fixed in the image.
    assert re.search(r'"-c",\s*"gunicorn\.conf\.py"', cmd[-1]), cmd[-1]
    assert "--workers" not in cmd[-1]


def test_dockerignore_excludes_local_state_and_secrets():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", "db.sqlite3", "media", "staticfiles", "test-artifacts", ".env"} <= ignored
