"""Settings from the environment. SQLite under instance/ is the embedded default."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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
    # Development: a random key kept in instance/ so sessions survive restarts.
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    return key


def load_config(instance_path: Path) -> dict:
    instance_path.mkdir(parents=True, exist_ok=True)
    default_db = "sqlite:///" + str(instance_path / "residents.db")
    url = normalise_database_url(os.environ.get("DATABASE_URL", default_db))
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url),
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_UPLOAD_BYTES", 10 * 1024 * 1024)),
        "JSON_AS_ASCII": False,
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", ""),
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


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 5, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
