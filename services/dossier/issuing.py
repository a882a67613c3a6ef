"""Issuing a dossier's result (R8): the PDF, signed with the ward's key at approval.

Signed inside the approval request, before the status changes, so a dossier that is
result_ready always has its signed result (signing takes a fraction of a second)."""
from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

from motcua_common import rpc

from . import results
from .catalog import Procedure
from .result_pdf import ResultContent, render
from .signing_keys import ResultKeys
from .ward_directory import WardDirectory

log = logging.getLogger(__name__)


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
          timezone: str, note: str | None) -> bytes:
    """The signed result PDF of `dossier`, approved at `decided_at`."""
    name = ward_name(wards, dossier["ward_id"])
    labels = {f.name: f.label for f in procedure.form} if procedure else {}
    fields = tuple((labels.get(key, key), _text(value)) for key, value in dossier.get("form", {}).items())
    content = ResultContent(
        receipt_code=dossier["receipt_code"], procedure_name=dossier["procedure_name"], ward_name=name,
        received_on=date.fromisoformat(dossier["received_on"]), decided_at=decided_at.astimezone(ZoneInfo(timezone)),
        fields=fields, note=note,
    )
    pair = keys.for_ward(dossier["ward_id"], name)
    return results.sign(render(content), pair, keys.authority, dossier["receipt_code"], name)


def _text(value) -> str:
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return f"{date.fromisoformat(value):%d/%m/%Y}"
        except ValueError:
            pass
    return str(value)
