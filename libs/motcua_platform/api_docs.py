"""/api-docs: the API reference of the services one machine runs, rendered on the server from
each service's OpenAPI document (the same file it serves at /<svc>/api/v1/openapi.json).
Plain HTML: no CDN, no JavaScript. Headings in Vietnamese with the English API terms."""
from __future__ import annotations

import importlib.resources
from html import escape

import yaml
from werkzeug.wrappers import Response

from motcua_common.config import SERVICES

METHODS = ("get", "post", "put", "patch", "delete")
# What each service is for, in the words of the desk.
SERVICE_NAMES = {
    "identity": "Định danh (identity): tài khoản công dân, cán bộ, phiên đăng nhập, phường",
    "dossier": "Hồ sơ (dossier): thủ tục, nộp và xử lý hồ sơ, kết quả, lệ phí",
    "queue": "Xếp hàng (queue): lấy số, gọi số, màn hình, máy lấy số",
    "notify": "Thông báo (notify): tin nhắn SMS, nhóm và tin nhắn hàng loạt",
    "rating": "Đánh giá (rating): mức độ hài lòng và thống kê",
}
STYLE = """body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.35em .5em;
vertical-align:top;text-align:left}th{background:#f3f3f3}code{font-size:.95em}.m{font-weight:bold;font-family:monospace}
.small{font-size:.9em;color:#333}nav li{margin:.2em 0}"""


def load_document(service: str) -> dict:
    """The service's OpenAPI document, from the installed package (as the service serves it)."""
    text = (importlib.resources.files(f"motcua_{service}") / "openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _resolve(doc: dict, node: dict) -> dict:
    ref = node.get("$ref") if isinstance(node, dict) else None
    if not ref or not ref.startswith("#/"):
        return node
    for part in ref[2:].split("/"):
        doc = doc[part]
    return doc


def operations(doc: dict):
    """(tag, method, full path, operation, path item) in document order; the full path is the
    path item's (or the operation's) server joined to the path."""
    base = (doc.get("servers") or [{"url": "/"}])[0]["url"].rstrip("/")
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            servers = op.get("servers") or item.get("servers")
            full = (servers[0]["url"].rstrip("/") if servers else base) + path
            for tag in op.get("tags") or ["other"]:
                yield tag, method, full, op, item


def _who(doc: dict, op: dict) -> str:
    # OpenAPI: the operation's requirement, else the document's; none at all, or an empty one
    # ({}), means no token is asked for (the description says what else is: a device, a secret).
    security = op.get("security", doc.get("security")) or []
    if not any(security):
        auth = "Không cần đăng nhập (no authentication)"
    elif {} in security:
        auth = "Đăng nhập nếu có (bearer JWT optional)"
    else:
        schemes = sorted({name for requirement in security for name in requirement})
        auth = "Cần đăng nhập (" + ", ".join("bearer JWT" if s == "bearer" else s for s in schemes) + ")"
    description = " ".join(str(op.get("description", "")).split())
    return f"<strong>{escape(auth)}</strong>" + (f"<br><span class='small'>{escape(description)}</span>" if description else "")


def _request(doc: dict, item: dict, op: dict) -> str:
    parts = []
    for param in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
        param = _resolve(doc, param)
        if isinstance(param, dict) and "name" in param:
            required = "" if param.get("required") else "?"
            parts.append(f"<code>{escape(param['name'])}{required}</code> <span class='small'>({escape(param.get('in', ''))})</span>")
    body = op.get("requestBody")
    if body:
        body = _resolve(doc, body)
        types = ", ".join(escape(t) for t in (body.get("content") or {}))
        parts.append(f"body: <code>{types}</code>" + ("" if body.get("required") else " (tùy chọn, optional)"))
    return "<br>".join(parts) or "—"


def _responses(doc: dict, op: dict) -> str:
    rows = []
    for code, response in (op.get("responses") or {}).items():
        response = _resolve(doc, response)
        description = " ".join(str(response.get("description", "")).split()) if isinstance(response, dict) else ""
        rows.append(f"<code>{escape(str(code))}</code> {escape(description)}")
    return "<br>".join(rows) or "—"


def render(services=SERVICES) -> str:
    sections, toc = [], []
    for service in services:
        doc = load_document(service)
        info = doc.get("info", {})
        tags = {t["name"]: t.get("description", "") for t in doc.get("tags", [])}
        grouped: dict[str, list] = {name: [] for name in tags}
        for tag, method, path, op, item in operations(doc):
            grouped.setdefault(tag, []).append((method, path, op, item))
        raw = f"/{service}/api/v1/openapi.json"
        server = (doc.get("servers") or [{"url": "/"}])[0]["url"]
        toc.append(f"<li><a href='#{service}'>{escape(SERVICE_NAMES.get(service, service))}</a></li>")
        blocks = []
        for tag, ops in grouped.items():
            if not ops:
                continue
            rows = "".join(
                f"<tr id='{escape(service)}-{escape(op.get('operationId', ''))}'>"
                f"<td class='m'>{method.upper()}</td><td><code>{escape(path)}</code>"
                f"<br><span class='small'>operationId: <code>{escape(op.get('operationId', ''))}</code></span></td>"
                f"<td>{escape(' '.join(str(op.get('summary', '')).split()))}</td><td>{_who(doc, op)}</td>"
                f"<td>{_request(doc, item, op)}</td><td>{_responses(doc, op)}</td></tr>"
                for method, path, op, item in ops)
            blocks.append(
                f"<h3>Nhóm (tag) <code>{escape(tag)}</code>"
                + (f" — {escape(tags[tag])}" if tags.get(tag) else "") + "</h3>"
                "<table><thead><tr><th>Phương thức (method)</th><th>Đường dẫn (path)</th><th>Tóm tắt (summary)</th>"
                "<th>Ai được gọi (who may call)</th><th>Yêu cầu (request)</th><th>Mã trả về (responses)</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")
        description = " ".join(str(info.get("description", "")).split())
        sections.append(
            f"<section id='{escape(service)}'><h2>{escape(SERVICE_NAMES.get(service, service))}</h2>"
            f"<p>{escape(info.get('title', service))}, phiên bản (version) {escape(str(info.get('version', '')))}. "
            f"Máy chủ (server): <code>{escape(server)}</code>. "
            f"Tài liệu OpenAPI gốc (raw OpenAPI document): <a href='{raw}'>{raw}</a></p>"
            + (f"<p class='small'>{escape(description)}</p>" if description else "")
            + "".join(blocks) + "</section>")
    return f"""<!doctype html><html lang="vi"><head><meta charset="utf-8">
<title>Tài liệu API — Một Cửa</title><meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head><body>
<p><a href="/">← Trang chủ (home)</a></p>
<h1>Tài liệu API (API reference)</h1>
<p>Các dịch vụ chạy trên máy này, từng thao tác (operation) theo nhóm (tag). Lỗi trả về theo RFC 9457
(problem details, <code>application/problem+json</code>) với mã <code>code</code> ổn định; cấu trúc
<code>Problem</code> giống nhau ở mọi dịch vụ. Danh mục sự kiện (event catalogue, AsyncAPI):
<code>docs/asyncapi.yaml</code> trong mã nguồn.</p>
<nav><h2>Dịch vụ (services)</h2><ul>{''.join(toc)}</ul></nav>
{''.join(sections)}
</body></html>"""


def api_docs_app(services=SERVICES):
    """A WSGI app answering the reference page (rendered once: the documents ship with the
    installed platform and do not change while it runs)."""
    html = render(services)

    def app(environ, start_response):
        response = Response(html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response(environ, start_response)

    return app
