"""Issue 14, finding 7: passwords and sign-in.

At least 10 characters and none of the bundled common passwords (case-insensitive); an account locks after 10
failed sign-ins within 15 minutes, whatever the addresses, until the window passes or an administrator unlocks it
(`flask users unlock`, on the audit chain); in-process rate-limit counters are refused with several workers.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from residents_app import create_app
from residents_app.audit.models import AuditEvent
from residents_app.auth import passwords
from residents_app.auth.services import AccountLocked, authenticate, create_user
from residents_app.config import ConfigError, check_rate_limit_storage
from residents_app.errors import ValidationFailed
from residents_app.extensions import limiter

LOCKED = "该账户 15 分钟内密码错误已达 10 次，已被暂时锁定。请 15 分钟后再试，或请系统管理员解锁"


@pytest.mark.parametrize(("password", "problem"), [
    ("12345678", "密码至少 10 位"),
    ("abc-12345", "密码至少 10 位"),
    ("1234567890", "这个密码太常见，很容易被猜中，请换一个"),
    ("QwErTyUiOp", "这个密码太常见，很容易被猜中，请换一个"),
    ("Password123", "这个密码太常见，很容易被猜中，请换一个"),
    ("woaini1314", "这个密码太常见，很容易被猜中，请换一个"),
    ("chen-weiming", "密码不能与用户名相同"),
    ("x" * 201, "密码最多 200 位"),
])
def test_short_common_and_username_passwords_are_refused(db, password, problem):
    with pytest.raises(ValidationFailed) as exc:
        create_user(username="chen-weiming", password=password, role="admin")
    assert exc.value.errors == {"password": problem}


def test_a_long_uncommon_password_is_accepted(db):
    assert create_user(username="chen", password="qiao-tou-xiang-7", role="admin").check_password("qiao-tou-xiang-7")


def test_the_common_password_list_is_bundled_in_the_package():
    common = passwords.common_passwords()
    assert passwords.COMMON_PASSWORDS_FILE.parent.name == "auth"
    assert len(common) >= 500
    assert {"123456", "password", "qwertyuiop", "1qaz2wsx3edc", "woaini1314", "5201314"} <= common
    assert all(p == p.casefold() and p.strip() == p and not p.startswith("#") for p in common)


def test_the_cli_refuses_a_weak_password(app, db):
    result = app.test_cli_runner().invoke(args=["users", "create", "wang", "--role", "admin", "--password",
                                                "12345678"])
    assert (result.exit_code, result.output.strip()) == (1, "错误 password: 密码至少 10 位")


def test_the_demo_accounts_meet_the_policy():
    from residents_app.demo import ACCOUNTS

    assert [passwords.password_problem(pw, name) for name, _role, _label, pw in ACCOUNTS] == [None] * len(ACCOUNTS)


def clients(app, n: int):
    """n clients at n addresses (the per-address limit of 10 a minute never applies)."""
    limiter.reset()
    for i in range(n):
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = f"10.66.{i // 250}.{i % 250 + 1}"
        yield c


def test_ten_failures_from_many_addresses_lock_the_account(app, db, factory):
    factory.user("admin", username="lin")
    db.session.commit()
    wrong = [c.post("/api/auth/login", json={"username": "lin", "password": f"guess-{i:06d}"})
             for i, c in enumerate(clients(app, 10))]
    assert [r.get_json()["code"] for r in wrong] == ["invalid_credentials"] * 10
    right = {"username": "lin", "password": "correct-horse-1"}
    fresh, form = clients(app, 2)
    locked = fresh.post("/api/auth/login", json=right)
    assert locked.get_json() == {"code": "account_locked", "status": 429, "message": LOCKED, "errors": {}}
    page = form.post("/login", data=right)
    assert page.status_code == 429 and LOCKED in page.get_data(as_text=True)
    assert fresh.get("/api/auth/me").status_code == 401


def test_the_lock_does_not_say_which_names_exist(db, now):
    for i in range(10):
        assert authenticate("nobody-here", f"guess-{i}", now, "10.0.0.1") is None
    with pytest.raises(AccountLocked):
        authenticate("nobody-here", "anything-at-all", now)


def test_the_lock_lifts_fifteen_minutes_after_the_failures_and_a_success_resets_the_count(db, factory, now):
    user = factory.user("committee", estate=factory.estate(), username="zhou")
    for i in range(9):
        assert authenticate("zhou", f"guess-{i}", now + timedelta(seconds=i)) is None
    assert authenticate("zhou", "correct-horse-1", now + timedelta(seconds=9)) is user  # resets the count
    for i in range(10):
        assert authenticate("zhou", f"guess-{i}", now + timedelta(minutes=1)) is None
    with pytest.raises(AccountLocked):
        authenticate("zhou", "correct-horse-1", now + timedelta(minutes=15))
    # Attempts refused by the lock do not extend it.
    assert authenticate("zhou", "correct-horse-1", now + timedelta(minutes=16)) is user


def test_an_administrator_unlocks_an_account_from_the_cli(app, db, factory):
    user = factory.user("street", estate=factory.estate(), username="zhao")
    db.session.commit()
    for c in clients(app, 10):
        c.post("/api/auth/login", json={"username": "zhao", "password": "wrong-password-0"})
    c = next(clients(app, 1))
    right = {"username": "zhao", "password": "correct-horse-1"}
    assert c.post("/api/auth/login", json=right).status_code == 429
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "unlock", "zhao"])
    assert (result.exit_code, result.output.strip()) == (0, "已解锁账户 zhao（清除 10 次失败记录）")
    event = db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == "auth.account_unlocked")).scalar_one()
    assert (event.chain, event.actor, event.subject_type, event.subject_id, event.data) == (
        0, "system:cli", "app_user", str(user.id), {"username": "zhao", "failures_cleared": 10})
    assert c.post("/api/auth/login", json=right).status_code == 200
    missing = runner.invoke(args=["users", "unlock", "no-such-user"])
    assert (missing.exit_code, missing.output.strip()) == (1, "错误: 找不到账户 no-such-user")


MEMORY_REFUSED = ("RATELIMIT_STORAGE_URI=memory:// keeps rate-limit counters inside one process, but {why}: each "
                  "worker would count on its own and every limit (sign-in, identity confirmation, token guessing) "
                  "would be multiplied. Set RATELIMIT_STORAGE_URI to a shared store, e.g. redis://127.0.0.1:6379 "
                  "(Redis), or run a single worker.")


def test_memory_rate_limits_are_refused_with_several_workers(monkeypatch, database_url):
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    with pytest.raises(ConfigError) as exc:
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})
    assert str(exc.value) == MEMORY_REFUSED.format(why="WEB_CONCURRENCY=4")
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    assert create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})


def test_memory_rate_limits_are_refused_under_gunicorn_with_several_workers(monkeypatch):
    from gunicorn.config import Config

    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)

    class Worker:  # what gunicorn's worker (or arbiter) is while it loads the app: something with .cfg
        def __init__(self, workers: int):
            self.cfg = Config()
            self.cfg.set("workers", workers)

        def load(self, config):
            return check_rate_limit_storage(config)

    with pytest.raises(ConfigError) as exc:
        Worker(3).load({"RATELIMIT_STORAGE_URI": "memory://"})
    assert str(exc.value) == MEMORY_REFUSED.format(why="gunicorn runs 3 workers")
    assert Worker(1).load({"RATELIMIT_STORAGE_URI": "memory://"}) is None
    assert Worker(3).load({"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}) is None
    assert Worker(3).load({"RATELIMIT_STORAGE_URI": "memory://", "RATELIMIT_ENABLED": False}) is None
