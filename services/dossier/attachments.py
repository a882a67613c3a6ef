"""Attachments (giấy tờ đính kèm): the scanned papers a dossier carries — what may be
attached, how large, how many, under which name, and until when.

Pure: no Flask or pymongo. The type is decided by the file's first bytes (its magic
number), never by the name or the Content-Type the browser sent: a renamed executable
is not a PDF however it is labelled."""
from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

import filetype

from . import domain

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES_PER_DOSSIER = 20
MAX_FILENAME_LENGTH = 120
# Room for the multipart framing and the small `document` field around one file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

# What a ward's officers can open on any counter PC: scans as PDF, photos as JPEG or PNG.
ALLOWED_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
ALLOWED_LABEL = "PDF, JPEG, PNG"

# Once a dossier is finished its papers are the record of what was decided: no more.
CLOSED_STATUSES = domain.FINISHED_STATUSES


# The HTTP status of each refusal (422 for the others): the API's problem and the
# portal's page answer with the same one.
REFUSAL_STATUS = {"file_too_large": 413, "unsupported_file_type": 415, "dossier_closed": 409}


class AttachmentRefused(Exception):
    """A file that may not be attached; `code` names the reason for the API's problem."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def sniff_type(head: bytes) -> str | None:
    """The file's media type from its first bytes, when it is one we accept."""
    kind = filetype.guess(head)
    if kind is None or kind.mime not in ALLOWED_TYPES:
        return None
    return kind.mime


def check_content(content: bytes) -> str:
    """The media type of an acceptable file; AttachmentRefused otherwise."""
    if not content:
        raise AttachmentRefused("empty_file", "Tệp rỗng: vui lòng chọn lại tệp đã quét hoặc chụp.")
    if len(content) > MAX_FILE_BYTES:
        raise AttachmentRefused("file_too_large", f"Mỗi tệp tối đa {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    media_type = sniff_type(content[:262])  # filetype reads at most 262 bytes
    if media_type is None:
        raise AttachmentRefused("unsupported_file_type",
                                f"Chỉ nhận tệp {ALLOWED_LABEL}; nội dung tệp này không phải một trong các định dạng đó.")
    return media_type


def check_open(status: str) -> None:
    if status in CLOSED_STATUSES:
        raise AttachmentRefused("dossier_closed",
                                f"Hồ sơ đã «{domain.STATUS_LABELS[status]}»: không đính kèm thêm giấy tờ được nữa.")


def check_room(count: int) -> None:
    if count >= MAX_FILES_PER_DOSSIER:
        raise AttachmentRefused("too_many_attachments",
                                f"Mỗi hồ sơ tối đa {MAX_FILES_PER_DOSSIER} tệp đính kèm.")


def match_document(raw: str | None, required_documents: tuple[str, ...] | list[str]) -> str | None:
    """Which of the procedure's required papers the file is: its name (spaces and case
    aside) or its number in the list, 1 for the first. None when not said."""
    if raw is None or not raw.strip():
        return None
    wanted = _fold(raw)
    if wanted.isdigit() and 1 <= int(wanted) <= len(required_documents):
        return required_documents[int(wanted) - 1]
    for name in required_documents:
        if _fold(name) == wanted:
            return name
    listed = "; ".join(f"{i}. {name}" for i, name in enumerate(required_documents, 1)) or "(không có)"
    raise AttachmentRefused("unknown_document", f"Không phải giấy tờ thủ tục này yêu cầu. Chọn một trong: {listed}")


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]')


def safe_filename(raw: str | None, media_type: str) -> str:
    """A name to store and to offer on download: the last path part of what the browser
    sent, without control or shell-special characters, bounded, and with the extension of
    what the file really is (so `scan.exe` that is a PDF downloads as `scan.pdf`)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = PureWindowsPath(PurePosixPath(name).name).name  # C:\fakepath\x.pdf from old browsers
    stem = _UNSAFE.sub("", name).strip(" .")
    if "." in stem:
        stem = stem.rsplit(".", 1)[0].strip(" .")
    stem = stem[: MAX_FILENAME_LENGTH - 5] or "tep-dinh-kem"
    return f"{stem}.{ALLOWED_TYPES[media_type]}"

