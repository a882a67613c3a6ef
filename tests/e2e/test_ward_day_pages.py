"""Every page a person can reach answers, from the installed platform (CONTRACT.md,
"Installing and packaging"): each link of the front page, and each page of the contract
for a demo ward. A template or static file the wheel left out shows up here as a 5xx."""
from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import requests

WARD = "tn-song-cong"
CONTRACT_PAGES = [
    f"/queue/kiosk/{WARD}", f"/queue/board/{WARD}", f"/queue/counter/{WARD}/quay-1",
    f"/rating/rate/{WARD}/quay-1", "/identity/register", "/identity/login", "/dossier/portal",
]


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("href", "src"):
            if attrs.get(name) and tag in ("a", "link", "script", "img"):
                self.found.append(attrs[name])


def _links(base: str, path: str) -> list[str]:
    parser = _Links()
    parser.feed(requests.get(base + path, timeout=10).text)
    local = []
    for link in parser.found:
        absolute = urljoin(base + path, link)
        if urlparse(absolute).netloc == urlparse(base).netloc:
            local.append(urlparse(absolute)._replace(fragment="").geturl())
    return local


def test_every_page_a_person_can_reach_answers(platform):
    base = platform["base"].rstrip("/")
    front = requests.get(base + "/", timeout=10)
    assert front.status_code == 200
    to_visit = set(_links(base, "/")) | {base + page for page in CONTRACT_PAGES}
    # One level further from the citizen portal and the kiosk: their styles, scripts and pages.
    for page in ("/dossier/portal", f"/queue/kiosk/{WARD}", "/identity/register"):
        to_visit |= set(_links(base, page))
    assert len(to_visit) > 15
    failures = {}
    for url in sorted(to_visit):
        answer = requests.get(url, timeout=15, allow_redirects=True)
        if answer.status_code >= 500:
            failures[url] = answer.status_code
    assert not failures, f"pages answering 5xx: {failures}"
    log = platform["log"].read_text(encoding="utf-8", errors="replace")
    assert "TemplateNotFound" not in log
