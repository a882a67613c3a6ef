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
