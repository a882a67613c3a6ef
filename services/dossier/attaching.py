"""Attaching papers to a dossier (đính kèm giấy tờ): storing an uploaded file on a
dossier, listing a dossier's files and opening one for download.

Plain functions of the dependencies (deps.Deps) and the caller, which the API and the
citizen portal both call; what may be attached is decided in attachments.py (pure). A
refused file is attachments.AttachmentRefused (the caller answers with its code)."""
from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable

from motcua_common.auth import Principal
from motcua_common.http import Problem, not_found

from . import attachments, domain, dossiers, store
from .deps import Deps

# Kept under the name the API's routes wrote it under (log queries keep matching).
api_log = logging.getLogger("motcua_dossier.api")


def attach(deps: Deps, principal: Principal, dossier: dict, filename: str | None, read: Callable[[int], bytes],
           document: str | None) -> dict:
    """Check one uploaded file and store it on `dossier`; the stored entry, or
    AttachmentRefused saying why not. `read(limit)` reads the upload (at most `limit`
    bytes): a closed or full dossier refuses before the file is read."""
    attachments.check_open(dossier["status"])
    attachments.check_room(len(dossier.get("attachments", [])))
    content = read(attachments.MAX_FILE_BYTES + 1)
    media_type = attachments.check_content(content)
    procedure = store.get_procedure(deps.db, dossier["procedure_code"], active_only=False)
    document = attachments.match_document(document, procedure.required_documents if procedure else ())
    entry = {
        "attachment_id": str(uuid.uuid4()), "filename": attachments.safe_filename(filename, media_type),
        "content_type": media_type, "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
        "document": document, "uploaded_at": deps.clock.now(), "uploaded_by_role": principal.role,
        "uploaded_by": principal.subject,
    }
    updated = store.add_attachment(deps.db, dossier, content, entry,
                                   tuple(s for s in domain.STATUS_LABELS if s not in attachments.CLOSED_STATUSES),
                                   attachments.MAX_FILES_PER_DOSSIER)
    if updated is None:  # finished or filled up meanwhile
        current = dossiers.get(deps, dossier["_id"])
        attachments.check_open(current["status"])
        attachments.check_room(len(current.get("attachments", [])))
        raise Problem(409, "conflict", "Hồ sơ vừa thay đổi", "Vui lòng thử lại. / Changed meanwhile, retry.")
    # The file's name and content stay out of the log: a name often carries a person's.
    api_log.info("attachment added", extra={"dossier_id": dossier["_id"], "attachment_id": entry["attachment_id"],
                                            "content_type": media_type, "size": entry["size"]})
    if principal.role != "citizen":  # an officer's upload: on the audit chain (a citizen's own is on the dossier)
        store.append_audit(deps.db, dossiers.audit_entry(deps, principal, "attach", dossier,
                                                         attachment_id=entry["attachment_id"], document=document,
                                                         content_type=media_type, size=entry["size"]))
    return entry


def open_file(deps: Deps, dossier: dict, attachment_id: str, principal: Principal | None = None
              ) -> tuple[dict, object]:
    """The entry and a readable stored file (`.length` is its size); 404 when the dossier
    has no such attachment. Found through the dossier: an attachment id is good only with
    its own dossier's. A download by staff (an ID scan, a paper with the citizen's data)
    is audited: `principal` is the caller, or the one this request authenticated."""
    entry = next((a for a in dossier.get("attachments", []) if a["attachment_id"] == attachment_id), None)
    stored = store.open_attachment(deps.db, attachment_id) if entry else None
    if stored is None:
        raise not_found("Hồ sơ không có tệp đính kèm này. / No such attachment.")
    principal = principal or _request_principal()
    if principal is not None and principal.role != "citizen":
        store.append_audit(deps.db, dossiers.audit_entry(deps, principal, "download_attachment", dossier,
                                                         attachment_id=attachment_id, document=entry.get("document"),
                                                         content_type=entry.get("content_type")))
    return entry, stored


def _request_principal() -> Principal | None:
    """The caller this request already authenticated (the API's bearer token, the desk's
    session), for callers that do not pass it; None outside a request."""
    from flask import g, has_request_context

    if not has_request_context():
        return None
    found = g.get("principal") or g.get("desk_principal")
    return found if isinstance(found, Principal) else None
