"""Issuing a dossier's result (R8): the PDF, signed with the ward's key at approval.

Signed inside the approval request, before the status changes, so a dossier that is
result_ready always has its signed result (signing takes a fraction of a second)."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from motcua_common import demo

from . import results
from .catalog import Procedure
from .result_pdf import ResultContent, render
from .signing_keys import ResultKeys


def ward_name(ward_id: str) -> str:
    """The ward's name as it stands on its certificate and results. The platform's ward
    reference data names it; an unknown ward is named by its id rather than not signing."""
    return next((w["name"] for w in demo.WARDS if w["ward_id"] == ward_id), f"Phường {ward_id}")


def issue(keys: ResultKeys, dossier: dict, procedure: Procedure | None, decided_at: datetime, timezone: str,
          note: str | None) -> bytes:
    """The signed result PDF of `dossier`, approved at `decided_at`."""
    name = ward_name(dossier["ward_id"])
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
