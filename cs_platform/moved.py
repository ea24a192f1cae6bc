"""Permanent redirects from URLs that were renamed (issue #17 item 6: one name per thing), so bookmarks and
links in emails already sent keep working. The query string is kept; 308 keeps the method, so a form posted
to an old address is posted to the new one rather than turned into a GET."""

from __future__ import annotations

from django.http.response import HttpResponseRedirectBase
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt


class HttpResponsePermanentRedirectKeepMethod(HttpResponseRedirectBase):
    status_code = 308


def moved(name: str):
    """A view answering 308 to the URL named `name`, with the same path arguments and query string. Exempt
    from CSRF because it changes nothing: the target checks the token of a redirected POST."""

    @csrf_exempt
    def redirect_view(request, **kwargs):
        target = reverse(name, kwargs=kwargs)
        query = request.META.get("QUERY_STRING", "")
        return HttpResponsePermanentRedirectKeepMethod(f"{target}?{query}" if query else target)

    redirect_view.moved_to = name  # the URL walks and the isolation matrix recognise these
    return redirect_view
