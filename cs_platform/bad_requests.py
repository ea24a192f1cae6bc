"""Requests refused before any view reads them, and the page that says why.

NUL is the one character PostgreSQL cannot store or compare in text: a query parameter, form field or
cookie holding it made whichever query first used the value fail (`/accounts/?q=%00` answered 500, as
would a session cookie with a NUL in it). No page, form or API has a use for it, so one middleware
refuses it everywhere, before the session is looked up, with a 400 naming the parameter. JSON bodies are
refused by the API's parser (api/parsers.py) with the same rule."""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from cs_platform.bounds import NUL_MESSAGE


class RefusedInput(BadRequest):
    """A 400 about one named input (a query parameter, form field or cookie). Django hands it to the
    URLconf's handler400, which answers in the API's error format under /api/ and with templates/400.html
    elsewhere."""

    def __init__(self, field: str, message: str, *, code: str = "invalid", where: str = "parameter"):
        super().__init__(f"{where} {field!r}: {message}")
        self.field, self.message, self.code, self.where = field, message, code, where


def _nul_key(values: QueryDict | dict) -> str | None:
    lists = values.lists() if isinstance(values, QueryDict) else ((k, [v]) for k, v in values.items())
    for key, items in lists:
        if "\x00" in key or any("\x00" in item for item in items):
            return key.replace("\x00", "\\x00")
    return None


class RefuseNulMiddleware:
    """Refuses NUL in query parameters, urlencoded and multipart form fields (names and values; upload
    file names are cleaned by Django's parser), and cookies. Placed before the session middleware: the
    session cookie is a database key."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if name := _nul_key(request.COOKIES):
            raise RefusedInput(name, NUL_MESSAGE, code="null_characters_not_allowed", where="cookie")
        if name := _nul_key(request.GET):
            raise RefusedInput(name, NUL_MESSAGE, code="null_characters_not_allowed")
        # Only form bodies are parsed here (Django leaves request.POST empty for JSON, which the API's
        # parser checks): the CSRF middleware and the views would parse them anyway.
        if request.method == "POST" and (name := _nul_key(request.POST)):
            raise RefusedInput(name, NUL_MESSAGE, code="null_characters_not_allowed", where="field")
        return self.get_response(request)


def bad_request_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """templates/400.html: what was refused, when it was one named input; a general line otherwise
    (a body over the size limit, a malformed upload, a host not served)."""
    context = {}
    if isinstance(exception, RefusedInput):
        context = {"where": exception.where, "field": exception.field, "message": exception.message}
    return render(request, "400.html", context, status=400)
