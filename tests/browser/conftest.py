"""Browser tests: `motcua up --demo` as a subprocess (its own RabbitMQ vhost, the embedded
database), driven by Playwright on Debian's chromium.

Screenshots go to the test session's tmp folder and are copied to /tmp/motcua-screenshots/
so that people can look at them."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import requests

from motcua_platform.embedded import free_port
from motcua_testing.fixtures import RunningPlatform, create_vhost, delete_vhost

CHROMIUM = "/usr/bin/chromium"
SHOTS_COPY = Path("/tmp/motcua-screenshots")
ADMIN_PASSWORD = "quan-tri-browser-2026"


@pytest.fixture(scope="module")
def sms_gateway():
    """Where the platform's SMS go: the tests read the phone's one-time code there."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
    from sms_gateway import RecordingGateway

    with RecordingGateway() as gateway:
        yield gateway


@pytest.fixture(scope="module")
def platform(tmp_path_factory, sms_gateway):
    vhost = f"motcua-browser-{uuid.uuid4().hex[:8]}"
    amqp_url = create_vhost(vhost)
    port = free_port()
    data_dir = tmp_path_factory.mktemp("motcua-browser-data")
    log_path = data_dir / "platform.log"
    env = dict(os.environ, AMQP_URL=amqp_url, MOTCUA_DATA_DIR=str(data_dir), MOTCUA_RELAY_POLL_SECONDS="0.1",
               SMS_GATEWAY_URL=sms_gateway.url, MOTCUA_ADMIN_PASSWORD=ADMIN_PASSWORD)
    env.pop("MONGO_URL", None)
    running = RunningPlatform(env, log_path, port=port)
    try:
        ready = running.start()
    except RuntimeError as exc:
        delete_vhost(vhost)
        pytest.fail(str(exc))
    yield ready
    running.stop()
    delete_vhost(vhost)


@pytest.fixture(scope="module")
def chromium():
    """Module-scoped, never session-scoped: Playwright's sync API keeps an asyncio loop
    running in this thread while it is open, which would break later tests that run one."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium):
    """open_page(viewport, javascript=True) -> a page in a fresh browser context (its own
    cookies and sessionStorage), closed after the test."""
    contexts = []

    def make(viewport: dict, javascript: bool = True):
        context = chromium.new_context(viewport=viewport, locale="vi-VN", java_script_enabled=javascript)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory):
    """shots(page, name): a full-page PNG in the session's tmp folder and in /tmp/motcua-screenshots/."""
    folder = tmp_path_factory.mktemp("screenshots")
    SHOTS_COPY.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shutil.copy(path, SHOTS_COPY / path.name)
        return path

    return take


@pytest.fixture(scope="module")
def officer_headers(platform):
    response = requests.post(f"{platform}/identity/api/v1/sessions", timeout=30,
                             json={"username": "canbo.songcong", "password": "MotCua-demo-2026"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def admin_headers(platform):
    """The platform administrator, who pairs devices (a rating screen) in any ward."""
    response = requests.post(f"{platform}/identity/api/v1/sessions", timeout=30,
                             json={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def leader_headers(platform):
    """The ward's leader, who alone approves and signs results."""
    response = requests.post(f"{platform}/identity/api/v1/sessions", timeout=30,
                             json={"username": "lanhdao.songcong", "password": "MotCua-demo-2026"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
