# syntax=docker/dockerfile:1
# Production image for the web app (gunicorn), the Celery worker and Celery beat.
# Build:  docker build -t cs-platform .     Run the whole stack: docker compose up -d (see .env.example)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first so this layer is cached until requirements/constraints change.
# constraints.txt pins every package (transitive ones too) to an exact version.
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

COPY . .

# Static files are collected into the image (served by WhiteNoise). These variables exist only for
# this RUN: the image carries no SECRET_KEY, and the real one comes from the environment at run time.
# The build key signs nothing, but production mode refuses any key under 50 characters.
RUN DEBUG=false CS_ALLOW_INSECURE_DEFAULTS=1 \
    SECRET_KEY=build-only-not-secret-collectstatic-signs-nothing-with-it-000 \
    python manage.py collectstatic --noinput

# Run as an unprivileged user. Code and static files stay root-owned (read-only for the app);
# only the media directory is writable.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /app/media \
    && chown app:app /app/media
USER app

EXPOSE 8000

# Workers, threads, timeouts and recycling come from gunicorn.conf.py (GUNICORN_* variables, README "Sizing").
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "cs_platform.wsgi:application"]
