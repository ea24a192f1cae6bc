"""The suite runs against real services: Redis is the cache and the Celery broker."""

import uuid

from django.conf import settings
from django.core.cache import cache


def test_the_cache_is_redis_and_round_trips():
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    key = f"probe-{uuid.uuid4()}"
    cache.set(key, {"value": 42}, timeout=30)
    assert cache.get(key) == {"value": 42}
    cache.delete(key)


def test_celery_uses_the_configured_broker_and_is_not_eager():
    from cs_platform.celery import app

    assert app.conf.broker_url == settings.CELERY_BROKER_URL
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert not app.conf.task_always_eager
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
