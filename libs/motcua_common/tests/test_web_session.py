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


def test_behind_tls_the_cookies_are_host_locked_and_the_browser_told_to_keep_to_https():
    from motcua_common.web_session import SECURE_CSRF_COOKIE, SECURE_SESSION_COOKIE, session_principal, set_session

    app = Flask(__name__)
    with app.test_request_context("/form", base_url="https://motcua.example"):
        response = issue_csrf_cookie(Response()) if csrf_token() else None
        set_session(response, "token", 600)
        cookies = response.headers.getlist("Set-Cookie")
        assert any(c.startswith(f"{SECURE_CSRF_COOKIE}=") and "Secure" in c and "Domain" not in c for c in cookies)
        assert any(c.startswith(f"{SECURE_SESSION_COOKIE}=") and "Secure" in c and "Path=/" in c for c in cookies)
    with app.test_request_context("/form", base_url="http://127.0.0.1:8080"):
        response = issue_csrf_cookie(Response()) if csrf_token() else None
        assert response.headers["Set-Cookie"].startswith(f"{CSRF_COOKIE}=")


def test_a_service_answers_hsts_over_tls_only(settings, verifier):
    from motcua_common.deps import ServiceDeps
    from motcua_common.http import create_service_app
    from motcua_common.mongo import connect, service_database
    from pathlib import Path

    openapi = Path(__file__).resolve().parents[3] / "services" / "rating" / "openapi.yaml"
    deps = ServiceDeps(service="rating", settings=settings, db=service_database(connect(settings), settings, "rating"),
                       verifier=verifier)
    client = create_service_app(deps, [], openapi).test_client()
    assert "Strict-Transport-Security" not in client.get("/rating/healthz").headers
    assert client.get("/rating/healthz", base_url="https://motcua.example").headers[
        "Strict-Transport-Security"].startswith("max-age=31536000")
