"""The result document (kết quả giải quyết thủ tục hành chính) as a PDF, before signing.

Vietnamese needs a Unicode TrueType font embedded in the file: DejaVu Sans (Debian package
fonts-dejavu-core) covers every Vietnamese letter and tone mark, and reportlab embeds the
glyphs used. Pure: no database, no web framework."""
from __future__ import annotations

import io
import threading
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"
# The subject of the PDF's document information names the receipt code, so that a
# verifier can say which dossier a signed file belongs to (it is covered by the signature).
SUBJECT_PREFIX = "Mã hồ sơ: "

_fonts_lock = threading.Lock()


class FontMissing(RuntimeError):
    pass


def register_fonts() -> None:
    """Register DejaVu Sans with reportlab once per process (its registry is global)."""
    with _fonts_lock:
        if FONT in pdfmetrics.getRegisteredFontNames():
            return
        for folder in FONT_DIRS:
            regular, bold = folder / f"{FONT}.ttf", folder / f"{FONT_BOLD}.ttf"
            if regular.exists() and bold.exists():
                pdfmetrics.registerFont(TTFont(FONT, str(regular)))
                pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold)))
                return
        raise FontMissing("DejaVu Sans not found: apt-get install fonts-dejavu-core")


@dataclass(frozen=True)
class ResultContent:
    receipt_code: str
    procedure_name: str
    ward_name: str
    received_on: date
    decided_at: datetime  # local time at the ward
    fields: tuple[tuple[str, str], ...]  # (label, value) from the applicant's form
    note: str | None = None
    # Where anyone checks this result (<base>/dossier/verify/<token>): printed under a QR
    # code before signing, so the signature covers both.
    verify_url: str | None = None


# Control, format (the bidirectional overrides and isolates, zero-width characters),
# surrogate, private-use and unassigned code points: none has a place on a signed page.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def printable(text: str) -> str:
    """`text` as the signed page may show it: NFC, whitespace of any kind (a line break
    typed into a form) one space, and every character that could hide or reorder what is
    shown dropped. Submission already refuses such form text (submission.py); this is the
    second line, for what was stored before that check or reached the store another way:
    the signature must cover exactly what a reader sees."""
    spaced = " ".join(unicodedata.normalize("NFC", text).split())
    return "".join(ch for ch in spaced if unicodedata.category(ch) not in _UNPRINTABLE)


QR_SIZE = 32 * mm


def qr_code(text: str, size: float = QR_SIZE) -> Drawing:
    """A QR code of `text` (error correction M: still read when a corner is smudged)."""
    widget = QrCodeWidget(text, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


def render(content: ResultContent) -> bytes:
    register_fonts()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm, bottomMargin=18 * mm,
        title=f"Kết quả: {printable(content.procedure_name)}", subject=f"{SUBJECT_PREFIX}{content.receipt_code}",
        author=f"Ủy ban nhân dân {printable(content.ward_name)}", creator="Một Cửa",
    )
    base = ParagraphStyle("base", fontName=FONT, fontSize=11, leading=15)
    centre = ParagraphStyle("centre", parent=base, alignment=1)
    heading = ParagraphStyle("heading", parent=centre, fontName=FONT_BOLD, fontSize=14, leading=19)
    bold_centre = ParagraphStyle("bold_centre", parent=centre, fontName=FONT_BOLD)
    small = ParagraphStyle("small", parent=base, fontSize=9, leading=12)

    def p(text: str, style=base) -> Paragraph:
        return Paragraph(escape(printable(text)), style)

    story = [
        p("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", bold_centre),
        p("Độc lập - Tự do - Hạnh phúc", centre),
        Spacer(1, 6 * mm),
        p(f"ỦY BAN NHÂN DÂN {content.ward_name.upper()}", bold_centre),
        Spacer(1, 8 * mm),
        p("KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH", heading),
        p(content.procedure_name, bold_centre),
        Spacer(1, 6 * mm),
    ]
    rows = [("Mã hồ sơ", content.receipt_code), ("Ngày tiếp nhận", f"{content.received_on:%d/%m/%Y}"),
            ("Ngày giải quyết", f"{content.decided_at:%d/%m/%Y %H:%M}"), *content.fields]
    table = Table([[p(label), p(value)] for label, value in rows], colWidths=[60 * mm, 110 * mm])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 4)]))
    story += [table, Spacer(1, 6 * mm)]
    if content.note:
        story += [p(f"Ghi chú: {content.note}"), Spacer(1, 4 * mm)]
    story += [
        p("Hồ sơ đã được giải quyết theo quy định.", base),
        Spacer(1, 10 * mm),
    ]
    if content.verify_url:
        small_centre = ParagraphStyle("small_centre", parent=small, alignment=1)
        qr = Table([[qr_code(content.verify_url)]], colWidths=[QR_SIZE + 4 * mm])
        qr.hAlign = "CENTER"
        story += [
            qr,
            p("Quét mã QR hoặc mở địa chỉ dưới đây để kiểm tra kết quả này:", small_centre),
            # A link as well: a reader of the file on screen clicks it, and the address
            # stays machine-readable in the file (the printed glyphs are font indexes).
            Paragraph(f'<a href="{escape(content.verify_url, {chr(34): "&quot;"})}">{escape(content.verify_url)}</a>',
                      small_centre),
            Spacer(1, 4 * mm),
        ]
    story += [
        p("Văn bản điện tử được ký số bởi Ủy ban nhân dân "
          f"{content.ward_name}. Kiểm tra chữ ký tại địa chỉ in dưới mã QR, tại Cổng Một Cửa "
          "(POST /dossier/api/v1/results/verify) hoặc bằng phần mềm đọc PDF có kiểm tra chữ ký số.", small),
    ]
    doc.build(story)
    return buffer.getvalue()
