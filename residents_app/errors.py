"""DomainError tree and the one error shape: {code, status, message, errors}.

JSON for /api/ and for clients that ask for JSON; a Chinese page otherwise.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    status = 409
    code = "domain_error"
    message = "操作无法完成"

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 status: int | None = None, errors: dict | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        if code:
            self.code = code
        if status:
            self.status = status
        self.errors = errors or {}


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "找不到该内容"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = "没有权限"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"
    message = "提交的内容有误"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "与当前状态冲突"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    message = "服务暂时不可用，请稍后再试"


HTTP_CODES = {
    400: ("bad_request", "请求格式有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "没有权限"),
    404: ("not_found", "找不到该页面或内容"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "与当前状态冲突"),
    413: ("payload_too_large", "上传的文件过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    422: ("validation_failed", "提交的内容有误"),
    429: ("rate_limited", "操作过于频繁，请稍后再试"),
    500: ("internal_error", "服务器内部错误"),
    503: ("service_unavailable", "服务暂时不可用，请稍后再试"),
}


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(code: str, status: int, message: str, errors: dict | None = None):
    if wants_json():
        resp = jsonify({"code": code, "status": status, "message": message, "errors": errors or {}})
        resp.status_code = status
        return resp
    html = render_template("error.html", code=code, status=status, message=message, errors=errors or {})
    return html, status


def _http_error(exc: HTTPException):
    code, message = HTTP_CODES.get(exc.code or 500, ("http_error", exc.name))
    errors = {}
    # flask-smorest / webargs put field messages in exc.data["messages"]
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and "messages" in data:
        errors = data["messages"]
        if exc.code in (400, 422):
            code, message = "validation_failed", "提交的内容有误，请检查标出的字段"
    resp = error_response(code, exc.code or 500, message, errors)
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        resp = _with_header(resp, "Allow", ", ".join(exc.valid_methods))
    return resp


def _with_header(resp, name, value):
    if isinstance(resp, tuple):
        body, status = resp
        return body, status, {name: value}
    resp.headers[name] = value
    return resp


def number_out_of_range(exc: BaseException) -> bool:
    """A number the database cannot hold: SQLite's driver refuses ints past 64 bits (OverflowError),
    PostgreSQL answers SQLSTATE 22003 (numeric_value_out_of_range)."""
    if isinstance(exc, OverflowError):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "22003"


def out_of_range_response(exc: BaseException):
    # A number from a form or a JSON body the database cannot hold (the URL converter and the query schemas
    # bound the others; this is the net for the rest): the input is wrong, not the server.
    log.info("number out of range on %s %s: %s", request.method, request.path, type(exc).__name__)
    return error_response("validation_failed", 422, "提交的数字超出范围")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        from residents_app.extensions import db

        db.session.rollback()
        return error_response(exc.code, exc.status, exc.message, exc.errors)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return error_response("csrf_failed", 400, "页面已过期或表单校验失败，请刷新页面后重试")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return _http_error(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        from sqlalchemy.exc import DBAPIError, OperationalError

        from residents_app.extensions import db

        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection itself may be gone
            log.warning("rollback after error failed")
        if number_out_of_range(exc):
            return out_of_range_response(exc)
        if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
            log.error("database unavailable: %s", type(exc).__name__)
            code, message = HTTP_CODES[503]
            return error_response(code, 503, message)
        log.exception("unhandled error on %s %s", request.method, request.path)
        code, message = HTTP_CODES[500]
        return error_response(code, 500, message)
