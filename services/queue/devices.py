"""Kiosk devices: the credential a paired kiosk keeps in its browser.

A ward_admin pairs a kiosk once: they ask for a pairing link (valid a few minutes, usable
once) and open it on the kiosk, which then holds a signed device credential in an
HttpOnly cookie for a year. The credential names the device and its ward; the queue signs
it with its own HMAC key (identity signs people's tokens, not devices'), kept in
`$MOTCUA_DATA_DIR/keys/kiosk-device.key` or the file named by KIOSK_DEVICE_KEY_FILE (a
Secret shared by the queue's replicas in a cluster). A device can be revoked: the
credential is only honoured while its device record says `active`.

No Flask, nameko or pymongo here: signing and reading a credential are pure functions of
the key. Pairing, revoking and the kiosk's own rules are use cases in kiosks.py."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from motcua_common.keyfiles import load_or_create

COOKIE_NAME = "motcua_kiosk"
CREDENTIAL_MAX_AGE_SECONDS = 366 * 24 * 3600
PAIRING_CODE_TTL_SECONDS = 15 * 60
_SALT = "motcua-kiosk-device"


@dataclass(frozen=True)
class KioskDevice:
    device_id: str
    ward_id: str


def new_device_key() -> str:
    return secrets.token_urlsafe(48)


class DeviceKeys:
    """Signs and reads kiosk device credentials."""

    def __init__(self, secret: bytes):
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> "DeviceKeys":
        path = Path(os.environ.get("KIOSK_DEVICE_KEY_FILE") or Path(data_dir) / "keys" / "kiosk-device.key")
        return cls(load_or_create(path, lambda: new_device_key().encode()).strip())

    def credential(self, device: KioskDevice) -> str:
        return self._serializer.dumps({"device_id": device.device_id, "ward_id": device.ward_id})

    def read(self, credential: str | None) -> KioskDevice | None:
        """The device a credential names, or None when it is missing, forged or too old."""
        if not credential:
            return None
        try:
            claims = self._serializer.loads(credential, max_age=CREDENTIAL_MAX_AGE_SECONDS)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(claims, dict) or not claims.get("device_id") or not claims.get("ward_id"):
            return None
        return KioskDevice(claims["device_id"], claims["ward_id"])


def new_pairing_code() -> str:
    """A one-time code for a pairing link: unguessable, short enough to type if need be."""
    return secrets.token_urlsafe(12)
