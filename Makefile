# Two commands for a newcomer: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PGHOST ?= 127.0.0.1
PGPORT ?= 5432
PG_OWNER ?= postgres
TEST_DB ?= cs_platform
TEST_APP_ROLE ?= cs_app_test
# Redis databases of the suite's cache and Celery broker; two checkouts testing at once need their own.
REDIS_CACHE_DB ?= 15
REDIS_BROKER_DB ?= 14

# The suite runs as a non-owner, non-BYPASSRLS role so Row-Level Security is really exercised;
# migrations and test-database creation run as the owner. SECRET_KEY and AUDIT_SIGNING_KEY (base64 of
# SHA-256("cs-platform test-only audit signing key")) are test-only values, never for a deployment.
TEST_ENV := DEBUG=false \
	SECRET_KEY=test-only-secret-key-never-used-in-production-0123456789abcdef \
	AUDIT_SIGNING_KEY=9wdkpBEjPbDIIwy3M4dplUk0OkW53AUZDPn3Qo983bM= \
	SECURE_SSL_REDIRECT=false SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false STATIC_MANIFEST=0 \
	DATABASE_URL=postgres://$(TEST_APP_ROLE)@$(PGHOST):$(PGPORT)/$(TEST_DB) \
	DATABASE_OWNER_URL=postgres://$(PG_OWNER)@$(PGHOST):$(PGPORT)/$(TEST_DB) \
	REDIS_URL=redis://127.0.0.1:6379/$(REDIS_CACHE_DB) CELERY_BROKER_URL=redis://127.0.0.1:6379/$(REDIS_BROKER_DB) \
	EMAIL_HOST=127.0.0.1 EMAIL_PORT=1025

DEMO_ENV := DEBUG=true

.PHONY: install demo test lint format bench migrations-check clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py seed_demo
	$(DEMO_ENV) $(PY) manage.py recompute --all --backfill-weeks 13
	@echo "Open http://127.0.0.1:8000/ and log in with a demo account listed above (README.md)."
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:8000

test: install
	$(TEST_ENV) $(PY) scripts/ensure_database.py
	$(TEST_ENV) $(PY) manage.py create_app_role
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	mkdir -p staticfiles
	$(TEST_ENV) $(PY) -m pytest -q --durations=15 $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: install
	@if ls tests/perf/bench_*.py >/dev/null 2>&1; then \
		for f in tests/perf/bench_*.py; do $(TEST_ENV) $(PY) $$f || exit 1; done; \
	else echo "No benchmarks yet (tests/perf/bench_*.py)."; fi

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles test-artifacts
