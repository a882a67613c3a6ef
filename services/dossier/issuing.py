"""A dossier's result (R8): issuing the PDF, signed with the ward's key at approval;
handing it to its owner and its ward's staff; verifying a result file anyone holds.

Signed inside the approval request, before the status changes, so a dossier that is
result_ready always has its signed result (signing takes a fraction of a second)."""
from __future__ import annotations

import logging
from datetime import date, datetime

from motcua_common import rpc
from motcua_common.http import Problem, ValidationFailed, field_error

from . import domain, results, store
from .catalog import Procedure
from .deps import Deps
from .result_pdf import ResultContent, render
from .signing_keys import ResultKeys
from .ward_directory import WardDirectory

log = logging.getLogger(__name__)
# Kept under the name the API's route wrote it under (log queries keep matching).
api_log = logging.getLogger("motcua_dossier.api")


def ward_name(wards: WardDirectory, ward_id: str) -> str:
    """The ward's name as it stands on its certificate and results, as identity (which owns
    the wards) names it. When identity cannot be asked, or no longer knows the ward, the
    ward is named by its id rather than leaving an approved dossier unsigned."""
    try:
        found = wards.ward(ward_id)
    except rpc.RpcUnavailable as exc:
        log.warning("ward named by its id, identity did not answer", extra={"ward_id": ward_id, "error": str(exc)})
        found = None
    return found["name"] if found else named_by_id(ward_id)


def named_by_id(ward_id: str) -> str:
    """A ward's name when identity cannot tell it."""
    return f"Phường {ward_id}"


def issue(keys: ResultKeys, wards: WardDirectory, dossier: dict, procedure: Procedure | None, decided_at: datetime,
          note: str | None, verify_url: str | None = None) -> bytes:
    """The signed result PDF of `dossier`, approved at `decided_at` (the ward's local time);
    `verify_url` (verification.address) is printed under a QR code before signing."""
    name = ward_name(wards, dossier["ward_id"])
    labels = {f.name: f.label for f in procedure.form} if procedure else {}
    fields = tuple((labels.get(key, key), _text(value)) for key, value in dossier.get("form", {}).items())
    content = ResultContent(
        receipt_code=dossier["receipt_code"], procedure_name=dossier["procedure_name"], ward_name=name,
        received_on=date.fromisoformat(dossier["received_on"]), decided_at=decided_at,
        fields=fields, note=note, verify_url=verify_url,
    )
    pair = keys.for_ward(dossier["ward_id"], name)
    return results.sign(render(content), pair, keys.authority, dossier["receipt_code"], name)


def result_of(deps: Deps, dossier: dict) -> bytes:
    """The signed result PDF of `dossier` (the caller has checked who may read it); 409
    result_not_ready before approval."""
    pdf = store.read_result(deps.db, dossier)
    if pdf is None:
        raise Problem(409, "result_not_ready", "Hồ sơ chưa có kết quả",
                      f"Hồ sơ đang ở trạng thái «{domain.STATUS_LABELS[dossier['status']]}»; kết quả có khi hồ sơ "
                      "được phê duyệt. / The result exists once the dossier is approved.",
                      current_status=dossier["status"])
    return pdf


def verify(deps: Deps, pdf: bytes) -> dict:
    """POST /results/verify: whether a file is a valid result, and whether this very file
    is one the platform issued (not only validly signed by it)."""
    if not pdf:
        raise ValidationFailed([field_error("body", "Chưa có tệp PDF để kiểm tra.")])
    verification = results.verify(pdf, deps.result_keys.authority)
    answer = verification.to_dict()
    answer["issued_here"] = verification.valid and store.is_issued_result(deps.db, pdf)
    api_log.info("result verified", extra={"valid": verification.valid})
    return answer


def _text(value) -> str:
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return f"{date.fromisoformat(value):%d/%m/%Y}"
        except ValueError:
            pass
    return str(value)
