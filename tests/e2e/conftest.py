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


