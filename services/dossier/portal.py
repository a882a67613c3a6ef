"""The citizen portal (/dossier/portal): the catalog of procedures, submitting a dossier
online, «Hồ sơ của tôi», one dossier's progress, and the public lookup by receipt code.

Plain server-rendered HTML in Vietnamese that works without JavaScript: forms POST, the
server answers with a page or a 303 redirect. Pages only translate HTTP: every read and
write is a call of the use cases the JSON API calls — procedures, submission.submit
behind the API's idempotency record, dossiers (reading, the lookup and its rate limit),
attaching.attach, issuing.result_of, paying.pay — so a page is never a second, weaker
path into the data. The session is the citizen's access token in the `motcua_session`
cookie (motcua_common.web_session); every form carries the CSRF token."""
from __future__ import annotations

import logging
import re
import secrets
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, abort, g, make_response, redirect, render_template, request, url_for
from pymongo.errors import PyMongoError
from werkzeug.exceptions import HTTPException

from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, idempotent, request_context
from motcua_common.web_session import CsrfRefused, check_csrf, csrf_token, issue_csrf_cookie, session_principal

from . import (
    attaching, attachments, domain, dossiers, issuing, offerings, paying, payments, procedures, submission, views, wards,
)
from .catalog import Procedure, chain_form
from .deps import Deps

log = logging.getLogger(__name__)

FOLDER = Path(__file__).resolve().parent
PORTAL = "/dossier/portal"
MY_DOSSIERS_SHOWN = 100
WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")
LEVELS = {
    2: "Mức độ 2: nộp hồ sơ tại Bộ phận một cửa",
    3: "Mức độ 3: nộp hồ sơ trực tuyến",
    4: "Mức độ 4: nộp hồ sơ, nộp phí và nhận kết quả trực tuyến",
}
CHANNELS = {"online": "Trực tuyến", "counter": "Tại Bộ phận một cửa"}
# What the citizen does next, for each status (the fee and the officer's note come on top).
NEXT_STEP = {
    domain.SUBMITTED: "Hồ sơ đang chờ cán bộ tiếp nhận. Bạn có thể đính kèm ảnh chụp hoặc bản quét các giấy tờ "
                      "ở cuối trang này.",
    domain.RECEIVED: "Cán bộ đã tiếp nhận hồ sơ. Bạn chưa cần làm gì thêm; hãy theo dõi trang này.",
    domain.PROCESSING: "Hồ sơ đang được giải quyết. Bạn chưa cần làm gì thêm; hãy theo dõi trang này.",
    domain.SUPPLEMENT_REQUESTED: "Cán bộ cần bạn bổ sung giấy tờ. Đính kèm giấy tờ còn thiếu ở cuối trang này "
                                 "hoặc mang đến Bộ phận một cửa. Thời hạn giải quyết tạm dừng trong khi chờ bổ sung.",
    domain.RESULT_READY: "Đã có kết quả. Tải kết quả có chữ ký số (PDF) bên dưới, hoặc nhận bản giấy tại "
                         "Bộ phận một cửa.",
    domain.RETURNED: "Hồ sơ đã hoàn thành và đã trả kết quả.",
    domain.REJECTED: "Hồ sơ không được giải quyết. Xem lý do bên dưới; cần hỏi thêm, xin liên hệ Bộ phận một cửa.",
}
# Problems whose API wording suits a developer more than a citizen filling in a form.
FORM_MESSAGES = {
    "validation_failed": "Tờ khai chưa đúng ở các ô được đánh dấu. Vui lòng sửa rồi bấm «Nộp hồ sơ» lại.",
    "idempotency_in_progress": "Hồ sơ đang được gửi. Vui lòng chờ vài giây rồi mở «Hồ sơ của tôi».",
    "idempotency_key_reused": "Tờ khai này đã được nộp rồi. Xem hồ sơ trong «Hồ sơ của tôi»; muốn nộp một hồ sơ "
                              "mới, hãy mở lại trang thủ tục.",
    "idempotency_outcome_lost": "Hồ sơ đã được ghi nhận. Xem hồ sơ trong «Hồ sơ của tôi».",
}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DMY_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_DIGITS = re.compile(r"^[0-9]{1,15}$")

portal = Blueprint("dossier_portal", __name__, url_prefix=PORTAL, root_path=str(FOLDER),
                   static_folder="static", static_url_path="/static")
portal.after_request(issue_csrf_cookie)


# ---------------------------------------------------------------- session and page helpers
def deps() -> Deps:
    return request_context()


def signed_in() -> Principal | None:
    if "portal_principal" not in g:
        g.portal_principal = session_principal(deps().verifier)
    return g.portal_principal


def login_url(next_path: str) -> str:
    return "/identity/login?next=" + quote(next_path, safe="/")


def _here() -> str:
    return request.full_path.rstrip("?")


def _citizen(back: str | None = None) -> Principal:
    """The signed-in citizen; otherwise the page to sign in, which comes `back` here (this
    page by default) — or a page saying why not."""
    principal = signed_in()
    if principal is None:
        abort(redirect(login_url(back or _here()), 303))
    if principal.must_change_password:
        abort(_message(403, "Cần đổi mật khẩu",
                       "Bạn đang dùng mật khẩu tạm thời. Vui lòng đổi mật khẩu trước khi tiếp tục (hoặc nhắn tin "
                       "«MK <mật khẩu tạm> <mật khẩu mới>» tới tổng đài của phường).",
                       action=("/identity/password?next=" + quote(_here(), safe="/"), "Đổi mật khẩu")))
    if principal.role != "citizen":
        abort(_message(403, "Trang dành cho công dân",
                       "Cổng dịch vụ công dành cho tài khoản công dân. Cán bộ nộp hộ và xử lý hồ sơ tại màn hình "
                       "của quầy."))
    return principal


def _message(status: int, title: str, text: str, headers: dict | None = None, action: tuple[str, str] | None = None):
    action_url, action_label = action or (None, None)
    response = make_response(render_template("portal/message.html", title=title, text=text, action_url=action_url,
                                             action_label=action_label), status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _vietnamese(detail: str | None) -> str:
    """The Vietnamese half of an API message ("Tiếng Việt. / English.")."""
    return (detail or "").split(" / ")[0].strip()


@portal.context_processor
def _page_globals():
    return {"citizen": signed_in(), "csrf_token": csrf_token, "login_url": login_url(_here()),
            "status_labels": domain.STATUS_LABELS, "portal": PORTAL}


@portal.app_template_filter("vn_date")
def vn_date(value, weekday: bool = False) -> str:
    """2026-03-12 (or a date) -> 12/03/2026, with the weekday when asked."""
    if not value:
        return ""
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    text = f"{day:%d/%m/%Y}"
    return f"{WEEKDAYS[day.weekday()]}, {text}" if weekday else text


@portal.app_template_filter("vn_time")
def vn_time(moment: datetime | str) -> str:
    """A stored UTC moment (or the API's "…Z" string) as the office's local time: 10/03/2026 09:00."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return f"{deps().clock.local(moment):%d/%m/%Y %H:%M}"


@portal.app_template_filter("vnd")
def vnd(amount: int) -> str:
    return payments.format_vnd(amount) if amount else "Miễn phí"


@portal.app_template_filter("working_days")
def working_days(days: int) -> str:
    return "Trong ngày làm việc" if days == 0 else f"{days} ngày làm việc"


# ---------------------------------------------------------------- errors as pages
@portal.errorhandler(CsrfRefused)
def _csrf_refused(_exc):
    return _message(400, "Phiên làm việc đã hết hạn",
                    "Phiên làm việc đã hết hạn, vui lòng tải lại trang rồi thử lại.")


@portal.errorhandler(Problem)
def _problem(exc: Problem):
    return _message(exc.status, exc.title, _vietnamese(exc.detail) or exc.title, exc.headers)


@portal.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if exc.code == 404:
        return _not_found("Không có trang này.")
    if exc.code == 413:
        return _message(413, "Tệp quá lớn", f"Mỗi tệp tối đa {attachments.MAX_FILE_BYTES // (1024 * 1024)} MB.")
    return _message(exc.code or 500, "Không thực hiện được", "Yêu cầu không hợp lệ. Vui lòng quay lại trang trước.")


@portal.errorhandler(PyMongoError)
def _database_down(exc: PyMongoError):
    log.error("portal: database error: %s", exc.__class__.__name__)
    return _message(503, "Hệ thống tạm thời gián đoạn", "Vui lòng thử lại sau ít phút.", {"Retry-After": "5"})


def _not_found(text: str):
    return _message(404, "Không tìm thấy", text)


@portal.get("/")
def catalog_with_slash():
    return redirect(PORTAL, 308)


@portal.get("/<path:rest>")
def unknown_page(rest: str):
    return _not_found("Không có trang này. Xem danh mục thủ tục hoặc «Hồ sơ của tôi».")


# ---------------------------------------------------------------- the catalog
@portal.get("")
def catalog():
    query = request.args.get("q", "").strip()[:100]
    field = request.args.get("linh_vuc", "").strip()
    groups, fields, count = procedures.search(deps(), query, field)
    principal = signed_in()
    ward_id = request.args.get("phuong", "").strip() or (principal.ward_id if principal else None)
    return render_template("portal/catalog.html", groups=groups, fields=fields,
                           query=query, field=field, count=count, levels=LEVELS, ward=_ward_offers(ward_id))


def _ward_offers(ward_id: str | None) -> dict | None:
    """What a ward takes online, for the pages: {ward_id, name, online: {code: since}};
    None without a (well-formed) ward."""
    if not ward_id or not domain.is_ward_id(ward_id):
        return None
    return {"ward_id": ward_id, "name": wards.name_or_none(deps(), ward_id) or issuing.named_by_id(ward_id),
            "online": offerings.online_since(deps(), ward_id)}


# ---------------------------------------------------------------- one procedure, and submitting it
def _procedure_or_404(code: str) -> Procedure:
    procedure = procedures.find(deps(), code)
    if procedure is None:
        abort(_not_found("Không có thủ tục với mã này. Xem danh mục thủ tục để chọn thủ tục cần làm."))
    return procedure


def _chain(procedure: Procedure) -> list[Procedure]:
    return procedures.online_chain(deps(), procedure)


def _wards(own: str | None) -> list[tuple[str, str]]:
    return submission.wards_offered(deps(), own)


def _render_procedure(procedure: Procedure, with_chain: bool, values: dict | None = None, ward_id: str | None = None,
                      errors: dict | None = None, message: str | None = None, status: int = 200):
    chain = _chain(procedure)
    submitted = chain if with_chain and chain else [procedure]
    principal = signed_in()
    own_ward = principal.ward_id if principal else None
    expected = submission.expected_due(deps(), procedure)
    return render_template(
        "portal/procedure.html", procedure=procedure, levels=LEVELS, chain=chain, with_chain=len(submitted) > 1,
        fields=chain_form(submitted), values=values or {}, wards=_wards(own_ward), ward_id=ward_id or own_ward,
        errors=errors or {}, message=message, fee_text=paying.fee_note(deps(), procedure), expected_due=expected,
        form_token=secrets.token_urlsafe(16), ward=_ward_offers(own_ward),
    ), status


@portal.get("/thu-tuc/<code>")
def procedure_page(code: str):
    procedure = _procedure_or_404(code)
    return _render_procedure(procedure, request.args.get("lien_thong") == "1")


@portal.post("/thu-tuc/<code>")
def submit_procedure(code: str):
    # Read the raw body before the form is parsed from it: the idempotency record
    # fingerprints it, exactly as it fingerprints an API request's JSON.
    request.get_data(cache=True)
    check_csrf()
    principal = _citizen()
    procedure = _procedure_or_404(code)
    with_chain = request.form.get("lien_thong") == "1" and bool(_chain(procedure))
    fields = chain_form(_chain(procedure) if with_chain else [procedure])
    values = {f.name: request.form.get(f"form.{f.name}", "").strip() for f in fields}
    ward_id = request.form.get("ward_id", "").strip()
    if ward_id not in dict(_wards(principal.ward_id)):
        return _render_procedure(procedure, with_chain, values, ward_id,
                                 {"ward_id": "Chọn phường (xã) nơi nộp hồ sơ."}, FORM_MESSAGES["validation_failed"], 422)
    body = {"procedure_code": procedure.code, "ward_id": ward_id, "form": typed_form(fields, values),
            "with_chain": with_chain}
    try:
        answer = _submit_once(principal, body, request.form.get("form_token", ""))
    except Problem as problem:
        errors, message = _form_problem(problem, fields)
        return _render_procedure(procedure, with_chain, values, ward_id, errors, message, problem.status)
    return redirect(url_for(".dossier_page", dossier_id=answer["dossier_id"], da_nop=1), 303)


def _submit_once(principal: Principal, body: dict, form_token: str) -> dict:
    """submission.submit — the API's own submission — behind the API's idempotency record,
    keyed by the form's one-time token: a double tap on «Nộp hồ sơ» on a slow phone makes
    one dossier, and the second tap lands on the same dossier page."""
    d = deps()
    if 1 <= len(form_token) <= 200:
        # idempotent() reads the key from the request's headers (environ-backed) and the
        # caller from g.principal, as for a bearer-token request.
        request.environ["HTTP_IDEMPOTENCY_KEY"] = form_token
    g.principal = principal
    response = idempotent(d.db, "portal-dossiers",
                          lambda: (views.submission(submission.submit(d, principal, body)), 201))
    return response.get_json()


def typed_form(fields, values: dict) -> dict:
    """The HTML form's strings as the API's JSON form: numbers as numbers, a date typed as
    ngày/tháng/năm as YYYY-MM-DD, empty boxes left out. Anything else is passed on as
    typed, for the API's validation to name.

    Dates are plain text boxes, not <input type=date>: the browser's picker shows its own
    order (mm/dd/yyyy on many phones), and a birth year decades back is quicker typed
    than scrolled to."""
    form = {}
    for f in fields:
        raw = values.get(f.name, "")
        if not raw:
            continue
        if f.type == "number" and _DIGITS.match(raw):
            form[f.name] = int(raw)
        elif f.type == "date":
            form[f.name] = iso_date(raw)
        else:
            form[f.name] = raw
    return form


def iso_date(raw: str) -> str:
    if _ISO_DATE.match(raw):
        return raw
    typed = _DMY_DATE.match(raw)
    if typed:
        day, month, year = (int(x) for x in typed.groups())
        try:
            return date(year, month, day).isoformat()
        except ValueError:
            pass
    return raw


def _form_problem(problem: Problem, fields) -> tuple[dict[str, str], str]:
    """The API's refusal as messages next to the fields, and one at the top."""
    by_name = {f"form.{f.name}": f for f in fields}
    errors, elsewhere = {}, []
    for error in problem.errors or []:
        name, text = error["field"], error["message"]
        if name in by_name and by_name[name].type == "date" and not text.startswith("Vui lòng nhập"):
            text = f"«{by_name[name].label}» chưa đúng: gõ theo dạng ngày/tháng/năm, ví dụ 04/05/1990."
        if name in by_name or name == "ward_id":
            errors[name] = text
        else:
            elsewhere.append(text)
    message = FORM_MESSAGES.get(problem.code) or _vietnamese(problem.detail) or problem.title
    if elsewhere:
        message = " ".join([message, *elsewhere])
    return errors, message


# ---------------------------------------------------------------- the citizen's dossiers
@portal.get("/ho-so")
def my_dossiers():
    principal = _citizen()
    # The API's query for a citizen: their own dossiers, newest first.
    mine = dossiers.search(deps(), principal, {}, default_limit=MY_DOSSIERS_SHOWN)
    return render_template("portal/my_dossiers.html", dossiers=mine)


def _own_dossier_or_404(principal: Principal, dossier_id: str) -> dict:
    """The dossier when the API lets this citizen read it. Someone else's dossier is "not
    found", like one that does not exist: the portal does not confirm that an id exists."""
    dossier = dossiers.readable_or_none(deps(), principal, dossier_id)
    if dossier is None:
        abort(_not_found("Không tìm thấy hồ sơ này trong các hồ sơ của bạn."))
    return dossier


def _render_dossier(dossier: dict, upload_error: str | None = None, status: int = 200):
    return render_template(
        "portal/dossier.html", dossier=dossier, **dossiers.citizen_view(deps(), dossier),
        next_step=NEXT_STEP[dossier["status"]], channels=CHANNELS, upload_error=upload_error,
        allowed_label=attachments.ALLOWED_LABEL, max_mb=attachments.MAX_FILE_BYTES // (1024 * 1024),
        just_submitted=request.args.get("da_nop") == "1", just_attached=request.args.get("dinh_kem") == "1",
    ), status


@portal.get("/ho-so/<dossier_id>")
def dossier_page(dossier_id: str):
    principal = _citizen()
    return _render_dossier(_own_dossier_or_404(principal, dossier_id))


@portal.get("/ho-so/<dossier_id>/ket-qua")
def dossier_result(dossier_id: str):
    principal = _citizen()
    dossier = _own_dossier_or_404(principal, dossier_id)
    return views.result_download(dossier, issuing.result_of(deps(), dossier))


@portal.post("/ho-so/<dossier_id>/le-phi")
def pay_fee(dossier_id: str):
    """Open (or reopen) the online checkout, then go to the provider's page."""
    check_csrf()
    principal = _citizen(back=url_for(".dossier_page", dossier_id=dossier_id))
    dossier = _own_dossier_or_404(principal, dossier_id)
    attempt, _status = paying.pay(deps(), principal, dossier, {"method": payments.ONLINE}, request.url_root)
    return redirect(attempt["payment_url"], 303)


@portal.post("/ho-so/<dossier_id>/dinh-kem")
def attach(dossier_id: str):
    check_csrf()
    principal = _citizen(back=url_for(".dossier_page", dossier_id=dossier_id))
    dossier = _own_dossier_or_404(principal, dossier_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _render_dossier(dossier, "Chọn tệp ảnh chụp hoặc bản quét giấy tờ cần đính kèm.", 422)
    try:
        attaching.attach(deps(), principal, dossier, upload.filename, upload.stream.read, request.form.get("document"))
    except attachments.AttachmentRefused as exc:
        status = attachments.REFUSAL_STATUS.get(exc.code, 422)
        return _render_dossier(dossiers.get(deps(), dossier_id), exc.message, status)
    return redirect(url_for(".dossier_page", dossier_id=dossier_id, dinh_kem=1), 303)


# ---------------------------------------------------------------- lookup by receipt code
@portal.get("/tra-cuu")
def lookup_page():
    """The lookup form; `?ma=<receipt code>` (the address under the receipt's QR code)
    fills the code in, so that the citizen types only the phone digits."""
    code = " ".join(request.args.get("ma", "").split())[:64]
    return render_template("portal/lookup.html", values={"receipt_code": code} if code else {}, errors={},
                           found=None, message=None)


@portal.post("/tra-cuu")
def lookup():
    """The API's public lookup as a form: the same rate limit, the same single answer
    for a wrong code and wrong digits. POSTed, so the phone digits stay out of the
    address bar, the browser's history and the access logs."""
    check_csrf()
    values = {"receipt_code": request.form.get("receipt_code", "").strip()[:64],
              "phone_last4": request.form.get("phone_last4", "").strip()[:8]}

    def page(status: int, found=None, errors=None, message=None, headers=None):
        response = make_response(render_template("portal/lookup.html", values=values, errors=errors or {},
                                                 found=found, message=message), status)
        response.headers.update(headers or {})
        return response

    try:
        dossier = dossiers.lookup(deps(), request.remote_addr or "unknown", values["receipt_code"],
                                  values["phone_last4"])
    except ValidationFailed as problem:
        return page(422, errors={e["field"]: e["message"] for e in problem.errors})
    except Problem as problem:
        if problem.status == 429:  # too many lookups from this address
            return page(problem.status, message=_vietnamese(problem.detail), headers=problem.headers)
        if problem.status == 404:
            return page(404, message="Không tìm thấy hồ sơ với mã biên nhận và 4 số cuối điện thoại này. "
                                     "Vui lòng kiểm tra lại.")
        raise
    return page(200, found=views.public_status(dossier))
