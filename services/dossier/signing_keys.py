"""The keys that sign results (kết quả điện tử): a platform certificate authority, and per
ward a signing key with a certificate that authority issued.

The authority is created on first start under the data directory, or comes from a Secret
(MOTCUA_RESULT_CA_FILE: one PEM file with its private key and certificate). A ward's key
is issued on first use and kept beside it. Anyone verifying a result trusts the authority
only, so every process and every replica must share the same authority file; ward keys may
differ between replicas (each is issued by that one authority).

Each key and its certificate live in one PEM file, made once (motcua_common.keyfiles): of
two processes starting together the first wins and both then use the same pair."""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from motcua_common import keyfiles
from motcua_common.clock import SystemClock

CA_NAME = "Một Cửa - Tổ chức cấp chứng thư ký kết quả"
CA_LIFETIME = timedelta(days=20 * 365)
WARD_CERT_LIFETIME = timedelta(days=3 * 365)
# A ward certificate this close to its end is replaced, so a result is never signed with
# a certificate that expires before anyone had the chance to verify it.
RENEW_BEFORE = timedelta(days=30)
_SAFE_WARD = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class KeyPair:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def to_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ) + self.certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def from_pem(cls, pem: bytes) -> "KeyPair":
        key = serialization.load_pem_private_key(pem, password=None)
        certificate = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
        return cls(key, certificate)


class ResultKeys:
    """The platform authority and the wards' signing pairs, loaded or created on demand."""

    def __init__(self, ca_file: Path, wards_dir: Path, clock=None):
        clock = clock or SystemClock().now
        self.ca_file, self.wards_dir, self._clock = Path(ca_file), Path(wards_dir), clock
        self._lock = threading.Lock()
        self._ca: KeyPair | None = None
        self._wards: dict[str, KeyPair] = {}

    @classmethod
    def from_settings(cls, settings, env=None) -> "ResultKeys":
        env = os.environ if env is None else env
        keys_dir = Path(settings.data_dir) / "keys"
        ca_file = env.get("MOTCUA_RESULT_CA_FILE") or keys_dir / "result-ca.pem"
        return cls(Path(ca_file), keys_dir / "result-wards")

    @property
    def authority(self) -> x509.Certificate:
        return self._authority().certificate

    def _authority(self) -> KeyPair:
        with self._lock:
            if self._ca is None:
                self._ca = _load_or_create(self.ca_file, lambda: _new_authority(self._clock()))
            return self._ca

    def for_ward(self, ward_id: str, ward_name: str) -> KeyPair:
        """The ward's signing pair, issued by the authority on first use or near expiry."""
        if not _SAFE_WARD.match(ward_id):
            raise ValueError(f"not a ward id: {ward_id!r}")
        ca = self._authority()
        with self._lock:
            pair = self._wards.get(ward_id)
            now = self._clock()
            if pair is None or pair.certificate.not_valid_after_utc - RENEW_BEFORE < now:
                path = self.wards_dir / f"{ward_id}.pem"
                pair = _load_or_create(path, lambda: _issue_ward(ca, ward_id, ward_name, now))
                if pair.certificate.not_valid_after_utc - RENEW_BEFORE < now or not _issued_by(pair, ca):
                    # Expiring, or issued by an authority that has since been replaced.
                    path.unlink(missing_ok=True)
                    pair = _load_or_create(path, lambda: _issue_ward(ca, ward_id, ward_name, now))
                self._wards[ward_id] = pair
            return pair


def _issued_by(pair: KeyPair, ca: KeyPair) -> bool:
    try:
        pair.certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _load_or_create(path: Path, create) -> KeyPair:
    return KeyPair.from_pem(keyfiles.load_or_create(path, lambda: create().to_pem()))


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Một Cửa")]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def new_authority_pem(now: datetime | None = None) -> bytes:
    """A new platform authority (key and certificate, PEM): what a cluster's replicas share
    through a Secret (`motcua new-keys`)."""
    return _new_authority(now or SystemClock().now()).to_pem()


def _new_authority(now: datetime) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(CA_NAME)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, certificate)


def _issue_ward(ca: KeyPair, ward_id: str, ward_name: str, now: datetime) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(f"Ủy ban nhân dân {ward_name}", unit=ward_id))
        .issuer_name(ca.certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + WARD_CERT_LIFETIME, ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return KeyPair(key, certificate)
