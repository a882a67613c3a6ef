"""The seam to a payment provider (cổng thanh toán), and the local provider that stands in
for one on a single machine and in tests.

A provider does two things for the dossier service: it opens a checkout for an attempt
(`start`: where to send the citizen) and it tells, later and on its own, how the attempt
ended — a signed notice POSTed to /dossier/api/v1/payments/callback (see payments.py).
A real provider (VNPay, the national public-service portal's payment platform) fits by
implementing `start` with its API and delivering its result as such a notice; see the
README, "Level-4 fees"."""
from __future__ import annotations

import logging
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from motcua_common import keyfiles

from .payments import FAILED, SUCCEEDED, PaymentNotice, sign

log = logging.getLogger(__name__)

SECRET_FILE = "payment-callback.secret"
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Checkout:
    payment_url: str
    provider_ref: str


class PaymentProvider(Protocol):
    name: str

    def start(self, payment_id: str, amount: int, description: str, platform_url: str) -> Checkout:
        """Open a checkout for `amount` VND; `platform_url` is this platform's base URL."""


class LocalPaymentProvider:
    """A provider that takes no money: its checkout is a page of this platform
    (/dossier/pay/local/{payment_id}) whose buttons produce the signed notice a real
    provider would send, signed with the same shared secret. For one machine and tests."""

    name = "local"

    def __init__(self, secret: bytes):
        self.secret = secret

    def start(self, payment_id: str, amount: int, description: str, platform_url: str) -> Checkout:
        return Checkout(f"{platform_url.rstrip('/')}/dossier/pay/local/{payment_id}",
                        f"LOCAL-{uuid.uuid4().hex[:12].upper()}")

    def notice(self, payment_id: str, amount: int, provider_ref: str, paid: bool, now: datetime) -> tuple[bytes, str]:
        """The body and signature header of the notice for a finished checkout."""
        body = PaymentNotice(str(uuid.uuid4()), payment_id, SUCCEEDED if paid else FAILED, amount, provider_ref,
                             now).to_json()
        return body, sign(self.secret, body)


@dataclass(frozen=True)
class PaymentSetup:
    provider: PaymentProvider | None  # None: online payment off, fees taken at the counter
    callback_secret: bytes


def from_env(data_dir: Path, env=None) -> PaymentSetup:
    """PAYMENT_PROVIDER (`local`, the default, or `none`) and PAYMENT_CALLBACK_SECRET.

    Without the secret, one is generated once in the data directory (one machine: every
    process of `motcua up` shares it); a cluster sets it from a Secret, the same in every
    replica and at the provider."""
    env = os.environ if env is None else env
    secret = callback_secret(env.get("PAYMENT_CALLBACK_SECRET"), Path(data_dir) / "keys" / SECRET_FILE)
    choice = (env.get("PAYMENT_PROVIDER") or "local").strip().lower()
    if choice == "none":
        return PaymentSetup(None, secret)
    if choice != "local":
        raise ValueError(f"PAYMENT_PROVIDER={choice!r}: this build knows 'local' and 'none'")
    return PaymentSetup(LocalPaymentProvider(secret), secret)


def callback_secret(configured: str | None, file: Path) -> bytes:
    if configured:
        secret = configured.encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"PAYMENT_CALLBACK_SECRET must be at least {MIN_SECRET_BYTES} characters")
        return secret
    made: list[bytes] = []

    def make() -> bytes:
        made.append(secrets.token_hex(32).encode())
        return made[0]

    # Made once (motcua_common.keyfiles): of several processes starting at once, one file
    # wins and every process reads that one, never a half-written file.
    secret = keyfiles.load_or_create(file, make)
    if made and secret == made[0]:
        log.info("payment callback secret created in the data directory")
    return secret.strip()
