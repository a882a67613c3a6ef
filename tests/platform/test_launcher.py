"""What `motcua up --demo` puts in its children's environment."""
from __future__ import annotations


def test_a_demo_without_an_sms_gateway_lets_web_registrations_finish():
    """Its texts reach no phone (and codes are never logged): no phone proof; with a
    gateway, or when asked for, the proof stays."""
    from motcua_platform.launcher import demo_environment

    assert demo_environment({}) == {"MOTCUA_DEMO": "true", "MOTCUA_WEB_PHONE_PROOF": "false"}
    assert demo_environment({"SMS_GATEWAY_URL": "http://127.0.0.1:9/sms"}) == {"MOTCUA_DEMO": "true"}
    assert demo_environment({"SMS_GATEWAY": "kannel"}) == {"MOTCUA_DEMO": "true"}
    assert demo_environment({"MOTCUA_WEB_PHONE_PROOF": "true"}) == {"MOTCUA_DEMO": "true"}


def test_no_worker_takes_the_apis_port_for_its_metrics(tmp_path, monkeypatch):
    """The API's port is chosen before it is bound: the operating system may offer it again
    as a 'free' port, and a worker's metrics server on it then answered the platform's
    requests (a citizen's registration got 405 from prometheus-client)."""
    from motcua_platform import launcher

    api_port = 45_123
    offered = iter([api_port, api_port, 45_200, 45_200, *range(45_201, 45_260)])
    monkeypatch.setattr(launcher, "free_port", lambda: next(offered))
    platform = launcher.Platform(port=api_port, demo=True)
    platform.env = {"MOTCUA_DATA_DIR": str(tmp_path)}
    ports = [child.metrics_port for child in platform._children() if child.metrics_port is not None]
    assert len(ports) == 2 * len(platform.services)
    assert api_port not in ports and len(set(ports)) == len(ports)
