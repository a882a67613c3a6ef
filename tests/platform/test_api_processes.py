"""Several API processes on one port (apiserver.serve with workers > 1): each builds its own
app after gunicorn's fork, and /metrics counts what all of them did, whichever answers."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from motcua_platform.apiserver import api_processes
from motcua_platform.embedded import free_port

SERVER = textwrap.dedent("""
    import os, sys
    from motcua_platform.apiserver import serve

    def build():
        from flask import Flask
        from motcua_common import metrics

        built_in = os.getpid()
        app = Flask("probe")
        metrics.instrument_flask(app, "probe")

        @app.get("/who")
        def who():
            return {"built_in": built_in, "answered_by": os.getpid()}

        @app.get("/metrics")
        def scrape():
            body, content_type = metrics.render()
            return body, 200, {"Content-Type": content_type}

        return app

    serve(build, "127.0.0.1", int(sys.argv[1]), threads=2, workers=2)
""")


@pytest.fixture
def two_processes(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{base}/who", timeout=2)
            break
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("the server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(20)


def test_each_process_builds_its_own_app_and_metrics_count_them_all(two_processes):
    base = two_processes
    seen = set()
    asked = 0
    deadline = time.monotonic() + 30
    while (len(seen) < 2 or asked < 40) and time.monotonic() < deadline:
        # A new connection each time: the kernel hands connections to either process.
        answer = requests.get(f"{base}/who", timeout=10, headers={"Connection": "close"}).json()
        asked += 1
        assert answer["built_in"] == answer["answered_by"], "the app was built before the fork"
        seen.add(answer["answered_by"])
    assert len(seen) == 2, f"{asked} requests all answered by one process"
    for _ in range(4):  # whichever process answers the scrape counts both processes' requests
        text = requests.get(f"{base}/metrics", timeout=10, headers={"Connection": "close"}).text
        counted = sum(float(v) for v in re.findall(r'motcua_http_requests_total\{[^}]*route="/who"[^}]*\} (\S+)', text))
        assert counted >= asked


def test_the_number_of_api_processes_is_a_setting():
    assert api_processes({}) == 1
    assert api_processes({"MOTCUA_API_PROCESSES": "4"}) == 4
    for wrong in ("0", "two", "100"):
        with pytest.raises(ValueError, match="MOTCUA_API_PROCESSES"):
            api_processes({"MOTCUA_API_PROCESSES": wrong})


def test_the_office_declares_the_filings_exchange_as_dossier_does_without_importing_dossier():
    """edge.py keeps its own copy of office_filings' declaration: importing dossier's domain
    cost every office process 70 MB (the edge box's memory)."""
    import subprocess as sp

    from motcua_dossier import office_filings
    from motcua_platform import edge

    class Recording:
        def __init__(self):
            self.calls = []

        def __getattr__(self, name):
            return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

    ours, theirs = Recording(), Recording()
    edge.declare_filings(ours)
    office_filings.declare(theirs)
    assert ours.calls == theirs.calls
    # What the office's supervisor, API and courier import holds no result signing (pyHanko):
    # importing it made the edge box's idle processes 160 MiB larger (bench/RESULTS.md).
    loaded = sp.run([sys.executable, "-c", "import sys, motcua_platform.edge, motcua_platform.office_desk, "
                     "motcua_platform.office_intake; print(sorted(m for m in ('pyhanko', "
                     "'motcua_dossier.portal') if m in sys.modules))"],
                    capture_output=True, text=True, timeout=60).stdout.strip()
    assert loaded == "[]"


def test_the_supervisor_prepares_the_databases_in_a_child_process(monkeypatch, tmp_path):
    """The bootstraps import every service's code: done in a child, the supervisor that runs
    all day stays small. A child that finds the broker or database gone exits with its code."""
    from motcua_platform import launcher
    from motcua_platform.preflight import EXIT_UNAVAILABLE

    where = tmp_path / "pid"
    monkeypatch.setattr(launcher, "_prepare_services", lambda *args: where.write_text(str(os.getpid())))
    platform = launcher.Platform(port=0, demo=True, services=("queue",))
    platform._prepare(settings=None)
    assert int(where.read_text()) != os.getpid()

    monkeypatch.setattr(launcher, "_prepare_services", lambda *args: sys.exit(EXIT_UNAVAILABLE))
    with pytest.raises(SystemExit) as stopped:
        platform._prepare(settings=None)
    assert stopped.value.code == EXIT_UNAVAILABLE
