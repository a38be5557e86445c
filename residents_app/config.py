"""Settings from the environment. SQLite under instance/ is the embedded default."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from residents_app.files import PRIVATE_FILE, narrow, private_dir, write_private

PRODUCTION_RATELIMIT_STORAGE = "redis://127.0.0.1:6379"


class ConfigError(RuntimeError):
    """A setting that would make the app run unsafely: refused at start-up."""


def normalise_database_url(url: str) -> str:
    # SQLAlchemy 2.0 maps postgresql:// to psycopg2; we ship psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _secret_key(instance_path: Path) -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    # Development: a random key kept in instance/ so sessions survive restarts; readable by the app's user only.
    path = instance_path / "secret_key"
    private_dir(instance_path)
    if not path.exists():
        # Written whole under a private name, then linked into place: a concurrent start never reads half a key.
        draft = path.with_name(f".secret_key.{os.getpid()}")
        write_private(draft, secrets.token_hex(32).encode())
        try:
            os.link(draft, path)
        except FileExistsError:  # the concurrent start won; its key is the key
            pass
        finally:
            draft.unlink(missing_ok=True)
    narrow(path, PRIVATE_FILE)  # a key kept by an earlier version was written 0644
    return path.read_text().strip()


def load_config(instance_path: Path) -> dict:
    private_dir(instance_path)  # the secret key, the SQLite database and uploads live here
    default_db = "sqlite:///" + str(instance_path / "residents.db")
    url = normalise_database_url(os.environ.get("DATABASE_URL", default_db))
    redis_url = os.environ.get("REDIS_URL", "")
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url),
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_UPLOAD_BYTES", 10 * 1024 * 1024)),
        "JSON_AS_ASCII": False,
        # Several app nodes (docs/DEPLOY.md): REDIS_URL holds the sessions and, unless RATELIMIT_STORAGE_URI
        # names another store, the rate-limit counters; DATABASE_REPLICA_URL serves the district's read-only pages.
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI") or redis_url or "memory://",
        "DATABASE_REPLICA_URL": os.environ.get("DATABASE_REPLICA_URL", ""),
        # How many reverse proxies (nginx) stand in front and set X-Forwarded-For/-Proto; 0: none.
        "PROXY_COUNT": int(os.environ.get("PROXY_COUNT", "0")),
        "RATELIMIT_HEADERS_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", ""),
        # Other sites whose pages may call the API with the session cookie (api_csrf.py). The WeChat
        # mini-program's requests carry Referer https://servicewechat.com/<appid>/...
        "TRUSTED_ORIGINS": tuple(o.strip() for o in os.environ.get(
            "TRUSTED_ORIGINS", "https://servicewechat.com").split(",") if o.strip()),
        "WTF_CSRF_TIME_LIMIT": None,
        "API_TITLE": "residents_app API",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "DEMO": os.environ.get("RAPP_DEMO", "0") == "1",
        # How online ballots' audit events reach the chain after the cast commits (audit/sealer.py):
        # "thread" (a sealer thread per process, the cast does not wait) or "inline" (sealed right after the
        # commit, in the request; deterministic, what the tests use).
        "AUDIT_SEALER": os.environ.get("AUDIT_SEALER", "thread"),
        # Connections on which the scheduler closes many due rounds at once (PostgreSQL; scheduler/closing.py).
        "SCHEDULER_CLOSE_CONNECTIONS": int(os.environ.get("SCHEDULER_CLOSE_CONNECTIONS", "4")),
        **notify_settings(),
    }


def notify_settings() -> dict:
    """Senders behind the outbox (notify/) and the WeChat login (auth/wechat.py). Base URLs are settings so a
    local fake can stand in (tests, bench, demo)."""
    env = os.environ.get
    return {
        "OUTBOX_SENDER": env("OUTBOX_SENDER", "log"),  # "log" or "channels" (WeChat, then SMS)
        "NOTIFY_DAILY_CAP": int(env("NOTIFY_DAILY_CAP", "3")),  # messages per unit per Beijing day
        "WECHAT_API_BASE": env("WECHAT_API_BASE", "https://api.weixin.qq.com"),
        "WECHAT_APP_ID": env("WECHAT_APP_ID", ""),
        "WECHAT_APP_SECRET": env("WECHAT_APP_SECRET", ""),
        "WECHAT_TEMPLATE_ID": env("WECHAT_TEMPLATE_ID", ""),
        "WECHAT_PAGE": env("WECHAT_PAGE", "pages/home/index?unit={unit_id}"),
        "TENCENT_SMS_BASE": env("TENCENT_SMS_BASE", "https://sms.tencentcloudapi.com"),
        "TENCENT_SMS_REGION": env("TENCENT_SMS_REGION", "ap-guangzhou"),
        "TENCENT_SECRET_ID": env("TENCENT_SECRET_ID", ""),
        "TENCENT_SECRET_KEY": env("TENCENT_SECRET_KEY", ""),
        "TENCENT_SMS_SDK_APP_ID": env("TENCENT_SMS_SDK_APP_ID", ""),
        "TENCENT_SMS_SIGN": env("TENCENT_SMS_SIGN", ""),
        "TENCENT_SMS_TEMPLATE_ID": env("TENCENT_SMS_TEMPLATE_ID", ""),
    }


def replica_binds(config: dict) -> None:
    """DATABASE_REPLICA_URL set: the engine "replica" (Flask-SQLAlchemy bind) the read-only pages read from."""
    url = config.get("DATABASE_REPLICA_URL") or ""
    binds = dict(config.get("SQLALCHEMY_BINDS") or {})
    if not url or "replica" in binds:
        return
    url = normalise_database_url(url)
    binds["replica"] = {"url": url, **engine_options(url)}
    config["SQLALCHEMY_BINDS"] = binds


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 5, "check_same_thread": False}}
    # No pool_pre_ping: residents_app/db.py pings a connection only when it has been idle (PING_AFTER_IDLE).
    return {"pool_size": 10, "max_overflow": 20}


def gunicorn_workers() -> int | None:
    """The worker count of the gunicorn process that is loading the app, as gunicorn resolved it (command line,
    GUNICORN_CMD_ARGS, config file, WEB_CONCURRENCY); None outside gunicorn. gunicorn keeps its settings on the
    arbiter and on each worker, never globally: the loading call's frames hold one of them as `self.cfg`."""
    if "gunicorn" not in sys.modules:
        return None
    from gunicorn.config import Config

    frame = sys._getframe(1)
    while frame is not None:
        cfg = getattr(frame.f_locals.get("self"), "cfg", None)
        if isinstance(cfg, Config):
            return int(cfg.workers)
        frame = frame.f_back
    return None


def check_rate_limit_storage(config: dict, environ=None) -> None:
    """Refuse to start with in-process rate-limit counters (memory://) when several worker processes serve the
    app: each would count on its own, multiplying every limit (sign-in, identity, token guessing) by their number.
    """
    environ = os.environ if environ is None else environ
    if not config.get("RATELIMIT_ENABLED", True):
        return
    storage = config.get("RATELIMIT_STORAGE_URI") or "memory://"
    if not storage.startswith("memory://"):
        return
    reasons = []
    raw = (environ.get("WEB_CONCURRENCY") or "").strip()
    if raw:
        if not raw.isdigit():
            raise ConfigError(f"WEB_CONCURRENCY={raw!r} is not a number of worker processes")
        if int(raw) > 1:
            reasons.append(f"WEB_CONCURRENCY={raw}")
    workers = gunicorn_workers()
    if workers is not None and workers > 1:
        reasons.append(f"gunicorn runs {workers} workers")
    if reasons:
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI={storage} keeps rate-limit counters inside one process, but "
            f"{' and '.join(reasons)}: each worker would count on its own and every limit (sign-in, identity "
            f"confirmation, token guessing) would be multiplied. Set RATELIMIT_STORAGE_URI to a shared store, "
            f"e.g. {PRODUCTION_RATELIMIT_STORAGE} (Redis), or run a single worker.")
