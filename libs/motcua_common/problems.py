"""Refusals as RFC 9457 problem details, with a stable machine-readable `code`.

Flask-free: the use cases of every service raise these, and `http` turns them into
responses (`Problem.to_response` is the only part that needs a request, and it imports
what it needs when called)."""
from __future__ import annotations

import hmac
import json

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error answered as RFC 9457 problem details."""

    def __init__(self, status: int, code: str, title: str, detail: str | None = None,
                 errors: list[dict] | None = None, headers: dict | None = None, **extra):
        super().__init__(detail or title)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.errors, self.headers, self.extra = errors, headers or {}, extra

    def body(self) -> dict:
        body = {
            "type": f"https://motcua.gov.vn/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def to_response(self):
        from flask import Response, request

        body = self.body()
        try:
            body["instance"] = request.path
        except RuntimeError:
            pass
        response = Response(json.dumps(body, ensure_ascii=False), status=self.status, mimetype=PROBLEM_JSON)
        for k, v in self.headers.items():
            response.headers[k] = v
        return response


class ValidationFailed(Problem):
    def __init__(self, errors: list[dict], detail: str = "Dữ liệu gửi lên chưa hợp lệ. / The request has invalid fields."):
        super().__init__(422, "validation_failed", "Dữ liệu không hợp lệ", detail, errors=errors)


def field_error(field: str, message: str) -> dict:
    return {"field": field, "message": message}


def not_found(detail: str = "Không tìm thấy. / Not found.") -> Problem:
    return Problem(404, "not_found", "Không tìm thấy", detail)


def forbidden(detail: str = "Bạn không có quyền thực hiện thao tác này. / Not allowed.") -> Problem:
    return Problem(403, "forbidden", "Không có quyền", detail)


def require_gateway_token(expected: str | None, given: str | None, title: str = "Sai mã cổng tin nhắn") -> None:
    """An SMS gateway's shared secret for one job (SMS_INBOUND_TOKEN for inbound SMS,
    SMS_DELIVERY_TOKEN for receipts), compared in constant time. Unset on our side means
    no gateway may call: refused like a wrong token."""
    if not expected or not hmac.compare_digest((given or "").encode(), expected.encode()):
        raise Problem(401, "invalid_gateway_token", title,
                      "Thiếu hoặc sai X-Gateway-Token. / Missing or wrong X-Gateway-Token.")
