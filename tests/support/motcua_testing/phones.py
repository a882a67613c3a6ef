"""A web registration's phone proven as a citizen does it: the 6-digit code the recording
SMS gateway received for that phone, typed back (identity's MOTCUA_WEB_PHONE_PROOF)."""
from __future__ import annotations

import re

import requests

from motcua_testing.fixtures import wait_for


def code_texted_to(gateway, phone: str, timeout: float = 60) -> str:
    """The latest one-time code the gateway accepted for `phone` (E.164, +84…)."""

    def codes():
        texts = [m["body"]["text"] for m in gateway.accepted() if m["body"]["to"] == phone]
        return [match.group(1) for text in texts if ("xác nhận" in text or "xac nhan" in text)
                for match in [re.search(r"\b([0-9]{6})\b", text)] if match]

    return wait_for(codes, timeout=timeout, message=f"the one-time code texted to {phone}")[-1]


def verify_phone(base: str, gateway, registered, phone: str) -> None:
    """After POST /identity/api/v1/citizens from the web: prove the phone, if asked to."""
    answer = registered.json()
    if answer.get("status") != "pending_phone":
        return
    verified = requests.post(f"{base}/identity/api/v1/citizens/{answer['citizen_id']}/phone-verification",
                             json={"code": code_texted_to(gateway, phone)}, timeout=30)
    assert verified.status_code == 200, verified.text
