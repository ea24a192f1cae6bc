"""The API's one body parser: JSON, bounded (cs_platform.bounds.json_loads). Python's json recurses once
per level, so a body nested thousands deep answered 500 (RecursionError); a string holding NUL or a lone
surrogate reached PostgreSQL, which cannot store either. Both are a 400 in the error format now: a body
nested too deep (or not JSON) is a `parse_error`, a bad string an `invalid` naming its field path
(`rows.3.comment`)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail
from rest_framework.parsers import JSONParser

from cs_platform.bounds import JsonRefused, json_loads


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads(stream.read().decode(encoding))
        except JsonRefused as exc:
            if exc.path is None:
                raise exceptions.ParseError(exc.message) from None
            raise exceptions.ValidationError({exc.path: [ErrorDetail(exc.message, code=exc.code)]}) from None
        except (ValueError, LookupError) as exc:  # not JSON, not in the declared charset, or no text charset
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
