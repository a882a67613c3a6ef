"""Serving the APIs: one service's Flask app, or all five under their prefixes on one port
(for one machine). Routes already carry their service prefix, so routing is by the first
path segment with no rewriting — the same rule an Ingress uses."""
from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from flask import Flask
from werkzeug.wrappers import Response

from motcua_common.config import SERVICES, Settings


def service_modules(services=SERVICES) -> list[str]:
    """The API modules of these services: imported before gunicorn forks (serve's preload)."""
    return [f"motcua_{service}.api" for service in services]


def service_app(service: str, settings: Settings) -> Flask:
    module = importlib.import_module(f"motcua_{service}.api")
    return module.create_app(settings)


class PrefixRouter:
    """WSGI app dispatching /<service>/... to that service's app."""

    def __init__(self, apps: dict[str, Flask], landing=None, api_docs=None):
        self.apps = apps
        self.landing = landing
        self.api_docs = api_docs

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        first = path.lstrip("/").split("/", 1)[0]
        app = self.apps.get(first)
        if app is not None:
            return app(environ, start_response)
        if path == "/" and self.landing is not None:
            return self.landing(environ, start_response)
        if path.rstrip("/") == "/api-docs" and self.api_docs is not None:
            return self.api_docs(environ, start_response)
        body = ('{"type":"about:blank","title":"Không tìm thấy","status":404,"code":"not_found",'
                '"detail":"No service at this path. Services: /identity /dossier /queue /notify /rating"}')
        return Response(body, status=404, mimetype="application/problem+json")(environ, start_response)


def landing_page(ward_ids: list[str], services=SERVICES):
    """The front door of one machine: where the pages and APIs are (no dead links: only the
    services this machine runs — a ward's office runs queue and rating only)."""
    from html import escape

    rows = "".join(
        f"<li>{escape(w)}: <a href='/queue/kiosk/{escape(w)}'>kiosk</a> · <a href='/queue/board/{escape(w)}'>bảng gọi số</a>"
        f" · <a href='/queue/counter/{escape(w)}/quay-1'>quầy 1</a> · <a href='/rating/rate/{escape(w)}/quay-1'>đánh giá quầy 1</a></li>"
        for w in ward_ids)
    wards = f"<h2>Các phường</h2><ul>{rows}</ul>" if rows else (
        "<p>Trang của mỗi phường: /queue/kiosk/&lt;ward_id&gt;, /queue/board/&lt;ward_id&gt;, "
        "/queue/counter/&lt;ward_id&gt;/&lt;counter_id&gt;, /rating/rate/&lt;ward_id&gt;/&lt;counter_id&gt;.</p>")
    lists = " · ".join(link for service, link in (
        ("dossier", '<a href="/dossier/api/v1/procedures">Danh mục thủ tục</a>'),
        ("identity", '<a href="/identity/api/v1/wards">Danh sách phường</a>')) if service in services)
    lists = f"<li>{lists}</li>" if lists else ""
    openapi = " · ".join(f'<a href="/{svc}/api/v1/openapi.json">{svc}</a>' for svc in services)
    # /api-docs is this router's own page (motcua_platform.api_docs), not a service: linked relatively,
    # so the front door's check that every /<prefix> link names a service it runs does not read it
    # as a service called "api".
    reference = '<li><a href="api-docs">Tài liệu API (API reference)</a>: thao tác, quyền gọi, mã trả về</li>'
    citizens = ""
    if "identity" in services and "dossier" in services:
        citizens = ("<h2>Công dân</h2><ul><li><a href='/dossier/portal'>Cổng dịch vụ công: thủ tục, nộp và theo dõi hồ sơ</a>"
                    "</li><li><a href='/identity/register'>Đăng ký tài khoản công dân</a> · "
                    "<a href='/identity/login?next=/dossier/portal'>Đăng nhập</a></li></ul>")
    html = f"""<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Một Cửa</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body style="font-family:sans-serif;max-width:48em;margin:2em auto">
<h1>Bộ phận Một Cửa</h1>{citizens}{wards}<h2>API</h2><ul>{reference}{lists}
<li>OpenAPI: {openapi}</li>
</ul></body></html>"""

    def app(environ, start_response):
        return Response(html, mimetype="text/html")(environ, start_response)

    return app


def combined_app(settings: Settings, services=SERVICES) -> PrefixRouter:
    from motcua_common import demo
    from motcua_platform.api_docs import api_docs_app

    return PrefixRouter({svc: service_app(svc, settings) for svc in services},
                        landing=landing_page(demo.ward_ids() if settings.demo else [], services),
                        api_docs=api_docs_app(services))


def api_processes(env=None) -> int:
    """How many API processes `motcua up` runs (MOTCUA_API_PROCESSES, default 1): each is a
    gunicorn worker on the same port, so a box with N cores can use them all. A ward
    office's box (`--profile edge`) keeps one: its load is one ward's."""
    env = os.environ if env is None else env
    raw = (env.get("MOTCUA_API_PROCESSES") or "1").strip()
    try:
        count = int(raw)
    except ValueError:
        raise ValueError(f"MOTCUA_API_PROCESSES must be a whole number, not {raw!r}") from None
    if not 1 <= count <= 64:
        raise ValueError(f"MOTCUA_API_PROCESSES must be between 1 and 64, not {count}")
    return count


def use_multiprocess_metrics(workers: int) -> str | None:
    """Several API processes answer /metrics in turn: each must show what all of them
    counted, so they keep their counts in files (prometheus-client's multiprocess mode,
    PROMETHEUS_MULTIPROC_DIR) that metrics.render sums. Called before any metric exists
    (the env var decides how prometheus-client stores values when it is imported). The
    files of an earlier run are removed: they would be added to this run's counts."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if workers <= 1 and not path:
        return None
    if "motcua_common.metrics" in sys.modules:
        raise RuntimeError("metrics were defined before the multiprocess mode was chosen")
    if not path:
        path = tempfile.mkdtemp(prefix="motcua-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    os.makedirs(path, exist_ok=True)
    for stale in Path(path).glob("*.db"):
        stale.unlink(missing_ok=True)
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # in case prometheus-client was imported already
    return path


def serve(build: Callable[[], Callable], host: str, port: int, threads: int = 16, workers: int = 1,
          preload: Iterable[str] = ()) -> None:
    """Serve the WSGI app `build()` makes with gunicorn: `workers` processes sharing the
    port, `threads` request threads each.

    The app is built in each worker after the fork, never before: its database and broker
    clients are not fork-safe (a MongoClient opened before a fork can deadlock in the
    child). The modules named in `preload` are imported before the fork, so their code
    pages are shared by the workers rather than loaded once per worker."""
    from gunicorn.app.base import BaseApplication

    if not _is_factory(build):
        # An app built already (one process only: its clients would be shared across forks).
        if workers > 1:
            raise ValueError("several API processes need a function that builds the app in each")
        app = build
        build = lambda: app  # noqa: E731
    multiproc = use_multiprocess_metrics(workers)
    for module in preload:
        importlib.import_module(module)

    def child_exit(_server, worker):
        if multiproc:
            # A dead worker's live gauges no longer count (its counters and histograms do).
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 60)
            # Idle keep-alive connections are closed after this. gunicorn's 2 s default is
            # about the gap between a counter's clicks: a client reusing a connection the
            # server is closing that very moment gets a reset, and a POST is not retried (seen
            # in the 50-ward simulated day). Behind an ingress, longer is what gunicorn advises.
            self.cfg.set("keepalive", 30)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            self.cfg.set("errorlog", "-")
            self.cfg.set("loglevel", "warning")
            self.cfg.set("preload_app", False)
            self.cfg.set("child_exit", child_exit)

        def load(self):
            return build()

    _Server().run()


def _is_factory(candidate) -> bool:
    """A function of no arguments (builds the app), not a WSGI app (environ, start_response)."""
    import inspect

    try:
        inspect.signature(candidate).bind()
    except TypeError:
        return False
    except ValueError:  # no signature to read: a builtin, taken for an app
        return False
    return True
