"""The identity pages will be served under a strict Content-Security-Policy: their templates hold no
inline script, no inline event handler, no javascript: URL and no inline style."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

TEMPLATES = Path(settings.BASE_DIR) / "templates"
PAGES = sorted((TEMPLATES / "identity").glob("*.html")) + [TEMPLATES / "registration" / "login.html"]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_inline_script_handler_or_style(path):
    source = path.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", source), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", source), "inline event handler"
    assert "javascript:" not in source.lower()
    assert not re.search(r"\sstyle\s*=", source) and "<style" not in source, "inline style"


def test_every_identity_page_is_checked():
    assert len(PAGES) >= 14
