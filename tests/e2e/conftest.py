"""The platform under test, shared by every module of tests/e2e: one `motcua up --demo`
subprocess on its own RabbitMQ vhost and data dir, with a recording SMS gateway."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from motcua_platform.embedded import free_port
from motcua_testing.fixtures import RunningPlatform, create_vhost, delete_vhost

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from sms_gateway import RecordingGateway  # noqa: E402

SMS_INBOUND_TOKEN = "e2e-gateway-token"


def verify_phone(base: str, gateway, registered, phone: str) -> None:
    """A web registration's phone proven as a citizen does it: the 6-digit code the
    recording gateway received for `phone` (E.164), typed back (MOTCUA_WEB_PHONE_PROOF)."""
    import re

    import requests

    from motcua_testing.fixtures import wait_for

    answer = registered.json()
    if answer.get("status") != "pending_phone":
        return

    def codes():
        texts = [m["body"]["text"] for m in gateway.accepted() if m["body"]["to"] == phone]
        return [match.group(1) for text in texts if ("xác nhận" in text or "xac nhan" in text)
                for match in [re.search(r"\b([0-9]{6})\b", text)] if match]

    code = wait_for(codes, timeout=60, message="the phone's one-time code")[-1]
    verified = requests.post(f"{base}/identity/api/v1/citizens/{answer['citizen_id']}/phone-verification",
                             json={"code": code}, timeout=30)
    assert verified.status_code == 200, verified.text


@pytest.fixture(scope="package")
def gateway():
    with RecordingGateway() as gw:
        yield gw


@pytest.fixture(scope="package")
def platform(tmp_path_factory, gateway):
    vhost = f"motcua-e2e-{uuid.uuid4().hex[:8]}"
    amqp_url = create_vhost(vhost)
    port = free_port()
    data_dir = tmp_path_factory.mktemp("motcua-data")
    log_path = data_dir / "platform.log"
    env = dict(os.environ, AMQP_URL=amqp_url, SMS_GATEWAY_URL=gateway.url, MOTCUA_DATA_DIR=str(data_dir),
               MOTCUA_ADMIN_PASSWORD="quan-tri-2026",
               SMS_INBOUND_TOKEN=SMS_INBOUND_TOKEN, SMS_REGISTRATION_WARD="dn-hai-chau", MOTCUA_RELAY_POLL_SECONDS="0.1",
               MOTCUA_TRACE_FILE=str(data_dir / "traces.jsonl"))
    env.pop("MONGO_URL", None)
    running = RunningPlatform(env, log_path, port=port)
    try:
        ready = running.start()
    except RuntimeError as exc:
        delete_vhost(vhost)
        pytest.fail(str(exc))
    yield {"base": ready, "proc": running.process, "log": log_path, "data_dir": data_dir}
    code = running.stop()
    delete_vhost(vhost)
    assert code == 0, f"motcua up did not stop cleanly on SIGTERM (exit {code})"


