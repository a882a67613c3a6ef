"""Signing a result PDF with the ward's key (PAdES, pyHanko) and verifying one.

A result is valid when its signature is intact (not one byte of the signed revision
changed), covers the whole file (nothing appended after signing), and chains to the
platform authority. Pure apart from the keys it is handed: no database, no web framework."""
from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from .result_pdf import SUBJECT_PREFIX
from .signing_keys import KeyPair

log = logging.getLogger(__name__)

SIGNATURE_FIELD = "ChuKySoKetQua"


@dataclass(frozen=True)
class Verification:
    valid: bool
    receipt_code: str | None
    signed_by: str | None
    signed_at: datetime | None
    reason: str  # why it is (in)valid, in Vietnamese

    def to_dict(self) -> dict:
        at = self.signed_at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z") \
            if self.signed_at else None
        return {"valid": self.valid, "receipt_code": self.receipt_code, "signed_by": self.signed_by,
                "signed_at": at, "reason": self.reason}


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def sign(pdf: bytes, pair: KeyPair, authority: x509.Certificate, receipt_code: str, location: str) -> bytes:
    """`pdf` signed by `pair` (a ward), with the authority's certificate embedded so the
    file verifies on its own in any PDF reader that trusts the authority."""
    signer = signers.SimpleSigner(
        signing_cert=_asn1_certificate(pair.certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(pair.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
        cert_registry=SimpleCertificateStore.from_certs([_asn1_certificate(authority)]),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD, reason=f"Kết quả giải quyết hồ sơ {receipt_code}", location=location,
        md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
    )
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer)
    return out.getvalue()


def verify(pdf: bytes, authority: x509.Certificate) -> Verification:
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        log.info("unreadable PDF submitted for verification: %s", exc.__class__.__name__)
        return Verification(False, None, None, None, "Tệp không phải là PDF hợp lệ.")
    if not signatures:
        return Verification(False, _receipt_code(reader), None, None, "Tệp không có chữ ký số.")
    context = ValidationContext(trust_roots=[_asn1_certificate(authority)], allow_fetching=False)
    signature = signatures[0]
    try:
        status = validate_pdf_signature(signature, context)
    except Exception as exc:  # a malformed signature is an invalid one, never a 500
        log.info("signature could not be validated: %s", exc.__class__.__name__)
        return Verification(False, _receipt_code(reader), None, None, "Chữ ký số bị hỏng, không kiểm tra được.")
    signed_by = status.signing_cert.subject.native.get("common_name")
    signed_at = status.signer_reported_dt
    receipt_code = _receipt_code(reader)
    if not status.intact or not status.valid:
        reason = "Nội dung tệp đã bị thay đổi sau khi ký: chữ ký không còn giá trị."
    elif status.coverage is None or status.coverage.name != "ENTIRE_FILE" or len(signatures) != 1:
        reason = "Tệp đã bị thêm nội dung sau khi ký: chữ ký không bao trùm toàn bộ văn bản."
    elif not status.trusted:
        reason = "Chứng thư ký không do tổ chức cấp chứng thư của Một Cửa cấp."
    else:
        return Verification(True, receipt_code, signed_by, signed_at, "Chữ ký số hợp lệ, văn bản toàn vẹn.")
    return Verification(False, receipt_code, signed_by, signed_at, reason)


_CODE = re.compile(r"[0-9A-Z][0-9A-Z-]{4,40}")


def _receipt_code(reader: PdfFileReader) -> str | None:
    try:
        subject = str(reader.trailer["/Info"].get_object().get("/Subject", ""))
    except (KeyError, PdfError, AttributeError):
        return None
    if not subject.startswith(SUBJECT_PREFIX):
        return None
    code = subject[len(SUBJECT_PREFIX):].strip()
    return code if _CODE.fullmatch(code) else None
