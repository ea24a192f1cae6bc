"""What "the shared cache (Redis) is unavailable" looks like to the code that uses it.

redis-py's errors (refused, timed out, reset, read-only replica...) and the socket errors a client may let
through. Anything else raised by a cache call is a bug and stays one. Callers decide what an outage
means for them: the API's budgets fail open or closed (api.throttling), one-time forms and password
resets refuse with a clear message rather than a 500."""

from __future__ import annotations

from redis.exceptions import RedisError

CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
