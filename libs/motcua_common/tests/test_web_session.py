"""The web session helpers: where `next=` may send a citizen, and the CSRF double submit."""
from __future__ import annotations

import pytest
from flask import Flask, Response

from motcua_common.web_session import (
    CSRF_COOKIE,
    CsrfRefused,
    check_csrf,
    csrf_token,
    issue_csrf_cookie,
    local_path,
)


@pytest.mark.parametrize("target, expected", [
    ("/dossier/portal/ho-so", "/dossier/portal/ho-so"),
    (None, "/home"), ("", "/home"), ("https://evil.example/", "/home"), ("//evil.example/x", "/home"),
    ("/\\evil.example", "/home"), ("javascript:alert(1)", "/home"), ("portal", "/home"),
    # Browsers drop tabs and line breaks: "/\t/evil.example" is "//evil.example" to them.
    ("/\t/evil.example", "/home"), ("/\n/evil.example", "/home"), ("/\r\n/evil.example", "/home"),
    ("/ /evil.example", "/home"), ("/\x00/x", "/home"), ("/dossier/portal?q=a b", "/home"),
    ("/dossier/portal?q=song%20cong#top", "/dossier/portal?q=song%20cong#top"),
])
def test_next_only_leads_to_a_path_on_this_site(target, expected):
    assert local_path(target, "/home") == expected


def test_a_form_post_needs_the_token_of_its_own_cookie():
    app = Flask(__name__)
    with app.test_request_context("/form"):
        token = csrf_token()
        response = issue_csrf_cookie(Response())
        assert f"{CSRF_COOKIE}={token}" in response.headers["Set-Cookie"]
        assert "HttpOnly" in response.headers["Set-Cookie"] and "SameSite=Strict" in response.headers["Set-Cookie"]
    with app.test_request_context("/form", method="POST", data={"csrf_token": token},
                                  headers={"Cookie": f"{CSRF_COOKIE}={token}"}):
        check_csrf()
    for data, cookie in (({"csrf_token": token}, ""), ({}, f"{CSRF_COOKIE}={token}"),
                         ({"csrf_token": "other"}, f"{CSRF_COOKIE}={token}")):
        with app.test_request_context("/form", method="POST", data=data, headers={"Cookie": cookie}), \
                pytest.raises(CsrfRefused):
            check_csrf()
