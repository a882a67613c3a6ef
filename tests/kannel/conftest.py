"""The platform with Kannel as its SMS gateway: bearerbox, smsbox and fakesmsc on loopback
(kannel_stack.py) and one `motcua up --demo` with SMS_GATEWAY=kannel, on its own RabbitMQ
vhost and data dir."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from motcua_platform.embedded import free_port
from motcua_testing.fixtures import RunningPlatform, create_vhost, delete_vhost

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kannel_stack  # noqa: E402

SMS_INBOUND_TOKEN = "kannel-test-gateway-token"
SMS_REPORT_SIGNING_KEY = "kannel-test-report-signing-key"


@pytest.fixture(scope="package")
def kannel_platform(tmp_path_factory):
    if not kannel_stack.available():
        pytest.fail("Kannel is not installed: apt-get install kannel kannel-extras (.ci/run does)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    kannel = kannel_stack.KannelStack(tmp_path_factory.mktemp("kannel"), f"{base}/identity/api/v1/sms/kannel",
                                      SMS_INBOUND_TOKEN)
    vhost = f"motcua-kannel-{uuid.uuid4().hex[:8]}"
    amqp_url = create_vhost(vhost)   # before Kannel: a broker that refuses leaves no box running
    try:
        kannel.start()
    except BaseException:
        kannel.stop()
        delete_vhost(vhost)
        raise
    data_dir = tmp_path_factory.mktemp("motcua-data")
    log_path = data_dir / "platform.log"
    env = dict(os.environ, AMQP_URL=amqp_url, MOTCUA_DATA_DIR=str(data_dir), MOTCUA_ADMIN_PASSWORD="quan-tri-2026",
               SMS_INBOUND_TOKEN=SMS_INBOUND_TOKEN, SMS_REPORT_SIGNING_KEY=SMS_REPORT_SIGNING_KEY,
               SMS_REGISTRATION_WARD="dn-hai-chau",
               MOTCUA_RELAY_POLL_SECONDS="0.1",
               SMS_GATEWAY="kannel", KANNEL_SENDSMS_URL=kannel.sendsms_url, KANNEL_SENDSMS_USER=kannel.user,
               KANNEL_SENDSMS_PASSWORD=kannel.password, KANNEL_DLR_URL=f"{base}/notify/api/v1/kannel/dlr",
               # a stopped bearerbox is retried every second or two, not every two minutes
               NOTIFY_BACKOFF_BASE_SECONDS="1", NOTIFY_BACKOFF_MAX_SECONDS="2", NOTIFY_FAILOVER_COOLDOWN_SECONDS="1")
    for name in ("MONGO_URL", "SMS_GATEWAY_URL", "SMS_FALLBACK_GATEWAY_URLS"):
        env.pop(name, None)
    running = RunningPlatform(env, log_path, port=port)
    try:
        ready = running.start()
    except BaseException as exc:
        running.stop()
        kannel.stop()
        delete_vhost(vhost)
        if isinstance(exc, RuntimeError):
            pytest.fail(str(exc))
        raise
    try:
        yield {"base": ready, "kannel": kannel, "log": log_path}
    finally:
        running.stop()
        kannel.stop()
        delete_vhost(vhost)
