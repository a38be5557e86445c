"""The session interfaces: Flask's signed cookie (one node), or server-side sessions in Redis (several nodes).

With REDIS_URL set, the cookie carries only a random session id (256 bits); the session's contents live in
Redis under "rapp:session:<id>" with the session lifetime as their time to live, so a session opened on one
app node is the same session on every other node, and signing out ends it everywhere (the key is deleted).
The id is replaced whenever who is signed in changes (staff sign-in, resident identity, WeChat login, or
their sign-out): an id planted in a victim's browser before they sign in never becomes their session.
"""

from __future__ import annotations

import logging
import re
import secrets

from flask import Flask
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.sessions import SessionInterface as FlaskSessionInterface

log = logging.getLogger(__name__)
KEY_PREFIX = "rapp:session:"
NO_SESSION = {"ops.healthz", "ops.readyz", "static"}  # endpoints that answer while Redis is down
# The entries that say who is signed in: Flask-Login's user, the resident's unit link, the WeChat login.
IDENTITY_KEYS = ("_user_id", "resident", "wechat_openid")
_SID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with the signing serializer built once per key set (Flask builds a new one
    for every request, casting included)."""

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cache = app.extensions.setdefault("residents_app.session_serializers", {})
        if keys not in cache:
            cache[keys] = super().get_signing_serializer(app)
        return cache[keys]


class RedisSession(SecureCookieSession):
    def __init__(self, initial=None, sid: str | None = None):
        super().__init__(initial)
        self.sid = sid
        self.identity_at_open = _identity(self)


class UnavailableSession(RedisSession):
    """Redis could not be reached when the request began: refused with 503 (refuse_without_session)."""


def refuse_without_session() -> None:
    """before_request: a request whose session could not be read gets 503, except the health checks and static
    files, which need none."""
    from flask import request, session

    if isinstance(session._get_current_object(), UnavailableSession) and request.endpoint not in NO_SESSION:
        from residents_app.errors import DomainError

        raise DomainError("服务暂时不可用，请稍后再试", code="service_unavailable", status=503)


def _identity(data) -> tuple:
    return tuple(repr(dict.get(data, k)) for k in IDENTITY_KEYS)


class RedisSessionInterface(FlaskSessionInterface):
    """Server-side sessions in Redis, shared by every app node (see the module's docstring)."""

    serializer = TaggedJSONSerializer()
    session_class = RedisSession

    def __init__(self, url: str, client=None):
        import redis

        self.redis = client if client is not None else redis.Redis.from_url(url, socket_timeout=5,
                                                                            health_check_interval=30)

    def open_session(self, app: Flask, request) -> RedisSession:
        import redis

        sid = request.cookies.get(self.get_cookie_name(app)) or ""
        if _SID.match(sid):
            try:
                raw = self.redis.get(KEY_PREFIX + sid)
            except redis.RedisError as exc:
                log.error("sessions: Redis unavailable: %s", type(exc).__name__)
                return UnavailableSession(sid=sid)
            if raw is not None:
                try:
                    return self.session_class(self.serializer.loads(raw.decode()), sid=sid)
                except ValueError:  # not ours (or damaged): a fresh session under a fresh id
                    pass
        return self.session_class()  # no id until something is stored

    def save_session(self, app: Flask, session: RedisSession, response) -> None:
        import redis

        if isinstance(session, UnavailableSession):
            return
        try:
            self._save(app, session, response)
        except redis.RedisError as exc:  # the session was not kept: the user must not believe it was
            from residents_app.errors import error_response

            log.error("sessions: Redis unavailable: %s", type(exc).__name__)
            failed = app.make_response(error_response("service_unavailable", 503, "服务暂时不可用，请稍后再试"))
            response.status_code = 503
            response.set_data(failed.get_data())
            response.content_type = failed.content_type
            response.headers.pop("Set-Cookie", None)

    def _save(self, app: Flask, session: RedisSession, response) -> None:
        name = self.get_cookie_name(app)
        domain, path = self.get_cookie_domain(app), self.get_cookie_path(app)
        secure, httponly = self.get_cookie_secure(app), self.get_cookie_httponly(app)
        samesite, partitioned = self.get_cookie_samesite(app), self.get_cookie_partitioned(app)
        if session.accessed:
            response.vary.add("Cookie")
        if not session:
            if session.modified and session.sid:  # emptied (signed out): gone on every node
                self.redis.delete(KEY_PREFIX + session.sid)
                response.delete_cookie(name, domain=domain, path=path, secure=secure, httponly=httponly,
                                       samesite=samesite, partitioned=partitioned)
                response.vary.add("Cookie")
            return
        ttl = max(1, int(app.permanent_session_lifetime.total_seconds()))
        new_sid = session.sid is None or _identity(session) != session.identity_at_open
        if new_sid:
            if session.sid is not None:
                self.redis.delete(KEY_PREFIX + session.sid)
            session.sid = secrets.token_urlsafe(32)
            self.redis.set(KEY_PREFIX + session.sid, self.serializer.dumps(dict(session)), ex=ttl)
        elif session.modified:
            # xx: only while the key exists. A request that raced a sign-out on another node (which deleted the
            # key) must not bring the session back.
            if not self.redis.set(KEY_PREFIX + session.sid, self.serializer.dumps(dict(session)), ex=ttl, xx=True):
                return
        elif self.should_set_cookie(app, session):
            self.redis.expire(KEY_PREFIX + session.sid, ttl)  # a permanent session refreshed by this request
        else:
            return
        response.set_cookie(name, session.sid, expires=self.get_expiration_time(app, session), httponly=httponly,
                            domain=domain, path=path, secure=secure, samesite=samesite, partitioned=partitioned)
        response.vary.add("Cookie")


def install(app: Flask) -> None:
    """Redis sessions when REDIS_URL is set (several app nodes), else the signed cookie."""
    url = app.config.get("REDIS_URL") or ""
    if url:
        app.session_interface = RedisSessionInterface(url)
        app.before_request(refuse_without_session)
    else:
        app.session_interface = SessionInterface()
