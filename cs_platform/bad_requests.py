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


def _decodes_text(encoding: str) -> bool:
    try:
        str(b"a=1", encoding, "replace")  # as Django's QueryDict decodes
    except (LookupError, ValueError):
        return False
    return True


class RefuseNulMiddleware:
    """Refuses NUL in query parameters, cookies and the urlencoded or multipart form fields of the pages
    (names and values; upload file names are cleaned by Django's parser), and a Content-Type charset
    that is not a text encoding. Placed before the session middleware: the session cookie is a database
    key."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.encoding and not _decodes_text(request.encoding):
            # Django accepts any codec Python knows as a Content-Type charset, and rot13 or base64 are not
            # text encodings: reading the query string or form with them raised (500).
            raise RefusedInput("Content-Type", f"{request.encoding!r} is not a text encoding.", where="header")
        if name := _nul_key(request.COOKIES):
            raise RefusedInput(name, NUL_MESSAGE, code="null_characters_not_allowed", where="cookie")
        if name := _nul_key(request.GET):
            raise RefusedInput(name, NUL_MESSAGE, code="null_characters_not_allowed")
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        # A form body is read exactly when the CSRF middleware reads it: for views that are not
        # csrf_exempt. The API's views are (it parses JSON only, and its parser refuses NUL): reading a
        # multipart body here would leave DRF an exhausted stream, an empty body instead of its 415.
        if request.method == "POST" and not getattr(view_func, "csrf_exempt", False):
            if name := _nul_key(request.POST):
                raise RefusedInput(name, NUL_MESSAGE, code="null_characters_not_allowed", where="field")


def bad_request_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """templates/400.html: what was refused, when it was one named input; a general line otherwise
    (a body over the size limit, a malformed upload, a host not served)."""
    context = {}
    if isinstance(exception, RefusedInput):
        context = {"where": exception.where, "field": exception.field, "message": exception.message}
    return render(request, "400.html", context, status=400)
