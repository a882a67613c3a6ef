"""The five APIs in one process, on demo data, for the hostile-input and security tests.

Every app trusts the same signing key as the `token` fixture, so a test can act as any
role of any ward. Calls that would leave the service (identity's SMS replies through
notify, dossier's questions to identity) go to stand-ins: these tests are about what
each API accepts and refuses, not about the broker."""
from __future__ import annotations

from dataclasses import replace

import pytest

from motcua_common import demo

WARD = "dn-hai-chau"
OTHER_WARD = "dn-lien-chieu"
GATEWAY_TOKEN = "gateway-secret-for-tests"
SERVICES = ("identity", "dossier", "queue", "notify", "rating")


class Citizens:
    """identity's citizen directory as dossier sees it: one known citizen per ward."""

    PEOPLE = {
        "cit-own": {"citizen_id": "cit-own", "national_id": "048190000123", "phone": "0905123456", "ward_id": WARD},
        "cit-other": {"citizen_id": "cit-other", "national_id": "048185000777", "phone": "0912000999",
                      "ward_id": OTHER_WARD},
    }

    def contact(self, citizen_id):
        person = self.PEOPLE.get(citizen_id)
        return person and {"citizen_id": citizen_id, "phone": person["phone"], "phone_last4": person["phone"][-4:],
                           "ward_id": person["ward_id"]}

    def find_by_national_id(self, national_id):
        for person in self.PEOPLE.values():
            if person["national_id"] == national_id:
                return {"citizen_id": person["citizen_id"], "phone_last4": person["phone"][-4:],
                        "ward_id": person["ward_id"]}
        return None


class Wards:
    """identity's wards as dossier sees them: the demo wards, so a made-up ward is refused."""

    def ward(self, ward_id):
        from motcua_common import demo

        return next(({"ward_id": w["ward_id"], "name": w["name"], "province": w["province"]}
                     for w in demo.WARDS if w["ward_id"] == ward_id), None)


class Replies:
    """identity's SMS replies, kept instead of sent."""

    def __init__(self):
        self.sent: list[tuple] = []

    def __call__(self, to, template, variables, ward_id, key):
        self.sent.append((to, template, variables, ward_id, key))
        return {"notification_id": f"n-{len(self.sent)}"}


def build_apps(settings, signing_key, verifier, replies=None) -> dict:
    """service -> Flask app, each prepared with the demo data."""
    from motcua_dossier import bootstrap as dossier_boot
    from motcua_dossier.api import create_app as dossier_app
    from motcua_identity import bootstrap as identity_boot
    from motcua_identity.api import create_app as identity_app
    from motcua_notify import bootstrap as notify_boot
    from motcua_notify.api import create_app as notify_app
    from motcua_queue import bootstrap as queue_boot
    from motcua_queue.api import create_app as queue_app
    from motcua_rating import bootstrap as rating_boot
    from motcua_rating.api import create_app as rating_app

    # Demo reference data (wards, counters, services) but production behaviour: with
    # `demo` set, kiosks would work unpaired.
    settings = replace(settings, sms_inbound_token=GATEWAY_TOKEN, sms_registration_ward=WARD, demo=False)
    for boot in (identity_boot, dossier_boot, queue_boot, notify_boot, rating_boot):
        boot.prepare(settings, demo=True)
    replies = replies or Replies()
    apps = {
        "identity": identity_app(settings, verifier=verifier, signing_key=signing_key, send_reply=replies,
                                 dossier_status=lambda receipt_code, phone_last4: None),
        "dossier": dossier_app(settings, verifier=verifier, citizens=Citizens(), wards=Wards()),
        "queue": queue_app(settings, verifier=verifier),
        "notify": notify_app(settings, verifier=verifier),
        "rating": rating_app(settings, verifier=verifier),
    }
    for app in apps.values():
        app.config["TESTING"] = False  # errors answer as problem details, as in production
        app.config["PROPAGATE_EXCEPTIONS"] = False
    return apps


@pytest.fixture
def replies():
    return Replies()


@pytest.fixture
def apps(settings, signing_key, verifier, replies):
    return build_apps(settings, signing_key, verifier, replies)


@pytest.fixture
def clients(apps):
    return {name: app.test_client() for name, app in apps.items()}


@pytest.fixture
def as_role(token):
    """as_role(role, ward) -> headers; role "anonymous" -> no header. Citizens are cit-own/cit-other."""

    def make(role: str, ward: str | None = WARD) -> dict:
        if role == "anonymous":
            return {}
        if role == "citizen":
            subject = "cit-own" if ward == WARD else "cit-other"
            return token("citizen", ward, subject=subject)
        if role in ("monitor", "admin"):
            return token(role, None)
        return token(role, ward)

    return make


assert WARD in demo.ward_ids() and OTHER_WARD in demo.ward_ids()
