"""Submitting a dossier (nộp hồ sơ): who may, what must be filled in, whose dossier it is,
when it is due; one dossier, or a chain of them (liên thông).

Plain functions of the dependencies (deps.Deps) and the caller, so the API's route and
the portal's form only translate HTTP; the failures are problem details they pass on
unchanged. Also what the portal's form offers before anything is submitted: the wards a
citizen may send to and the date a dossier handed in today would be due."""
from __future__ import annotations

import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from motcua_common import metrics, rpc
from motcua_common.auth import STAFF_ROLES, Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden
from motcua_common.names import fold, unsafe_characters

from . import counter_records, domain, events, issuing, offerings, payments, store
from .deps import Deps
from .dossiers import working_calendar
from .catalog import Procedure, chain_form, clean_form, form_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CounterFiling:
    """What the officer's desk adds to a counter submission (intake.py): the citizen's name
    as the desk shows it, the counter record filed on when the citizen has no account
    (then identity is not asked, and the dossiers belong to nobody until the citizen
    claims them: counter_records.py), and the papers the officer received."""
    citizen_name: str | None = None
    record: dict | None = None
    papers_received: tuple[str, ...] = ()


def submit(deps: Deps, principal: Principal, body: dict, filing: CounterFiling | None = None) -> list[dict]:
    """Store the submission and its events; the dossiers, the one asked for first.

    `chain_procedures` (a list of codes among the procedure's next_procedures) files only
    those links of the chain; `with_chain: true` files them all."""
    procedure, ward_id, form, chain, channel = check(deps, principal, body)
    if filing is not None and filing.record is not None and principal.role != "citizen":
        citizen = {"citizen_id": "", "phone_last4": counter_records.phone_last4(filing.record)}
    else:
        citizen = _resolve_citizen(deps, principal, body)
    desk = _desk_fields(filing)

    now, today = deps.clock.now(), deps.clock.today()
    calendar = working_calendar(deps)
    chain_id = str(uuid.uuid4()) if len(chain) > 1 else None
    dossiers = []
    for position, p in enumerate(chain):
        due = calendar.add_working_days(today, _working_days(p, head=procedure, is_head=position == 0))
        dossiers.append({**_new_dossier(p, ward_id, channel, citizen, clean_form(list(p.form), form),
                                        principal, now, today, due, chain_id), **desk})
    for linked in dossiers[1:]:
        linked["linked_from"] = dossiers[0]["_id"]
    store.insert_dossiers(deps.db, dossiers, lambda d: domain.new_receipt_code(d["ward_id"], today), events.submitted)
    for d in dossiers:
        metrics.DOSSIERS_SUBMITTED.labels(d["ward_id"], channel).inc()
    log.info("dossier submitted", extra={"dossier_id": dossiers[0]["_id"], "procedure_code": procedure.code,
                                         "ward_id": ward_id, "channel": channel, "linked": len(dossiers) - 1})
    return dossiers


def check(deps: Deps, principal: Principal, body: dict) -> tuple[Procedure, str, dict, list[Procedure], str]:
    """Everything submit checks before it asks identity or writes: the procedure, the
    ward, the form, the chain filed and the channel; refusals as submit answers them."""
    procedure, ward_id, form, with_chain = _check_request(deps, principal, body)
    channel = "online" if principal.role == "citizen" else "counter"
    chain = [procedure] + (_chosen_links(deps, procedure, body.get("chain_procedures"))
                           if "chain_procedures" in body else _next_procedures(deps, procedure) if with_chain else [])
    if channel == "online":
        _refuse_counter_only(chain)
        # A ward takes online only what it has reviewed and switched on; the counter, always.
        offerings.check_offered_online(deps, ward_id, chain)
    problems = form_errors(chain_form(chain), form)
    if problems:
        raise ValidationFailed([field_error(f"form.{name}", message) for name, message in problems.items()])
    refuse_hidden_characters(form)
    return procedure, ward_id, form, chain, channel


HIDDEN_CHARACTERS_MESSAGE = ("Có ký tự ẩn hoặc ký tự điều khiển (như ký tự đảo chiều văn bản); "
                             "xin gõ lại nội dung này.")


def hidden_character_fields(form: dict) -> list[str]:
    """The form's text fields carrying a character that would change what the signed
    result shows without being seen itself (names.unsafe_characters: the bidirectional
    overrides and isolates, controls, zero-width characters...). Line breaks and tabs are
    whitespace a person typed, not hidden: the result prints them as spaces."""
    return [name for name, value in form.items()
            if isinstance(value, str) and unsafe_characters(unicodedata.normalize("NFC", " ".join(value.split())))]


class HiddenCharacters(ValidationFailed):
    """422 with its own stable code, and still a ValidationFailed: the portal's form and
    the officer's desk mark the fields as they do any other refused field."""

    def __init__(self, fields: list[str]):
        super().__init__([field_error(f"form.{name}", HIDDEN_CHARACTERS_MESSAGE) for name in fields],
                         "Tờ khai có ký tự ẩn hoặc ký tự điều khiển. / The form carries hidden or control characters.")
        self.code, self.title = "hidden_characters", "Tờ khai có ký tự ẩn"


def refuse_hidden_characters(form: dict) -> None:
    """422 hidden_characters naming each such field: what a citizen submits is printed
    into a result the ward signs, and a right-to-left override in «Họ và tên» would make
    the signed page read differently from what was stored."""
    fields = hidden_character_fields(form)
    if fields:
        raise HiddenCharacters(fields)


def _check_request(deps: Deps, principal: Principal, body: dict) -> tuple[Procedure, str, dict, bool]:
    if principal.role not in ("citizen", *STAFF_ROLES):
        raise forbidden("Chỉ công dân hoặc cán bộ một cửa mới nộp được hồ sơ. / Citizens and ward staff only.")
    errors = []
    code, ward_id, form = body.get("procedure_code"), body.get("ward_id"), body.get("form", {})
    with_chain = body.get("with_chain", False)
    procedure = store.get_procedure(deps.db, code) if isinstance(code, str) else None
    if procedure is None:
        errors.append(field_error("procedure_code", "Không có thủ tục với mã này."))
    if not domain.is_ward_id(ward_id):
        errors.append(field_error("ward_id", "Mã phường không hợp lệ."))
    elif not _ward_exists(deps, ward_id):
        errors.append(field_error("ward_id", "Phường không tồn tại."))
    if not isinstance(form, dict):
        errors.append(field_error("form", "Tờ khai phải là một đối tượng JSON."))
    if not isinstance(with_chain, bool):
        errors.append(field_error("with_chain", "Phải là true hoặc false."))
    national_id = body.get("citizen_national_id")
    if principal.role == "citizen" and national_id is not None:
        errors.append(field_error("citizen_national_id", "Chỉ cán bộ một cửa nộp hộ mới dùng trường này."))
    if principal.role != "citizen" and not domain.is_national_id(national_id):
        errors.append(field_error("citizen_national_id", "Nhập số định danh cá nhân (CCCD) 12 chữ số của công dân."))
    if errors:
        raise ValidationFailed(errors)
    if principal.role != "citizen" and not principal.is_staff_of(ward_id):
        raise forbidden("Cán bộ chỉ nộp hộ hồ sơ tại phường của mình. / Staff of this ward only.")
    return procedure, ward_id, form, with_chain


def _chosen_links(deps: Deps, head: Procedure, codes) -> list[Procedure]:
    """The links of `head`'s chain the officer chose, in the catalog's order."""
    if not isinstance(codes, list) or any(not isinstance(c, str) or c not in head.next_procedures for c in codes):
        raise ValidationFailed([field_error("chain_procedures", "Chỉ chọn các thủ tục liên thông của thủ tục này.")])
    return [p for p in _next_procedures(deps, head) if p.code in codes]


def _desk_fields(filing: CounterFiling | None) -> dict:
    """The fields a counter filing adds to each dossier of the submission."""
    if filing is None:
        return {}
    fields: dict = {"papers_received": list(filing.papers_received)}
    if filing.citizen_name:
        fields.update(citizen_name=filing.citizen_name, citizen_name_key=fold(filing.citizen_name))
    if filing.record is not None:
        fields["counter_record_id"] = filing.record["_id"]
    return fields


def _ward_exists(deps: Deps, ward_id: str) -> bool:
    """Whether identity knows the ward.

    When identity cannot be asked, the ward is taken on trust: a ward office must keep
    taking dossiers while identity or the broker is down (R14). The risk is small: the id
    is well-formed, an officer submits only for their own ward, and the portal offers the
    citizen's own; a citizen sent home without a receipt is the greater harm."""
    try:
        return deps.wards.ward(ward_id) is not None
    except rpc.RpcUnavailable as exc:
        log.warning("ward not checked, identity did not answer; dossier accepted",
                    extra={"ward_id": ward_id, "error": str(exc)})
        return True


def _next_procedures(deps: Deps, head: Procedure) -> list[Procedure]:
    found = [store.get_procedure(deps.db, code) for code in head.next_procedures]
    return [p for p in found if p is not None]


def _refuse_counter_only(chain: list[Procedure]) -> None:
    counter_only = [p for p in chain if not p.online]
    if counter_only:
        names = ", ".join(f"«{p.name}»" for p in counter_only)
        raise Problem(
            422, "counter_only", "Thủ tục chỉ nộp tại quầy",
            f"Thủ tục {names} (mức độ 2) chưa nhận hồ sơ trực tuyến: vui lòng mang giấy tờ đến Bộ phận "
            "một cửa của phường để nộp. / This procedure is accepted at the counter only.",
            errors=[field_error("procedure_code", "Thủ tục này chỉ nộp trực tiếp tại Bộ phận một cửa.")],
        )


def _resolve_citizen(deps: Deps, principal: Principal, body: dict) -> dict:
    """The citizen's opaque id and last phone digits.

    A citizen's own token carries both (identity signed them), so an online submission
    needs no call to identity and keeps working while the broker is down; a token
    without the digits, and every counter submission, asks identity now."""
    if principal.role == "citizen" and principal.phone_last4:
        return {"citizen_id": principal.subject, "phone_last4": principal.phone_last4}
    try:
        if principal.role == "citizen":
            found = deps.citizens.contact(principal.subject)
        else:
            found = deps.citizens.find_by_national_id(body["citizen_national_id"])
    except rpc.RpcUnavailable as exc:
        log.warning("identity did not answer: %s", exc)
        raise Problem(503, "dependency_unavailable", "Dịch vụ tạm thời gián đoạn",
                      "Chưa kiểm tra được thông tin công dân, vui lòng thử lại sau ít phút. "
                      "/ Identity is unavailable, retry shortly.", headers={"Retry-After": "10"}) from exc
    if not found:
        if principal.role == "citizen":
            detail = "Tài khoản công dân chưa có trong hệ thống định danh. / Citizen account not found."
            errors = None
        else:
            detail = ("Công dân chưa có tài khoản: vui lòng đăng ký tài khoản công dân cho người này trước "
                      "(POST /identity/api/v1/citizens), rồi nộp hồ sơ. / Register the citizen first.")
            errors = [field_error("citizen_national_id", "Công dân chưa đăng ký tài khoản.")]
        raise Problem(422, "citizen_not_registered", "Công dân chưa đăng ký", detail, errors=errors)
    return {"citizen_id": found["citizen_id"], "phone_last4": domain.phone_last4(found)}


def _working_days(procedure: Procedure, head: Procedure, is_head: bool) -> int:
    # Liên thông: the dossiers chained to a head that promises the whole chain in N days
    # are due in N days, not in their own (longer) time.
    if not is_head and head.chain_days is not None:
        return head.chain_days
    return procedure.ward_days


def _new_dossier(procedure: Procedure, ward_id: str, channel: str, citizen: dict, form: dict, principal: Principal,
                 now: datetime, today: date, due: date, chain_id: str | None) -> dict:
    return {
        "_id": str(uuid.uuid4()),
        "procedure_code": procedure.code, "procedure_name": procedure.name,
        "catalog_version": procedure.catalog_version,
        "ward_id": ward_id, "channel": channel,
        # Only the last phone digits, to check a lookup; never the phone or national id.
        "citizen_id": citizen["citizen_id"], "phone_last4": citizen["phone_last4"],
        "form": form, "status": domain.SUBMITTED,
        # The fee as the catalog said on the day of submission: a later change of the
        # catalog does not change what this citizen owes.
        "fee": procedure.fee, "payment_status": payments.initial_status(procedure.level, procedure.fee),
        "received_on": today.isoformat(), "due_date": due.isoformat(), "supplement_requested_on": None,
        "chain_id": chain_id, "submitted_at": now, "submitted_by": principal.subject, "updated_at": now,
        "history": [{"status": domain.SUBMITTED, "at": now, "actor_id": principal.subject, "note": None}],
    }


# ---------------------------------------------------------------- what the portal's form offers
def wards_offered(deps: Deps, own: str | None) -> list[tuple[str, str]]:
    """The wards a dossier can be sent to, named as on the results the ward signs: the
    citizen's own ward (identity signed it into the token), unless identity says it no
    longer exists. The dossier service keeps no list of wards of its own, so it offers
    none it cannot vouch for."""
    if not own:
        return []
    try:
        found = deps.wards.ward(own)
    except rpc.RpcUnavailable:
        # Offered all the same, named by its id: the submission takes the ward on trust too.
        return [(own, issuing.named_by_id(own))]
    return [(own, found["name"])] if found else []


def expected_due(deps: Deps, procedure: Procedure) -> date:
    """When a dossier of `procedure` handed in today would be due."""
    return working_calendar(deps).add_working_days(deps.clock.today(), procedure.ward_days)
