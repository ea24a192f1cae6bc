"""A structural reading of an HTML document, for the tests that look for injected markup: the elements
and attributes the browser would build, not substrings of the source.

Built on the standard library's HTML tokenizer, which splits tags, attributes, character references and
<script>/<style> raw text as the HTML standard's tokenizer does for the markup a template can produce.
Escaped text stays text (and is decoded here), so `&lt;script&gt;` is a text node while an unescaped
`<script>` is an element; an attribute value that broke out of its quotes becomes attributes of its own."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl

# Attributes whose value the browser loads or navigates to as a URL.
URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "action",
        "formaction",
        "xlink:href",
        "data",
        "poster",
        "background",
        "cite",
        "longdesc",
        "lowsrc",
        "dynsrc",
        "ping",
        "manifest",
        "codebase",
        "srcset",
        "imagesrcset",
    }
)
# URL schemes that run script (or an HTML document of their own) in the page's origin when followed.
SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:text/html", "data:image/svg+xml")
# <script type> values that the browser executes; anything else (application/json...) is a data block.
SCRIPT_TYPES = frozenset(
    {
        "",
        "text/javascript",
        "application/javascript",
        "module",
        "text/ecmascript",
        "application/ecmascript",
        "text/jscript",
        "text/livescript",
        "application/x-javascript",
        "text/x-javascript",
    }
)
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


def script_url(value: str) -> bool:
    """Whether a URL attribute's value would run script, read as the URL parser reads it: leading and
    trailing C0 controls and spaces dropped, tabs and newlines removed anywhere, scheme case-insensitive."""
    cleaned = re.sub(r"[\t\n\r]", "", value).strip(
        "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
        "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c"
        "\x1d\x1e\x1f "
    )
    return cleaned.lower().startswith(SCRIPT_SCHEMES)


@dataclasses.dataclass
class Script:
    attrs: dict[str, str]
    text: str

    @property
    def executable(self) -> bool:
        return self.attrs.get("type", "").strip().lower() in SCRIPT_TYPES


@dataclasses.dataclass
class Document:
    tags: list[tuple[str, dict[str, str]]] = dataclasses.field(default_factory=list)
    handlers: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (tag, on* attribute, value)
    script_urls: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (tag, attribute, value)
    scripts: list[Script] = dataclasses.field(default_factory=list)
    text: list[str] = dataclasses.field(default_factory=list)  # decoded text nodes, outside <script>/<style>
    attribute_values: list[str] = dataclasses.field(default_factory=list)  # decoded
    frames: list[Document] = dataclasses.field(default_factory=list)  # <iframe srcdoc> documents
    # Names the page itself sends back in a query string: fields of its GET forms, keys of its "?..." links.
    query_names: set[str] = dataclasses.field(default_factory=set)
    _elements: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)  # (tag, its text chunks)

    def texts_of(self, tag: str) -> list[str]:
        """The text of each `tag` element, in document order."""
        return ["".join(chunks) for name, chunks in self._elements if name == tag]

    def problems(self, markers: tuple[str, ...] = ()) -> list[str]:
        """What would run in a browser: inline event handlers, script URLs, executable scripts holding
        one of `markers`, data blocks (json_script) that are not pure JSON or hold a raw "<" (json_script
        escapes it, so markup can never close the block), and the same in every srcdoc frame."""
        found = [f"<{tag} {name}={value!r}>" for tag, name, value in self.handlers]
        found += [f"<{tag} {name}={value!r}>" for tag, name, value in self.script_urls]
        for script in self.scripts:
            if script.executable:
                hits = [marker for marker in markers if marker in script.text]
                if hits:
                    found.append(f"<script> whose code holds {hits}: {script.text[:120]!r}")
            else:
                kind = f"<script type={script.attrs.get('type')!r}> data block"
                try:
                    json.loads(script.text)
                except ValueError:
                    found.append(f"{kind} is not JSON: {script.text[:120]!r}")
                if "<" in script.text:
                    found.append(f"{kind} holds a raw '<'")
        for frame in self.frames:
            found += [f"in <iframe srcdoc>: {problem}" for problem in frame.problems(markers)]
        return found


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.document = Document()
        self._open: list[tuple[str, list[str]]] = []
        self._raw: tuple[str, dict[str, str], list[str]] | None = None  # inside <script> or <style>
        self._form_methods: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        doc = self.document
        doc.tags.append((tag, values))
        for name, value in values.items():
            doc.attribute_values.append(value)
            if name.startswith("on"):
                doc.handlers.append((tag, name, value))
            if name in URL_ATTRIBUTES and script_url(value):
                doc.script_urls.append((tag, name, value))
            if (
                tag == "meta"
                and name == "content"
                and "url=" in value.lower()
                and script_url(value.lower().split("url=", 1)[1].strip("'\" "))
            ):
                doc.script_urls.append((tag, name, value))
        if tag == "iframe" and "srcdoc" in values:
            doc.frames.append(parse_html(values["srcdoc"]))
        if tag == "form":
            self._form_methods.append(values.get("method", "get").lower())
        elif tag in ("input", "select", "textarea") and values.get("name") and self._form_methods[-1:] == ["get"]:
            doc.query_names.add(values["name"])
        if tag == "a" and values.get("href", "").startswith("?"):
            doc.query_names.update(
                key for key, _ in parse_qsl(values["href"][1:].split("#")[0], keep_blank_values=True)
            )
        if tag in ("script", "style"):
            self._raw = (tag, values, [])
        elif tag not in VOID:
            element = (tag, [])
            self._open.append(element)
            doc._elements.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID and tag not in ("script", "style"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._form_methods:
            self._form_methods.pop()
        if self._raw is not None and tag == self._raw[0]:
            name, attrs, chunks = self._raw
            if name == "script":
                self.document.scripts.append(Script(attrs, "".join(chunks)))
            self._raw = None
            return
        for index in range(len(self._open) - 1, -1, -1):  # close up to the matching element
            if self._open[index][0] == tag:
                del self._open[index:]
                break

    def handle_data(self, data: str) -> None:
        if self._raw is not None:
            self._raw[2].append(data)
            return
        self.document.text.append(data)
        for _, chunks in self._open:
            chunks.append(data)


def parse_html(source: str) -> Document:
    reader = _Reader()
    reader.feed(source)
    reader.close()
    if reader._raw is not None and reader._raw[0] == "script":  # an unterminated <script> still runs
        reader.document.scripts.append(Script(reader._raw[1], "".join(reader._raw[2])))
    return reader.document
