"""identity's refusals (errors.py) as the API answers them: RFC 9457 problem details with
their stable codes, titles and messages. The JSON routes, the Kannel inbound and the pages
all map through `problem_of`; no use case speaks HTTP."""
from __future__ import annotations

from motcua_common.http import Problem, ValidationFailed, field_error, forbidden

from . import errors


def problem_of(error: errors.IdentityError) -> Problem:
    if isinstance(error, errors.Invalid):
        return ValidationFailed([field_error(e.field, e.message) for e in error.errors])
    if isinstance(error, errors.NotAllowed):
        return forbidden(error.detail) if error.detail else forbidden()
    if isinstance(error, errors.TooManyRegistrations):
        seconds = error.retry_after
        return Problem(429, "rate_limited", "Đăng ký quá nhiều lần",
                       f"Có quá nhiều lượt đăng ký từ địa chỉ này, vui lòng thử lại sau {seconds} "
                       "giây hoặc đăng ký tại bộ phận một cửa. / Too many registrations from this address, "
                       "retry later.", headers={"Retry-After": str(seconds)})
    if isinstance(error, errors.TooManyLogins):
        seconds = error.retry_after
        return Problem(429, "rate_limited", "Đăng nhập quá nhiều lần",
                       f"Bạn đã thử đăng nhập quá nhiều lần, vui lòng thử lại sau {seconds} giây. "
                       "/ Too many login attempts, retry later.", headers={"Retry-After": str(seconds)})
    if isinstance(error, errors.NationalIdTaken):
        return Problem(409, "national_id_taken", "Số CCCD đã được đăng ký",
                       "Số CCCD này đã có tài khoản. Hãy đăng nhập hoặc đặt lại mật khẩu. "
                       "/ An account already exists for this national id.")
    if isinstance(error, errors.InvalidCredentials):
        return Problem(401, "invalid_credentials", "Sai thông tin đăng nhập",
                       "Tên đăng nhập hoặc mật khẩu không đúng. / Wrong username or password.")
    if isinstance(error, errors.WrongCurrentPassword):
        return Problem(401, "invalid_credentials", "Sai mật khẩu hiện tại",
                       "Mật khẩu hiện tại không đúng. / The current password is wrong.")
    if isinstance(error, errors.Locked):
        local = error.local_until  # the platform's time zone, as the citizen's clock shows
        return Problem(423, "locked", "Tài khoản tạm khóa",
                       f"Đăng nhập sai quá nhiều lần. Tài khoản bị khóa đến {local:%H:%M ngày %d/%m/%Y}. "
                       "/ Too many failed logins; locked until the given time.",
                       locked_until=error.until.isoformat().replace("+00:00", "Z"),
                       headers={"Retry-After": str(error.retry_after)})
    if isinstance(error, errors.TemporaryPasswordExpired):
        return Problem(401, "temporary_password_expired", "Mật khẩu tạm đã hết hạn",
                       "Mật khẩu tạm thời đã quá 72 giờ. Bạn vẫn đổi được mật khẩu bằng tin nhắn từ số điện thoại "
                       "đã đăng ký: MK <mật khẩu tạm> <mật khẩu mới>; hoặc nhắn DK như lần đầu để nhận mật khẩu mới. "
                       "/ The temporary password has expired: change it by SMS (MK <old> <new>) or text DK again.")
    if isinstance(error, errors.UsernameTaken):
        return Problem(409, "username_taken", "Tên đăng nhập đã tồn tại", "Hãy chọn tên đăng nhập khác.")
    if isinstance(error, errors.WardNotFound):
        return Problem(404, "ward_not_found", "Không tìm thấy phường", f"Không có phường {error.ward_id}.")
    if isinstance(error, errors.CitizenNotFound):
        return Problem(404, "not_found", "Không tìm thấy", "Không có công dân này trong phường của bạn.")
    if isinstance(error, errors.WardExists):
        what = "Mã đơn vị hành chính" if error.field == "official_code" else "Mã phường"
        return Problem(409, "ward_exists", "Phường đã được mở",
                       f"{what} này đã được mở (phường {error.ward_id}). / This ward is already open.",
                       field=error.field, ward_id=error.ward_id)
    if isinstance(error, errors.OfficerNotFound):
        return Problem(404, "officer_not_found", "Không tìm thấy cán bộ", "Không có cán bộ này. / No such officer.")
    if isinstance(error, errors.PasswordNotSent):
        return Problem(503, "dependency_unavailable", "Chưa gửi được tin nhắn",
                       "Không gửi được mật khẩu tạm, vui lòng thử lại sau ít phút.", headers={"Retry-After": "30"})
    if isinstance(error, errors.PhoneNotVerified):
        return Problem(403, "phone_not_verified", "Chưa xác nhận số điện thoại",
                       "Tài khoản đăng ký trên mạng chỉ dùng được sau khi nhập mã xác nhận 6 chữ số gửi đến số điện "
                       "thoại đã đăng ký. Nếu không nhận được mã, hãy yêu cầu gửi lại mã hoặc đến Bộ phận một cửa của "
                       "phường. / The phone is not verified yet: enter the 6-digit code sent to it.",
                       citizen_id=error.citizen_id)
    if isinstance(error, errors.PhoneAlreadyVerified):
        return Problem(409, "phone_already_verified", "Số điện thoại đã được xác nhận",
                       "Tài khoản này không chờ mã xác nhận. Hãy đăng nhập. / This account is not waiting for a code.")
    if isinstance(error, errors.PhoneCodeExpired):
        return Problem(410, "code_expired", "Mã xác nhận đã hết hạn",
                       "Mã xác nhận đã hết hạn (10 phút) hoặc không còn dùng được. Hãy yêu cầu gửi mã mới. "
                       "/ The code has expired: ask for a new one.")
    if isinstance(error, errors.PhoneCodeWrong):
        return ValidationFailed([field_error("code", f"Mã xác nhận không đúng, còn {error.tries_left} lần thử. "
                                                     f"/ Wrong code, {error.tries_left} tries left.")])
    if isinstance(error, errors.PhoneCodesExhausted):
        return Problem(429, "too_many_tries", "Nhập sai mã quá nhiều lần",
                       "Đã nhập sai mã 5 lần, mã này không còn dùng được. Hãy yêu cầu gửi mã mới. "
                       "/ Five wrong tries: ask for a new code.")
    if isinstance(error, errors.TooManyPhoneCodes):
        return Problem(429, "rate_limited", "Gửi mã quá nhiều lần",
                       "Đã gửi quá nhiều mã xác nhận đến số này hoặc từ địa chỉ này, vui lòng thử lại sau hoặc đến "
                       "Bộ phận một cửa của phường. / Too many codes, retry later.",
                       headers={"Retry-After": str(error.retry_after)})
    raise TypeError(f"no problem details for {error!r}")


def sms_not_configured() -> Problem:
    return Problem(503, "sms_inbound_not_configured", "Chưa cấu hình tin nhắn đến",
                   "SMS_INBOUND_TOKEN is not set: inbound SMS are refused.")


def reply_channel_unavailable(detail: str) -> Problem:
    return Problem(503, "dependency_unavailable", "Dịch vụ tạm thời gián đoạn", detail, headers={"Retry-After": "30"})
