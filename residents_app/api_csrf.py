"""Cross-site request forgery on the JSON API (/api/...).

The API's blueprints are exempt from Flask-WTF's form token: a cross-site HTML form cannot send JSON. It can
send everything else (multipart/form-data, as the roster import takes, urlencoded, text/plain, or no body),
and the browser adds the session cookie. So every state-changing /api/ request that carries the session
cookie is checked here, before its view:

1. It must come from this site: the Origin header (else Sec-Fetch-Site, else the Referer) names this host, or
   one of TRUSTED_ORIGINS (the WeChat mini-program's pages send Referer https://servicewechat.com/...). A
   browser sends Origin on every cross-site POST, so this holds whether or not WTF_CSRF_ENABLED is on. A
   request with none of the three headers is not a browser's (a script) and passes.
2. Unless its body is JSON (which a cross-site page cannot send without CORS, and we allow none), it must
   carry the CSRF token in the X-CSRFToken header (with WTF_CSRF_ENABLED, like every form). Scripts read
   the token from the X-CSRFToken header of the login API's (and /api/auth/me's) response; a resident (the
   mini-program's photo upload, wx.uploadFile) from that of /api/r/me.

A request without the session cookie carries no authority to abuse and is not checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms import ValidationError

from residents_app.errors import DomainError

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_ENDPOINTS = frozenset({"auth_api.api_login", "auth_api.api_me", "resident_api.me"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def install(app: Flask) -> None:
    app.before_request(_check)
    app.after_request(_hand_out_token)


def _check() -> None:
    if request.method not in UNSAFE_METHODS or not request.path.startswith("/api/"):
        return
    if current_app.config["SESSION_COOKIE_NAME"] not in request.cookies:
        return
    if not _from_this_site():
        raise DomainError("拒绝来自其他网站的请求", code="cross_site_refused", status=403)
    if request.is_json or not current_app.config.get("WTF_CSRF_ENABLED", True):
        return
    token = next((request.headers[h] for h in current_app.config.get("WTF_CSRF_HEADERS", ["X-CSRFToken"])
                  if request.headers.get(h)), None)
    try:
        validate_csrf(token)
    except ValidationError:
        raise DomainError("缺少或无效的 CSRF 令牌：非 JSON 的请求须在请求头 X-CSRFToken 中携带令牌",
                          code="csrf_failed", status=400) from None


def _from_this_site() -> bool:
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null":
        return _is_ours(origin)
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:  # sent by current browsers, and no page can forge it
        return fetch_site in ("same-origin", "none")
    if origin == "null":  # a sandboxed frame, a data: URL, a page that hides where it is
        return False
    referer = request.headers.get("Referer")
    if referer:
        return _is_ours(referer)
    return True


def _is_ours(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return False
    trusted = {_origin_of(o) for o in current_app.config.get("TRUSTED_ORIGINS", ())}
    public = current_app.config.get("PUBLIC_BASE_URL")
    if public:
        trusted.add(_origin_of(public))
    if _origin_of(url) in trusted:
        return True
    # This host, either scheme: behind a TLS-terminating proxy the app itself sees http.
    return _host_port(parts) == _host_port(urlsplit(f"{request.scheme}://{request.host}"))


def _origin_of(url: str) -> tuple[str, str, int | None] | None:
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return (parts.scheme, *_host_port(parts))


def _host_port(parts) -> tuple[str, int | None]:
    """(host, port), the port None when it is the scheme's default."""
    try:
        port = parts.port
    except ValueError:  # not a number: matches nothing
        port = -1
    return (parts.hostname or "").lower(), None if port in (None, DEFAULT_PORTS.get(parts.scheme)) else port


def _hand_out_token(response):
    if request.endpoint in TOKEN_ENDPOINTS and response.status_code == 200:
        response.headers["X-CSRFToken"] = generate_csrf()
    return response
