"""Serving the APIs: one service's Flask app, or all five under their prefixes on one port
(for one machine). Routes already carry their service prefix, so routing is by the first
path segment with no rewriting — the same rule an Ingress uses."""
from __future__ import annotations

import importlib

from flask import Flask
from werkzeug.wrappers import Response

from .config import SERVICES, Settings


def service_app(service: str, settings: Settings) -> Flask:
    module = importlib.import_module(f"motcua_{service}.api")
    return module.create_app(settings)


class PrefixRouter:
    """WSGI app dispatching /<service>/... to that service's app."""

    def __init__(self, apps: dict[str, Flask], landing=None):
        self.apps = apps
        self.landing = landing

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        first = path.lstrip("/").split("/", 1)[0]
        app = self.apps.get(first)
        if app is not None:
            return app(environ, start_response)
        if path == "/" and self.landing is not None:
            return self.landing(environ, start_response)
        body = ('{"type":"about:blank","title":"Không tìm thấy","status":404,"code":"not_found",'
                '"detail":"No service at this path. Services: /identity /dossier /queue /notify /rating"}')
        return Response(body, status=404, mimetype="application/problem+json")(environ, start_response)


def landing_page(environ, start_response):
    html = """<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Một Cửa</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h1>Bộ phận Một Cửa</h1><ul>
<li><a href="/identity/register">Đăng ký tài khoản công dân</a></li>
<li><a href="/dossier/portal">Cổng dịch vụ công: thủ tục, nộp và tra cứu hồ sơ</a></li>
<li><a href="/dossier/api/v1/procedures">Danh mục thủ tục (JSON)</a></li>
<li><a href="/identity/api/v1/wards">Danh sách phường (JSON)</a></li>
</ul></body></html>"""
    return Response(html, mimetype="text/html")(environ, start_response)


def combined_app(settings: Settings, services=SERVICES) -> PrefixRouter:
    return PrefixRouter({svc: service_app(svc, settings) for svc in services}, landing=landing_page)


def serve(app, host: str, port: int, threads: int = 16, workers: int = 1) -> None:
    """Serve a WSGI app with gunicorn (threads; one process keeps metrics in one registry)."""
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            self.cfg.set("errorlog", "-")
            self.cfg.set("loglevel", "warning")

        def load(self):
            return app

    _Server().run()
