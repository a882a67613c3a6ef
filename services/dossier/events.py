"""The events the dossier service announces, built in one place: what each carries is
part of the contract (proto/), so it is written once here and the use cases hand the
envelopes to the store, which commits them with the change through the outbox."""
from __future__ import annotations

from motcua_common.events import new_event

from . import domain


def submitted(dossier: dict) -> dict:
    return new_event("DossierSubmitted", dossier["ward_id"], {
        "dossier_id": dossier["_id"], "receipt_code": dossier["receipt_code"],
        "procedure_code": dossier["procedure_code"], "ward_id": dossier["ward_id"],
        "channel": dossier["channel"], "due_date": dossier["due_date"],
        "citizen_id": dossier["citizen_id"], "chain_id": dossier.get("chain_id") or "",
    })


def transition(dossier: dict, outcome: domain.Outcome, actor_id: str) -> list[dict]:
    """DossierStatusChanged, and DossierResultReady on approval."""
    common = {
        "dossier_id": dossier["_id"], "ward_id": dossier["ward_id"], "receipt_code": dossier["receipt_code"],
        "citizen_id": dossier["citizen_id"], "procedure_code": dossier["procedure_code"],
    }
    events = [new_event("DossierStatusChanged", dossier["ward_id"], {
        **common, "from_status": outcome.from_status, "to_status": outcome.to_status, "actor_id": actor_id,
    })]
    if outcome.to_status == domain.RESULT_READY:
        events.append(new_event("DossierResultReady", dossier["ward_id"], common))
    return events


def overdue(dossier: dict) -> dict:
    return new_event("DossierOverdue", dossier["ward_id"], {
        "dossier_id": dossier["_id"], "ward_id": dossier["ward_id"], "receipt_code": dossier["receipt_code"],
        "procedure_code": dossier["procedure_code"], "status": dossier["status"], "due_date": dossier["due_date"],
        "assignee_id": dossier.get("assignee_id") or "", "chain_id": dossier.get("chain_id") or "",
    })
