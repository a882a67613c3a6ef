"""Plausible answers for a procedure's form, for tests that file dossiers over HTTP."""
from __future__ import annotations


def fill_form(procedure: dict) -> dict:
    """An answer for every field of the procedure's form (from GET /procedures)."""
    form = {}
    for field in procedure.get("form_fields") or procedure.get("form") or []:
        kind = field.get("type", "string")
        if kind == "date":
            form[field["name"]] = "2026-11-02"
        elif kind in ("integer", "number"):
            form[field["name"]] = 1
        elif kind == "boolean":
            form[field["name"]] = True
        elif field.get("options"):
            first = field["options"][0]
            form[field["name"]] = first.get("value") if isinstance(first, dict) else first
        else:
            form[field["name"]] = "Nguyễn Văn Bình"
    return form
