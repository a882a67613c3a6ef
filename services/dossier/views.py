"""The JSON shapes of the API's answers, from stored dossiers. Pure functions."""
from __future__ import annotations

from datetime import datetime, timezone

from . import domain


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, as the contract writes times."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def linked(dossier: dict) -> dict:
    return {"dossier_id": dossier["_id"], "receipt_code": dossier["receipt_code"],
            "procedure_code": dossier["procedure_code"], "due_date": dossier["due_date"],
            "status": dossier["status"]}


def submission(dossiers: list[dict]) -> dict:
    """The answer to POST /dossiers: the dossier asked for, and those chained to it."""
    head = dossiers[0]
    return {
        "dossier_id": head["_id"], "receipt_code": head["receipt_code"], "status": head["status"],
        "channel": head["channel"], "due_date": head["due_date"], "procedure_code": head["procedure_code"],
        "received_on": head["received_on"], "chain_id": head["chain_id"],
        "linked": [linked(d) for d in dossiers[1:]],
    }


def summary(dossier: dict) -> dict:
    return {
        "dossier_id": dossier["_id"], "receipt_code": dossier["receipt_code"],
        "procedure_code": dossier["procedure_code"], "procedure_name": dossier["procedure_name"],
        "ward_id": dossier["ward_id"], "channel": dossier["channel"], "status": dossier["status"],
        "status_label": domain.STATUS_LABELS[dossier["status"]], "received_on": dossier["received_on"],
        "due_date": dossier["due_date"], "submitted_at": iso(dossier["submitted_at"]),
        "chain_id": dossier.get("chain_id"), "assignee_id": dossier.get("assignee_id"),
        "has_result": bool(dossier.get("result")),
    }


def assignments(dossier: dict) -> list[dict]:
    return [{"step": a["step"], "officer_id": a["officer_id"], "by": a["by"], "at": iso(a["at"]), "note": a.get("note")}
            for a in dossier.get("assignments", [])]


def detail(dossier: dict, chained: list[dict], for_staff: bool) -> dict:
    """Everything, for the citizen who owns the dossier and the ward's staff."""
    return {
        **summary(dossier),
        "citizen_id": dossier["citizen_id"], "form": dossier["form"],
        "catalog_version": dossier.get("catalog_version"),
        "allowed_actions": domain.allowed_actions(dossier["status"]) if for_staff else [],
        "history": [{"status": h["status"], "at": iso(h["at"]), "actor_id": h["actor_id"], "note": h.get("note")}
                    for h in dossier["history"]],
        "linked": [linked(d) for d in chained],
        "assignments": assignments(dossier) if for_staff else [],
    }


def public_status(dossier: dict) -> dict:
    """What anyone holding the receipt code and phone digits may see: no names, no notes,
    no officers."""
    return {
        "receipt_code": dossier["receipt_code"], "procedure_code": dossier["procedure_code"],
        "procedure_name": dossier["procedure_name"], "status": dossier["status"],
        "status_label": domain.STATUS_LABELS[dossier["status"]], "due_date": dossier["due_date"],
        "history": [{"status": h["status"], "at": iso(h["at"])} for h in dossier["history"]],
    }
