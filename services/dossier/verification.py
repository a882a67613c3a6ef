"""Results anyone can check: every signed result carries a random token, printed on it
under a QR code as the address `<base>/dossier/verify/<token>`; that address answers, to
anyone, whether the result is valid, with its receipt code, procedure, ward and signing
date (a page, or JSON with `?format=json`). An unknown token is a page saying so (404).

"Valid" is not a flag in the database: the stored signed PDF is read back and its
signature verified (results.verify) against the platform's authority each time, and it
must still be, byte for byte, the file that was issued. The token is unguessable (192
bits from `secrets`), so the address gives away nothing a holder of the paper does not
already have, and no personal data is shown: no name, no national id, no form.

Use cases (new_token, address, check, view) and the page blueprint (which only translates
HTTP) live here together; the approval (dossiers.act) asks for the token and the address
before it signs, so the signature covers the QR code and the printed address."""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flask import Blueprint, has_request_context, make_response, render_template, request

from motcua_common.auth import Principal
from motcua_common.http import Problem, request_context

from . import issuing, results, store, views
from .deps import Deps

log = logging.getLogger(__name__)

FOLDER = Path(__file__).resolve().parent
VERIFY_PATH = "/dossier/verify"
TOKEN_BYTES = 24  # 192 bits, 32 URL-safe characters
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
# One machine without MOTCUA_PUBLIC_URL, outside any request (a CLI approving): the
# address `motcua up` serves by default.
FALLBACK_BASE = "http://localhost:8080"


# ---------------------------------------------------------------- the token and the address
def new_token() -> str:
    """A fresh verification token: random, URL-safe, unguessable."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def public_base(deps: Deps) -> str:
    """Where the platform is reached from outside: MOTCUA_PUBLIC_URL when set (what a real
    deployment sets: the address citizens know, not a pod's); otherwise the address the
    current request came in on (through the trusted proxies, when configured); otherwise
    the one-machine default."""
    if deps.public_url:
        return deps.public_url
    if has_request_context():
        return request.host_url.rstrip("/")
    return FALLBACK_BASE


def address(deps: Deps, token: str) -> str:
    return f"{public_base(deps)}{VERIFY_PATH}/{token}"


# ---------------------------------------------------------------- checking a result by its token
@dataclass(frozen=True)
class Check:
    valid: bool
    receipt_code: str
    procedure_code: str
    procedure_name: str
    ward_id: str
    ward_name: str
    signed_at: datetime | None
    signed_by: str | None
    reason: str


def check(deps: Deps, principal: Principal | None, token: str) -> Check | None:
    """The result `token` names, checked now; None for a token no result carries (or one
    that could not be a token at all). Anyone may ask (`principal` may be None)."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        return None
    dossier = store.find_by_result_token(deps.db, token)
    if dossier is None:
        return None
    stored = dossier["result"]
    pdf = store.read_result(deps.db, dossier)
    common = {
        "receipt_code": dossier["receipt_code"], "procedure_code": dossier["procedure_code"],
        "procedure_name": dossier.get("procedure_name") or dossier["procedure_code"], "ward_id": dossier["ward_id"],
        "ward_name": issuing.ward_name(deps.wards, dossier["ward_id"]),
    }
    if pdf is None:
        log.warning("a verified result's file is missing", extra={"dossier_id": dossier["_id"]})
        return Check(valid=False, signed_at=stored.get("signed_at"), signed_by=None,
                     reason="Không đọc được bản kết quả đã lưu; xin liên hệ Bộ phận một cửa của phường.", **common)
    verification = results.verify(pdf, deps.result_keys.authority)
    same_file = hashlib.sha256(pdf).hexdigest() == stored.get("sha256")
    valid = verification.valid and same_file and verification.receipt_code == dossier["receipt_code"]
    if valid:
        reason = verification.reason
    elif verification.valid:
        reason = "Bản kết quả đã lưu không còn là bản đã cấp: kết quả không còn giá trị."
    else:
        reason = verification.reason
    log.info("result checked by its address", extra={"dossier_id": dossier["_id"], "valid": valid})
    # The moment the ward signed, as recorded with the result (the signature's own time is
    # the same moment, read from the file only while the file is intact).
    return Check(valid=valid, signed_at=stored.get("signed_at"), signed_by=verification.signed_by if valid else None,
                 reason=reason, **common)


def as_json(found: Check) -> dict:
    """The contract's answer {valid, receipt_code, procedure_code, ward_id, signed_at} and more."""
    return {"valid": found.valid, "receipt_code": found.receipt_code, "procedure_code": found.procedure_code,
            "ward_id": found.ward_id, "signed_at": views.iso(found.signed_at) if found.signed_at else None,
            "procedure_name": found.procedure_name, "ward_name": found.ward_name, "signed_by": found.signed_by,
            "reason": found.reason}


# ---------------------------------------------------------------- the page
verify_pages = Blueprint("dossier_verify", __name__, url_prefix=VERIFY_PATH, root_path=str(FOLDER))

NOT_FOUND_TEXT = ("Không có kết quả nào mang mã kiểm tra này. Xin kiểm tra lại địa chỉ (quét lại mã QR trên văn bản); "
                  "nếu vẫn không thấy, văn bản không do Cổng Một Cửa cấp.")


def _wants_json() -> bool:
    return request.args.get("format") == "json"


def _local(moment: datetime | None, deps: Deps) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return deps.clock.local(moment)


@verify_pages.get("/<token>")
def verify_page(token: str):
    deps: Deps = request_context()
    found = check(deps, None, token)
    if found is None:
        if _wants_json():
            raise Problem(404, "not_found", "Không tìm thấy kết quả",
                          NOT_FOUND_TEXT + " / No result carries this verification token.")
        response = make_response(render_template("verify/unknown.html", text=NOT_FOUND_TEXT), 404)
    elif _wants_json():
        response = make_response(as_json(found))
    else:
        response = make_response(render_template("verify/result.html", result=found,
                                                 signed_local=_local(found.signed_at, deps)))
    # The answer is "now": a result found tampered with must not be served valid from a cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@verify_pages.get("/")
@verify_pages.get("/<path:_anything>")
def verify_index(_anything: str = ""):
    """An address that is not one token (cut short, or with a slash in it): the same answer."""
    if _wants_json():
        raise Problem(404, "not_found", "Không tìm thấy kết quả",
                      NOT_FOUND_TEXT + " / No result carries this verification token.")
    response = make_response(render_template("verify/unknown.html", text=NOT_FOUND_TEXT), 404)
    response.headers["Cache-Control"] = "no-store"
    return response
