"""What a rendered page lets a user send back: the query parameters of its links and GET forms, and the
fields of its POST forms, read from the HTML with the standard library's parser (no browser needed).

A `Target` is one (method, path) a page points at, with the fields seen for it and, per field, the kind
of value it takes (from the input's type or a sample value) and a value that the page itself would send,
so a test can make one field hostile and keep the others as the page filled them."""

from __future__ import annotations

import dataclasses
import datetime
import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit


@dataclasses.dataclass
class Field:
    kind: str  # text, number, date, datetime, week, choice, multi, checkbox, file
    baseline: list[str]  # what the page would send ([] = leave the field out)
    options: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Target:
    method: str  # "get" or "post"
    path: str
    source: str  # the page the form or link was found on
    multipart: bool = False
    fields: dict[str, Field] = dataclasses.field(default_factory=dict)

    def merge(self, name: str, field: Field) -> None:
        known = self.fields.get(name)
        if known is None:
            self.fields[name] = field
            return
        known.options = sorted(set(known.options) | set(field.options))
        if not known.baseline:
            known.baseline = field.baseline
        if known.kind in ("checkbox", "choice") and field.kind in ("checkbox", "choice") and field.kind != known.kind:
            known.kind = "multi"


_SAMPLE_KINDS = [
    (re.compile(r"^\d{4}-W\d{2}$"), "week"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"), "datetime"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "date"),
    (re.compile(r"^-?\d+$"), "number"),
]
_INPUT_KINDS = {"date": "date", "datetime-local": "datetime", "number": "number", "week": "week", "file": "file"}


def kind_of_sample(value: str) -> str:
    return next((kind for pattern, kind in _SAMPLE_KINDS if pattern.match(value)), "text")


def default_value(kind: str, name: str) -> str:
    """A plausible value for an empty field, so the page's other checks pass and a hostile neighbour
    gets as far into the code as it can."""
    today = datetime.date.today()
    if kind == "date":
        return today.isoformat()
    if kind == "datetime":
        return (datetime.datetime.now() - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    if kind == "number":
        return "1"
    if kind == "week":
        return f"{today.isocalendar().year}-W{today.isocalendar().week:02d}"
    if "url" in name:
        return "https://hooks.example.test/hostile"
    if "mail" in name:
        return "someone@example.test"
    return "Hostile input test"


class _Scanner(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.links: list[str] = []
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: tuple[str, list[str], list[str], bool] | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = {
                "method": (a.get("method") or "get").lower(),
                "action": a.get("action") or "",
                "multipart": "multipart" in (a.get("enctype") or ""),
                "fields": [],
            }
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag in ("input", "button") and a.get("name"):
            kind = a.get("type", "text" if tag == "input" else "submit").lower()
            if kind in ("submit", "button", "reset", "image") and tag == "input":
                return
            if kind in ("checkbox", "radio"):
                checked = "checked" in a
                self._form["fields"].append(
                    (a["name"], "checkbox", [a.get("value", "on")] if checked else [], [a.get("value", "on")])
                )
            else:
                self._form["fields"].append(
                    (a["name"], _INPUT_KINDS.get(kind, "text"), [a["value"]] if a.get("value") else [], [])
                )
        elif tag == "select" and a.get("name"):
            self._select = (a["name"], [], [], "multiple" in a)
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._select[1].append(value)
            if "selected" in a:
                self._select[2].append(value)
        elif tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], []

    def handle_data(self, data):
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None and self._form is not None:
            name, options, selected, multiple = self._select
            if not selected and not multiple and options:
                # A real choice when there is one (a required owner), else the empty one ("— none —").
                selected = [next((o for o in options if o), "")]
            self._form["fields"].append((name, "multi" if multiple else "choice", selected, options))
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            text = "".join(self._text)
            self._form["fields"].append((self._textarea, "text", [text] if text else [], []))
            self._textarea = None


def scan(page_url: str, html: str, targets: dict[tuple[str, str], Target], *, internal) -> None:
    """Add what `html` (rendered at `page_url`) links to and posts to into `targets`, keyed by
    (method, path). `internal(path)` says whether a path is one of ours."""
    scanner = _Scanner(page_url)
    scanner.feed(html)
    for href in scanner.links:
        url = urlsplit(urljoin(page_url, href))
        if url.scheme not in ("http", "") or not internal(url.path):
            continue
        target = targets.setdefault(("get", url.path), Target("get", url.path, page_url))
        for name, value in parse_qsl(url.query, keep_blank_values=True):
            target.merge(name, Field(kind_of_sample(value), [value] if value else []))
    for form in scanner.forms:
        url = urlsplit(urljoin(page_url, form["action"] or page_url))
        if not internal(url.path):
            continue
        key = (form["method"], url.path)
        target = targets.setdefault(key, Target(form["method"], url.path, page_url, multipart=form["multipart"]))
        for name, kind, baseline, options in form["fields"]:
            if name == "csrfmiddlewaretoken":
                continue
            if not baseline and kind not in ("checkbox", "multi", "choice"):
                baseline = [default_value(kind, name)]
            target.merge(name, Field(kind, baseline, options))
