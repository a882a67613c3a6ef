"""/api-docs on the one-machine combined app: the API reference, rendered on the server from
the five OpenAPI documents, linked from the front page, with no script and nothing fetched
from elsewhere."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from werkzeug.test import Client

from motcua_platform import api_docs
from motcua_platform.apiserver import PrefixRouter, combined_app, landing_page

SERVICES = ("identity", "dossier", "queue", "notify", "rating")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.links, self.ids, self.text = [], [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "a":
            self.links.append(attrs.get("href"))
        if "id" in attrs:
            self.ids.add(attrs["id"])

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def html():
    router = PrefixRouter({}, landing=landing_page([]), api_docs=api_docs.api_docs_app(SERVICES))
    response = Client(router).get("/api-docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "script-src" not in response.headers["Content-Security-Policy"]
    return response.get_data(as_text=True)


def test_every_operation_of_every_document_is_on_the_page(html):
    page = _parse(html)
    for service in SERVICES:
        doc = api_docs.load_document(service)
        for _, method, path, op, _ in api_docs.operations(doc):
            assert f"{service}-{op['operationId']}" in page.ids, f"{method.upper()} {path}"
            assert f"<code>{path.replace('&', '&amp;')}</code>" in html
        assert f"/{service}/api/v1/openapi.json" in page.links
    # Full paths: the document's server joined to its paths; health and keys have their own.
    assert "<code>/dossier/api/v1/dossiers/{dossier_id}</code>" in html
    assert "<code>/identity/.well-known/jwks.json</code>" in html
    assert "<code>/notify/healthz</code>" in html


def test_grouped_by_tag_with_who_may_call_and_the_codes(html):
    text = " ".join(_parse(html).text)
    assert "Tài liệu API (API reference)" in text
    for heading in ("Phương thức (method)", "Đường dẫn (path)", "Tóm tắt (summary)", "Ai được gọi (who may call)",
                    "Yêu cầu (request)", "Mã trả về (responses)", "Nhóm (tag)"):
        assert heading in text
    dossier = html[html.index("<section id='dossier'>"):]
    dossier = dossier[:dossier.index("</section>")]
    assert re.search(r"Nhóm \(tag\) <code>payments</code>.*?/dossier/api/v1/payments/callback", dossier, re.S)
    # Who may call: the security requirement and the operation's description.
    lookup = dossier[dossier.index("dossier-lookupDossier"):]
    lookup = lookup[:lookup.index("</tr>")]
    assert "Không cần đăng nhập (no authentication)" in lookup and "<code>200</code>" in lookup
    assert "Cần đăng nhập (bearer JWT)" in dossier


def test_no_script_and_nothing_from_elsewhere(html):
    page = _parse(html)
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert all(link.startswith(("/", "#")) for link in page.links), [l for l in page.links if not l.startswith(("/", "#"))]
    assert "http://" not in html and "https://" not in html.replace("https://motcua.gov.vn/problems/", "")


def test_served_on_the_combined_app_and_linked_from_its_front_page(settings):
    client = Client(combined_app(settings))
    front = client.get("/").get_data(as_text=True)
    assert 'href="api-docs"' in front  # relative to /, so /api-docs
    response = client.get("/api-docs")
    assert response.status_code == 200
    assert "/rating/api/v1/openapi.json" in response.get_data(as_text=True)


def test_an_office_lists_only_the_services_it_runs():
    html = api_docs.render(("queue", "rating"))
    assert "<section id='queue'>" in html and "<section id='dossier'>" not in html
