"""The API's documentation pages, Swagger UI and Redoc, under the site's Content-Security-Policy.

Both are drf-spectacular's views on drf-spectacular-sidecar's files, so nothing loads from a CDN. Our
templates (templates/api/) replace the pages' <head>: drf-spectacular's has an inline <style> (and, for
Redoc, Google Fonts links); ours link a stylesheet from our static files instead. Swagger UI's start-up
script is inline in drf-spectacular's page; the split view serves it from its own URL
(/api/docs/?script=), so the page runs no inline script at all.
"""

from __future__ import annotations

from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


class SwaggerDocsView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"


# What Redoc needs beyond the site's policy, on this page only:
# - worker-src blob: Redoc runs its search index in a Web Worker it starts from a blob: URL (without
#   worker-src the browser falls back to script-src, which has no blob:);
# - two style hashes: while the bundle loads, before static/js/redoc_init.js can hand Redoc the nonce,
#   its style-loader adds perfect-scrollbar's CSS (the sidebar's scrollbars) as a <style> element,
#   first empty, then filled. The hashes are those two contents in drf-spectacular-sidecar's pinned
#   Redoc bundle; after an upgrade tests/browser/test_csp.py reports the new hash to put here.
REDOC_STYLE_HASHES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # the empty element
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",  # perfect-scrollbar's CSS
]


@method_decorator(csp_update({"worker-src": ["blob:"], "style-src": REDOC_STYLE_HASHES}), name="get")
class RedocDocsView(SpectacularRedocView):
    template_name = "api/redoc.html"
