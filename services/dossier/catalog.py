"""The procedure catalog (danh mục thủ tục hành chính): what a procedure is, how the YAML
reference data becomes procedures, and how an applicant's form is checked against one.

Pure: no database, no web framework."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

CATALOG_FILE = Path(__file__).resolve().parent / "data" / "procedures.yaml"
FIELD_TYPES = ("text", "date", "number", "choice")
MAX_TEXT_LENGTH = 500
ONLINE_LEVEL = 3  # level 3 and 4 procedures may be submitted online


class CatalogError(ValueError):
    """The catalog file is inconsistent (caught at start-up, never at request time)."""


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    required: bool
    type: str = "text"
    options: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        out = {"name": self.name, "label": self.label, "required": self.required, "type": self.type}
        if self.options:
            out["options"] = list(self.options)
        return out


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    field: str
    level: int
    authority: str
    statutory_days: int
    ward_days: int
    fee: int
    required_documents: tuple[str, ...]
    form: tuple[FormField, ...]
    next_procedures: tuple[str, ...] = ()
    chain_days: int | None = None
    handled_by: str = ""
    legal_basis: str = ""
    fee_note: str = ""
    catalog_version: str = ""

    @property
    def online(self) -> bool:
        return self.level >= ONLINE_LEVEL

    def to_dict(self) -> dict:
        return {
            "code": self.code, "name": self.name, "field": self.field, "level": self.level,
            "authority": self.authority, "statutory_days": self.statutory_days,
            "ward_days": self.ward_days, "fee": self.fee,
            "required_documents": list(self.required_documents),
            "next_procedures": list(self.next_procedures),
            "chain_days": self.chain_days, "online": self.online, "handled_by": self.handled_by,
            "legal_basis": self.legal_basis, "fee_note": self.fee_note,
            "form": [f.to_dict() for f in self.form], "catalog_version": self.catalog_version,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Procedure":
        return cls(
            code=data["code"], name=data["name"], field=data["field"], level=int(data["level"]),
            authority=data["authority"], statutory_days=int(data["statutory_days"]),
            ward_days=int(data["ward_days"]), fee=int(data["fee"]),
            required_documents=tuple(data.get("required_documents") or ()),
            form=tuple(
                FormField(f["name"], f["label"], bool(f.get("required", False)), f.get("type", "text"),
                          tuple(f.get("options") or ()))
                for f in data.get("form") or ()
            ),
            next_procedures=tuple(data.get("next_procedures") or ()),
            chain_days=data.get("chain_days"),
            handled_by=data.get("handled_by", ""), legal_basis=data.get("legal_basis", ""),
            fee_note=data.get("fee_note", ""), catalog_version=data.get("catalog_version", ""),
        )


@dataclass(frozen=True)
class Catalog:
    version: str
    digest: str  # of the file's content: a changed file reloads even if `version` was forgotten
    procedures: tuple[Procedure, ...] = field(default=())

    def get(self, code: str) -> Procedure | None:
        return next((p for p in self.procedures if p.code == code), None)


def parse_catalog(text: str) -> Catalog:
    document = yaml.safe_load(text)
    version = str(document["version"])
    procedures = tuple(
        Procedure.from_dict({**item, "catalog_version": version}) for item in document["procedures"]
    )
    _check(procedures)
    return Catalog(version, hashlib.sha256(text.encode("utf-8")).hexdigest(), procedures)


def load_catalog_file(path: Path = CATALOG_FILE) -> Catalog:
    return parse_catalog(path.read_text(encoding="utf-8"))


def _check(procedures: tuple[Procedure, ...]) -> None:
    codes = [p.code for p in procedures]
    if len(codes) != len(set(codes)):
        raise CatalogError("duplicate procedure codes")
    for p in procedures:
        problems = procedure_errors(p.to_dict(), set(codes))
        if problems:
            raise CatalogError(f"{p.code}: " + "; ".join(f"{name}: {message}" for name, message in problems))


# ---------------------------------------------------------------- editing a procedure
CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,31}$")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
AUTHORITIES = ("ward", "province")  # two-tier local government since 1 July 2025
MAX_DAYS = 365
EDITABLE = ("code", "name", "field", "level", "authority", "statutory_days", "ward_days", "fee",
            "required_documents", "next_procedures", "chain_days", "handled_by", "legal_basis", "fee_note", "form")


def procedure_errors(data: dict, known_codes: set[str]) -> list[tuple[str, str]]:
    """Problems with a procedure as an administrator (or the catalog file) wrote it, as
    [(field, Vietnamese message)]; empty when it may go into the catalog. `known_codes`:
    the procedures `next_procedures` may name."""
    errors: list[tuple[str, str]] = []

    def need(ok: bool, name: str, message: str) -> None:
        if not ok:
            errors.append((name, message))

    for name in data:
        need(name in EDITABLE or name in ("online", "catalog_version", "active"), name, "Trường không được hỗ trợ.")
    code = data.get("code")
    need(isinstance(code, str) and bool(CODE.match(code)), "code",
         "Mã thủ tục gồm chữ in hoa, chữ số và dấu gạch ngang, 2–32 ký tự.")
    for name, limit in (("name", 300), ("field", 100)):
        value = data.get(name)
        need(isinstance(value, str) and 0 < len(value.strip()) <= limit, name, f"Bắt buộc, tối đa {limit} ký tự.")
    for name in ("handled_by", "legal_basis", "fee_note"):
        value = data.get(name, "")
        need(isinstance(value, str) and len(value) <= 500, name, "Tối đa 500 ký tự.")
    need(data.get("level") in (2, 3, 4) and not isinstance(data.get("level"), bool), "level", "Mức độ phải là 2, 3 hoặc 4.")
    need(data.get("authority") in AUTHORITIES, "authority", "Thẩm quyền phải là «ward» (cấp xã) hoặc «province» (cấp tỉnh).")
    days_ok = True
    for name in ("statutory_days", "ward_days", "fee"):
        value = data.get(name)
        limit = 10**9 if name == "fee" else MAX_DAYS
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit
        days_ok &= ok
        need(ok, name, f"Phải là số nguyên từ 0 đến {limit}.")
    if days_ok and data["statutory_days"] > 0:
        need(data["ward_days"] <= data["statutory_days"], "ward_days",
             "Phường không được hẹn dài hơn thời hạn luật định.")
    documents = data.get("required_documents", [])
    need(isinstance(documents, list) and all(isinstance(d, str) and 0 < len(d.strip()) <= 500 for d in documents),
         "required_documents", "Danh sách giấy tờ, mỗi mục là chữ (tối đa 500 ký tự).")
    following = data.get("next_procedures", [])
    if not isinstance(following, list) or not all(isinstance(c, str) for c in following):
        errors.append(("next_procedures", "Danh sách mã thủ tục."))
    else:
        for c in following:
            need(c != code, "next_procedures", "Thủ tục không thể liên thông với chính nó.")
            need(c == code or c in known_codes, "next_procedures", f"Không có thủ tục với mã {c}.")
        need(len(set(following)) == len(following), "next_procedures", "Mã thủ tục bị lặp.")
    chain_days = data.get("chain_days")
    if chain_days is not None:
        need(isinstance(chain_days, int) and not isinstance(chain_days, bool) and 0 <= chain_days <= MAX_DAYS,
             "chain_days", f"Phải là số nguyên từ 0 đến {MAX_DAYS}.")
        need(bool(following), "chain_days", "Chỉ dùng khi thủ tục có thủ tục liên thông (next_procedures).")
    errors.extend(_form_definition_errors(data.get("form", [])))
    return errors


def _form_definition_errors(form) -> list[tuple[str, str]]:
    if not isinstance(form, list):
        return [("form", "Danh sách trường của tờ khai.")]
    errors, seen = [], set()
    for i, f in enumerate(form):
        where = f"form[{i}]"
        if not isinstance(f, dict):
            errors.append((where, "Mỗi trường là một đối tượng {name, label, required, type, options?}."))
            continue
        name = f.get("name")
        if not isinstance(name, str) or not FIELD_NAME.match(name):
            errors.append((f"{where}.name", "Tên trường: chữ thường không dấu, chữ số, dấu gạch dưới."))
        elif name in seen:
            errors.append((f"{where}.name", "Tên trường bị lặp."))
        seen.add(name)
        label = f.get("label")
        if not isinstance(label, str) or not 0 < len(label.strip()) <= 200:
            errors.append((f"{where}.label", "Nhãn bắt buộc, tối đa 200 ký tự."))
        if not isinstance(f.get("required", False), bool):
            errors.append((f"{where}.required", "Phải là true hoặc false."))
        kind = f.get("type", "text")
        if kind not in FIELD_TYPES:
            errors.append((f"{where}.type", "Kiểu trường: " + ", ".join(FIELD_TYPES) + "."))
        options = f.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) and o.strip() for o in options):
            errors.append((f"{where}.options", "Danh sách lựa chọn."))
        elif kind == "choice" and not options:
            errors.append((f"{where}.options", "Trường lựa chọn cần danh sách lựa chọn."))
    return errors


# ---------------------------------------------------------------- the applicant's form
def chain_form(procedures: list[Procedure]) -> list[FormField]:
    """The fields of several procedures filled in once (liên thông): the same name is
    the same datum, asked once, required if any procedure requires it."""
    fields: dict[str, FormField] = {}
    for procedure in procedures:
        for f in procedure.form:
            known = fields.get(f.name)
            if known is None:
                fields[f.name] = f
            elif f.required and not known.required:
                fields[f.name] = FormField(known.name, known.label, True, known.type, known.options)
    return list(fields.values())


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def form_errors(fields: list[FormField], form: dict) -> dict[str, str]:
    """Problems with `form`, as {field name: Vietnamese message}; empty when it is valid."""
    errors: dict[str, str] = {}
    known = {f.name for f in fields}
    for name in form:
        if name not in known:
            errors[name] = "Trường này không có trong mẫu đơn của thủ tục."
    for f in fields:
        value = form.get(f.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if f.required:
                errors[f.name] = f"Vui lòng nhập «{f.label}»."
            continue
        problem = _value_problem(f, value)
        if problem:
            errors[f.name] = problem
    return errors


def _value_problem(f: FormField, value) -> str | None:
    if f.type == "number":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"«{f.label}» phải là một số nguyên không âm."
        return None
    if not isinstance(value, str):
        return f"«{f.label}» phải là chữ."
    if len(value) > MAX_TEXT_LENGTH:
        return f"«{f.label}» dài quá {MAX_TEXT_LENGTH} ký tự."
    if f.type == "date":
        try:
            if not _DATE.match(value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            return f"«{f.label}» phải là ngày theo dạng YYYY-MM-DD."
    if f.type == "choice" and value not in f.options:
        return f"«{f.label}» phải là một trong: {', '.join(f.options)}."
    return None


def clean_form(fields: list[FormField], form: dict) -> dict:
    """The part of a (valid) form that belongs to these fields, text trimmed."""
    names = {f.name for f in fields}
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in form.items() if k in names}
