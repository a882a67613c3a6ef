"""The shapes of the answers, from stored dossiers: the API's JSON, and the signed result
as a download (the API and the portal hand it out alike). Pure functions."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Response

from . import domain, payments


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
        "payment_status": dossier.get("payment_status", payments.NOT_REQUIRED),
    }


def actions_for(dossier: dict) -> list[str]:
    """The actions an officer can take now: the workflow's, less processing while the
    fee is unpaid."""
    allowed = domain.allowed_actions(dossier["status"])
    if dossier.get("payment_status") == payments.UNPAID:
        allowed = [a for a in allowed if a != "start_processing"]
    return allowed


def payment_state(dossier: dict) -> dict:
    """The fee of a dossier and how it was paid."""
    status = dossier.get("payment_status", payments.NOT_REQUIRED)
    paid = dossier.get("payment") or {}
    return {
        "status": status, "status_label": payments.PAYMENT_STATUS_LABELS[status],
        "amount": dossier.get("fee", 0) if status != payments.NOT_REQUIRED else 0, "currency": payments.CURRENCY,
        "method": paid.get("method"), "paid_at": iso(paid["paid_at"]) if paid.get("paid_at") else None,
    }


def payment_attempt(attempt: dict) -> dict:
    return {
        "payment_id": attempt["_id"], "dossier_id": attempt["dossier_id"], "method": payments.ONLINE,
        "status": attempt["status"], "amount": attempt["amount"], "currency": attempt["currency"],
        "provider": attempt["provider"], "payment_url": attempt["payment_url"],
        "created_at": iso(attempt["created_at"]), "expires_at": iso(attempt["expires_at"]),
        "finished_at": iso(attempt["finished_at"]) if attempt.get("finished_at") else None,
    }


def attachment(entry: dict) -> dict:
    return {
        "attachment_id": entry["attachment_id"], "filename": entry["filename"], "content_type": entry["content_type"],
        "size": entry["size"], "document": entry.get("document"), "uploaded_at": iso(entry["uploaded_at"]),
        "uploaded_by": entry["uploaded_by_role"],
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
        "allowed_actions": actions_for(dossier) if for_staff else [],
        "fee": dossier.get("fee", 0), "payment": payment_state(dossier),
        "attachments": [attachment(a) for a in dossier.get("attachments", [])],
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


def result_download(dossier: dict, pdf: bytes) -> Response:
    """The signed result PDF as a download, never kept in a shared cache."""
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="ket-qua-{dossier["receipt_code"]}.pdf"',
        "Cache-Control": "private, no-store",
    })
