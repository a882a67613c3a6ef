"""Reading a served HTML page in tests: its inputs, selects, the error shown beside each
field (`data-error-for`), links, forms and text — and a failure if any tag is not closed in
order, so every page the tests touch is well formed."""
from __future__ import annotations

from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.inputs: dict[str, dict] = {}
        self.options: dict[str, list[str]] = {}          # select name -> option values
        self.selected: dict[str, str | None] = {}        # select name -> the selected value
        self.errors: dict[str, str] = {}                 # field -> the error shown beside it
        self.links: list[str] = []
        self.forms: list[dict] = []
        self.text_parts: list[str] = []
        self._select: str | None = None
        self._error_field: str | None = None
        self.feed(html)
        self.close()
        assert self.stack == [], f"unclosed tags: {self.stack}"
        self.text = " ".join(" ".join(self.text_parts).split())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "input":
            self.inputs[attrs.get("name")] = attrs
        elif tag == "select":
            self._select = attrs.get("name")
            self.options.setdefault(self._select, [])
            self.selected.setdefault(self._select, None)
        elif tag == "option":
            self.options.setdefault(self._select, []).append(attrs.get("value"))
            if "selected" in attrs:
                self.selected[self._select] = attrs.get("value")
        elif tag == "a":
            self.links.append(attrs.get("href"))
        elif tag == "form":
            self.forms.append(attrs)
        if "data-error-for" in attrs:
            self._error_field = attrs["data-error-for"]
            self.errors[self._error_field] = ""

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        if tag == "p":
            self._error_field = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        self.text_parts.append(data)
        if self._error_field:
            self.errors[self._error_field] += data


def page_of(response, csp: bool = True) -> Page:
    """A Flask test response as a Page; it must be HTML, and carry the pages' CSP."""
    assert response.mimetype == "text/html", response.data[:300]
    if csp:
        assert "script-src 'self' 'nonce-" in response.headers["Content-Security-Policy"]
    return Page(response.get_data(as_text=True))
