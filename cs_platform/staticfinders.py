"""plotly.js served from our own static files, taken from the pinned `plotly` Python package.

Nothing may load from a CDN, and committing a 4.6 MB minified file would let it drift from the
pinned package; this finder exposes exactly one file of the package as `vendor/plotly.min.js`, so
runserver serves it and collectstatic copies it like any other static file."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PLOTLY_PATH = "vendor/plotly.min.js"


def _package_data() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data"


class VendorFinder(BaseFinder):
    def check(self, **kwargs):
        if not (_package_data() / "plotly.min.js").is_file():
            return [Error("plotly.min.js is missing from the installed plotly package.", id="cs_platform.E010")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs):
        if path != PLOTLY_PATH:
            return [] if find_all else None
        found = str(_package_data() / "plotly.min.js")
        return [found] if find_all else found

    def list(self, ignore_patterns):
        storage = FileSystemStorage(location=str(_package_data()))
        # collectstatic copies `plotly.min.js` from this storage to `vendor/plotly.min.js`.
        storage.prefix = "vendor"
        yield "plotly.min.js", storage
